/* Example port: ATmega2560 (Arduino Mega) or ATmega328P (Arduino Uno, Nano) at 16 MHz. UART0 at 1 Mbaud,
 * a 1 kHz sample timer that also runs the command watchdog, PWM on OC1A.
 *
 * The IMU and encoder drivers are stubs (a real port reads an MPU-6050 over TWI and counts
 * quadrature edges on pin-change interrupts): they return a resting IMU and a still encoder.
 * The motor is driven by Timer1's 10-bit PWM on OC1A (2560: PB5, 328P: PB1) and a direction
 * pin (2560: PB6, 328P: PB2); 0 V is a 0 duty cycle, which is what the watchdog and STOP leave.
 * The 328P's 2 KiB of RAM take smaller rings and frames (docs/firmware.md: its build flags).
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <util/atomic.h>

#include "smp_node.h"

#define UART_BAUD 1000000UL
#if defined(__AVR_ATmega328P__)
#define RX_SIZE 32u /* powers of two, at most 256 */
#define TX_SIZE 128u
#define PWM_PIN PB1
#define DIR_PIN PB2
#define UART_RX_VECT USART_RX_vect
#define UART_UDRE_VECT USART_UDRE_vect
#else
#define RX_SIZE 128u
#define TX_SIZE 256u
#define PWM_PIN PB5
#define DIR_PIN PB6
#define UART_RX_VECT USART0_RX_vect
#define UART_UDRE_VECT USART0_UDRE_vect
#endif

static const smp_channel CHANNELS[6] = {
    /* MPU-6050 at +-500 deg/s and +-4 g: its registers' int16 counts, its datasheet sensitivities */
    {"gyro_x", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},  {"gyro_y", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},
    {"gyro_z", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},  {"accel_x", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f},
    {"accel_y", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f}, {"accel_z", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f},
};
static const smp_encoder ENCODERS[1] = {{"arm", 2048u, 3.0f}};
static const smp_actuator ACTUATORS[1] = {{"motor", "V", -5.0f, 5.0f}};
static const smp_device DEVICE = {"qube-avr", 1000, 64, 10, 100, 100, 0, 0, 0, 100, 6, 1, 1,
                                  CHANNELS,   ENCODERS, ACTUATORS};

static volatile uint8_t rx_buf[RX_SIZE];
static volatile uint8_t rx_head, rx_tail;
static volatile uint8_t tx_buf[TX_SIZE];
static volatile uint8_t tx_head, tx_tail;
static volatile uint32_t millis_count;
static volatile uint8_t samples_due; /* timer ticks not yet sampled: none is lost while a frame is sent */

ISR(UART_RX_VECT) {
    uint8_t b = UDR0, next = (uint8_t)((rx_head + 1u) & (RX_SIZE - 1u));
    if (next != rx_tail) { /* a full buffer drops the byte: the frame fails its CRC and is counted */
        rx_buf[rx_head] = b;
        rx_head = next;
    }
}

ISR(UART_UDRE_VECT) { /* the transmitter is free: the next byte, or stop asking */
    if (tx_tail == tx_head) {
        UCSR0B &= (uint8_t)~_BV(UDRIE0);
    } else {
        UDR0 = tx_buf[tx_tail];
        tx_tail = (uint8_t)((tx_tail + 1u) & (TX_SIZE - 1u));
    }
}

static smp_node node;

/* 1 kHz. Interruptible (ISR_NOBLOCK): when the watchdog trips here, zeroing the motor costs ~50 us, longer
   than the UART's two-byte receive FIFO lasts at 1 Mbaud (10 us a byte); the RX interrupt may run meanwhile. */
ISR(TIMER0_COMPA_vect, ISR_NOBLOCK) {
    millis_count++;
    if (samples_due < 255u) samples_due++;
    smp_node_tick_1ms(&node); /* the command watchdog: on time however busy the main loop is */
}

static uint32_t hal_micros(void *ctx) {
    (void)ctx;
    uint32_t ms;
    uint8_t t;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
        ms = millis_count;
        t = TCNT0;
    }
    return ms * 1000u + (uint32_t)t * 4u; /* Timer0: 16 MHz / 64 = 4 us a tick, 250 ticks a ms */
}

static int hal_uart_read(void *ctx, uint8_t *byte) {
    (void)ctx;
    if (rx_tail == rx_head) return 0;
    *byte = rx_buf[rx_tail];
    rx_tail = (uint8_t)((rx_tail + 1u) & (RX_SIZE - 1u));
    return 1;
}

static void hal_uart_write(void *ctx, const uint8_t *data, size_t n) { /* queued: the UDRE interrupt sends it */
    (void)ctx;
    while (n--) {
        uint8_t next = (uint8_t)((tx_head + 1u) & (TX_SIZE - 1u));
        while (next == tx_tail) { /* full: wait for the interrupt to make room */
        }
        tx_buf[tx_head] = *data++;
        ATOMIC_BLOCK(ATOMIC_RESTORESTATE) {
            tx_head = next;
            UCSR0B |= _BV(UDRIE0);
        }
    }
}

static void hal_read_imu(void *ctx, float *values) { /* stub: at rest, z up */
    (void)ctx;
    for (uint8_t c = 0; c < 5; c++) values[c] = 0.0f;
    values[5] = 9.81f;
}

static void hal_read_encoders(void *ctx, int32_t *counts) { /* stub: a still arm */
    (void)ctx;
    counts[0] = 0;
}

static void hal_write_actuators(void *ctx, const float *volts) {
    (void)ctx;
    float v = volts[0], mag = v < 0 ? -v : v;
    uint16_t duty = (uint16_t)(mag * (1023.0f / 5.0f) + 0.5f); /* one multiply: the watchdog calls this in its ISR */
    if (duty > 1023u) duty = 1023u;
    ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { /* also called from the timer interrupt (the watchdog): one 16-bit write */
        if (v < 0) PORTB |= _BV(DIR_PIN);
        else PORTB &= (uint8_t)~_BV(DIR_PIN);
        OCR1A = duty;
    }
}

static const smp_hal HAL = {hal_micros,   hal_uart_read,       hal_uart_write, hal_read_imu,
                            hal_read_encoders, hal_write_actuators, 0, 0};

int main(void) {
    UCSR0A = _BV(U2X0);
    UBRR0 = (uint16_t)(F_CPU / (8UL * UART_BAUD) - 1UL); /* 1 for 1 Mbaud at 16 MHz: exact */
    UCSR0B = _BV(RXEN0) | _BV(TXEN0) | _BV(RXCIE0);
    UCSR0C = _BV(UCSZ01) | _BV(UCSZ00); /* 8N1 */
    TCCR0A = _BV(WGM01);                /* CTC */
    TCCR0B = _BV(CS01) | _BV(CS00);     /* /64 */
    OCR0A = 249;                        /* 1 kHz */
    TIMSK0 = _BV(OCIE0A);
    DDRB |= _BV(PWM_PIN) | _BV(DIR_PIN);
    TCCR1A = _BV(COM1A1) | _BV(WGM11) | _BV(WGM10); /* 10-bit fast PWM on OC1A */
    TCCR1B = _BV(WGM12) | _BV(CS10);
    smp_node_init(&node, &DEVICE, &HAL); /* before the tick can see it */
    sei();
    for (;;) { /* one sample, then the UART: a COMMAND waits for at most one sample's work, never a backlog */
        if (samples_due) {
            ATOMIC_BLOCK(ATOMIC_RESTORESTATE) { samples_due--; }
            smp_node_sample(&node);
        }
        smp_node_poll(&node);
    }
}
