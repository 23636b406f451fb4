/* Example port: Cortex-M3, the TI Stellaris LM3S6965 (QEMU's lm3s6965evb board). Bare metal, no vendor library.
 *
 * UART0 (a PL011) carries the protocol; SysTick at 1 kHz is the sample clock and runs the command
 * watchdog (smp_node_tick_1ms); the main loop takes due samples and reads the UART. The IMU,
 * encoder and motor drivers are stubs: a resting MPU-6050's int16 counts, a still encoder, and
 * the commanded volts kept in `motor_volts` where a board would set its PWM duty cycle.
 * QEMU: qemu-system-arm -M lm3s6965evb -nographic -serial pty -kernel cortex-m3.elf
 */
#include <stdint.h>

#include "smp_node.h"

/* The system clock after reset as QEMU models it (its 200 MHz PLL / 16); a board running its PLL sets its own. */
#define SYSCLK_HZ 12500000u

#define REG(addr) (*(volatile uint32_t *)(addr))
#define SYSCTL_RCGC1 REG(0x400FE104u)
#define SYSCTL_RCGC2 REG(0x400FE108u)
#define UART0_DR REG(0x4000C000u)
#define UART0_FR REG(0x4000C018u)
#define UART0_IBRD REG(0x4000C024u)
#define UART0_FBRD REG(0x4000C028u)
#define UART0_LCRH REG(0x4000C02Cu)
#define UART0_CTL REG(0x4000C030u)
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define SYST_CSR REG(0xE000E010u)
#define SYST_RVR REG(0xE000E014u)
#define SYST_CVR REG(0xE000E018u)

static const smp_channel CHANNELS[6] = {
    /* MPU-6050 at +-500 deg/s and +-4 g: its registers' int16 counts, its datasheet sensitivities */
    {"gyro_x", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},  {"gyro_y", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},
    {"gyro_z", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},  {"accel_x", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f},
    {"accel_y", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f}, {"accel_z", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f},
};
static const smp_encoder ENCODERS[1] = {{"arm", 2048u, 3.0f}};
static const smp_actuator ACTUATORS[1] = {{"motor", "V", -5.0f, 5.0f}};
static const smp_device DEVICE = {"qube-m3", 1000, 64, 10, 100, 100, 0, 0, 0, 100, 6, 1, 1,
                                  CHANNELS,  ENCODERS, ACTUATORS};

static volatile uint32_t millis_count, samples_due;
volatile float motor_volts; /* the stub motor: what a board writes to its PWM */
static smp_node node;

void systick_handler(void) { /* 1 kHz */
    millis_count++;
    samples_due++;
    smp_node_tick_1ms(&node); /* the command watchdog: on time however busy the main loop is */
}

static uint32_t hal_micros(void *ctx) {
    (void)ctx;
    uint32_t ms, left;
    do { /* a consistent pair: SysTick counts down from SYST_RVR within each millisecond */
        ms = millis_count;
        left = SYST_CVR;
    } while (ms != millis_count);
    return ms * 1000u + (SYST_RVR - left) / (SYSCLK_HZ / 1000000u);
}

static int hal_uart_read(void *ctx, uint8_t *byte) {
    (void)ctx;
    if (UART0_FR & UART_FR_RXFE) return 0;
    *byte = (uint8_t)UART0_DR;
    return 1;
}

static void hal_uart_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    while (n--) {
        while (UART0_FR & UART_FR_TXFF) { /* the 16-byte FIFO is full: wait */
        }
        UART0_DR = *data++;
    }
}

static void hal_read_imu(void *ctx, float *values) { /* stub: at rest, z up */
    (void)ctx;
    for (int c = 0; c < 5; c++) values[c] = 0.0f;
    values[5] = 9.81f;
}

static void hal_read_encoders(void *ctx, int32_t *counts) { /* stub: a still arm */
    (void)ctx;
    counts[0] = 0;
}

static void hal_write_actuators(void *ctx, const float *volts) { /* also from SysTick (the watchdog): one store */
    (void)ctx;
    motor_volts = volts[0];
}

static const smp_hal HAL = {hal_micros, hal_uart_read, hal_uart_write, hal_read_imu, hal_read_encoders,
                            hal_write_actuators, 0, 0};

int main(void) {
    SYSCTL_RCGC1 |= 1u;        /* UART0 clock */
    SYSCTL_RCGC2 |= 1u;        /* GPIO port A (the UART's pins) */
    UART0_CTL = 0;             /* off while configuring */
    UART0_IBRD = 0;            /* 12.5 MHz / (16 x 1 Mbaud) = 0.78: IBRD 0, FBRD round(0.78 x 64) = 50 */
    UART0_FBRD = 50;
    UART0_LCRH = (3u << 5) | (1u << 4); /* 8 bits, FIFOs on, no parity, 1 stop bit */
    UART0_CTL = (1u << 0) | (1u << 8) | (1u << 9); /* UARTEN, TXE, RXE */
    smp_node_init(&node, &DEVICE, &HAL); /* before the tick can see it */
    SYST_RVR = SYSCLK_HZ / 1000u - 1u;
    SYST_CVR = 0;
    SYST_CSR = 7u; /* the processor clock, interrupt, enable */
    for (;;) { /* one sample, then the UART: a COMMAND waits for at most one sample's work */
        if (samples_due) {
            __asm volatile("cpsid i" ::: "memory");
            samples_due--;
            __asm volatile("cpsie i" ::: "memory");
            smp_node_sample(&node);
        }
        smp_node_poll(&node);
    }
}

/* ------------------------------------------------------------------ start-up: vectors, .data, .bss */

extern uint32_t _stack_top, _data_load, _data_start, _data_end, _bss_start, _bss_end;

void reset_handler(void) {
    uint32_t *src = &_data_load, *dst = &_data_start;
    while (dst < &_data_end) *dst++ = *src++;
    for (dst = &_bss_start; dst < &_bss_end;) *dst++ = 0;
    main();
    for (;;) {
    }
}

static void halt(void) {
    for (;;) {
    }
}

typedef void (*vector)(void);
__attribute__((section(".vectors"), used)) static const vector VECTORS[16] = {
    (vector)(uintptr_t)&_stack_top, reset_handler, halt, halt, halt, halt, halt, 0, 0, 0, 0, halt, halt, 0, halt,
    systick_handler,
};
