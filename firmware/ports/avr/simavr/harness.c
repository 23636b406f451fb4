/* The AVR build on an emulated ATmega2560 (libsimavr): a scripted host in simulated time, or a pty.
 *
 *   harness FIRMWARE.elf [--mcu atmega328p]  scripted: one line per check and the figures; exits 1 on a failure
 *   harness FIRMWARE.elf --pty                bridges UART0 to a pty (prints its path) in real time, until SIGTERM
 *
 * The MCU is the ATmega2560 unless --mcu names the ATmega328P.
 *
 * The scripted host uses the same C library: it sends HELLO, START, then a COMMAND every 10 ms for
 * 500 ms, then none, then STOP, feeding bytes into the emulated UART at its baud rate; it decodes
 * everything the MCU sends. With --pty the host is whatever opens the pty (`hw info`, `hw monitor`).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <simavr/avr_uart.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>

#include "smp.h"

#define OCR1A_ADDR 0x88 /* ATmega2560 data-space address of OCR1AL (OCR1AH at 0x89) */
/* What differs between the MCUs the port builds for: interrupt vector numbers (avr-libc's *_vect_num), where
   SRAM starts. OCR1A is at 0x88 on both. */
typedef struct {
    const char *name;
    uint8_t timer0_compa, uart_rx, uart_udre;
    uint16_t sram_start;
} mcu_info;
static const mcu_info MCUS[2] = {{"atmega2560", 21, 25, 26, 0x200}, {"atmega328p", 14, 18, 19, 0x100}};
#define PAINT 0xA5 /* free SRAM is painted with this before reset: what the stack never reached keeps it */

static avr_t *avr;
static avr_irq_t *uart_in;
static smp_decoder from_mcu;
static int describes, sensors, statuses, last_flags = -1, xon = 1;
static uint32_t sensor_stamps[200], last_applied;
static uint64_t sensor_arrivals[200]; /* simulated cycle at which each SENSOR frame's last byte left the UART */
static uint8_t pending[64];
static size_t pending_len, pending_pos;
static uint64_t fed_at_us; /* when the last byte of the latest host frame entered the UART */
/* COMMAND -> PWM: a COMMAND whose duty cycle is expect_pwm was fed; applied_at_us when OCR1A showed it */
static int expect_pwm = -1;
static uint64_t applied_at_us, latency_us[64];
static int latencies;

static int pty_fd = -1; /* --pty: the master side; what the MCU sends goes there */
static uint8_t to_host[1 << 16];
static size_t to_host_len;

static void on_byte(struct avr_irq_t *irq, uint32_t value, void *param) {
    (void)irq, (void)param;
    smp_frame f;
    if (pty_fd >= 0 && to_host_len < sizeof to_host) to_host[to_host_len++] = (uint8_t)value;
    if (!smp_decoder_feed(&from_mcu, (uint8_t)value, &f)) return;
    if (f.msg_type == SMP_MSG_DESCRIBE) describes++;
    if (f.msg_type == SMP_MSG_SENSOR && sensors < 200) {
        sensor_arrivals[sensors] = avr->cycle;
        sensor_stamps[sensors++] = f.timestamp_us;
    }
    if (f.msg_type == SMP_MSG_STATUS) {
        statuses++;
        last_flags = f.payload[0];
        last_applied = (uint32_t)f.payload[9] | (uint32_t)f.payload[10] << 8 | (uint32_t)f.payload[11] << 16 |
                       (uint32_t)f.payload[12] << 24;
    }
}

/* Cycles each interrupt ran, entry to RETI (the vector's RUNNING irq), worst case: what the timer costs the loop. */
typedef struct {
    const char *name;
    uint8_t vector;
    uint64_t entered, worst, count;
} isr_cost;
static isr_cost isrs[3] = {{"TIMER0_COMPA (1 kHz: sample clock, watchdog)", 0, 0, 0, 0},
                           {"UART RX", 0, 0, 0, 0},
                           {"UART UDRE", 0, 0, 0, 0}};

static void on_isr(struct avr_irq_t *irq, uint32_t running, void *param) {
    (void)irq;
    isr_cost *c = param;
    if (running) {
        c->entered = avr->cycle;
    } else if (c->entered) {
        uint64_t took = avr->cycle - c->entered;
        if (took > c->worst) c->worst = took;
        c->count++;
    }
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param) { (void)irq, (void)value, (void)param; xon = 1; }
static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param) { (void)irq, (void)value, (void)param; xon = 0; }

static void host_frame(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n) {
    pending_len = smp_encode_frame(type, seq, 0, payload, n, pending, sizeof pending);
    pending_pos = 0;
}

static uint16_t pwm(void) { return (uint16_t)(avr->data[OCR1A_ADDR] | avr->data[OCR1A_ADDR + 1] << 8); }

/* Run the MCU until simulated time `until_us`, feeding the pending host frame a byte at a time. */
static void run_until(uint64_t until_us) {
    uint64_t until = until_us * (avr->frequency / 1000000u);
    while (avr->cycle < until) {
        if (pending_pos < pending_len && xon) {
            avr_raise_irq(uart_in, pending[pending_pos++]);
            if (pending_pos == pending_len) fed_at_us = avr->cycle / (avr->frequency / 1000000u);
        }
        int state = avr_run(avr);
        if (expect_pwm >= 0 && pending_pos == pending_len && pwm() == expect_pwm) {
            applied_at_us = avr->cycle / (avr->frequency / 1000000u);
            if (latencies < 64) latency_us[latencies++] = applied_at_us - fed_at_us;
            expect_pwm = -1;
        }
        if (state == cpu_Done || state == cpu_Crashed) {
            printf("FAIL the MCU stopped (state %d)\n", state);
            exit(1);
        }
    }
}

static uint64_t now_us(void) { return avr->cycle / (avr->frequency / 1000000u); }

static int failures;
#define CHECK(cond, what)                                  \
    do {                                                   \
        if (cond) printf("ok   %s\n", what);               \
        else {                                             \
            printf("FAIL %s\n", what);                     \
            failures++;                                    \
        }                                                  \
    } while (0)

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static uint64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --pty: the MCU's UART0 on a raw pty, simulated time paced to the wall clock (100 us steps). */
static int serve_pty(void) {
    pty_fd = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
    if (pty_fd < 0 || grantpt(pty_fd) != 0 || unlockpt(pty_fd) != 0) {
        perror("harness: posix_openpt");
        return 2;
    }
    const char *path = ptsname(pty_fd);
    int slave = open(path, O_RDWR | O_NOCTTY); /* held open: the master reads EIO while no slave is */
    struct termios raw;
    tcgetattr(slave, &raw);
    cfmakeraw(&raw); /* no line discipline: 0x00, 0x0A and 0x11 must pass untouched */
    tcsetattr(slave, TCSANOW, &raw);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    printf("%s\n", path);
    fflush(stdout);
    uint64_t t0 = wall_us(), late_us = 0;
    while (!stop_requested) {
        if (pending_pos == pending_len) { /* the host's next bytes (any number: fed as the UART takes them) */
            ssize_t n = read(pty_fd, pending, sizeof pending);
            pending_len = n > 0 ? (size_t)n : 0;
            pending_pos = 0;
        }
        run_until(now_us() + 100);
        while (to_host_len) {
            ssize_t w = write(pty_fd, to_host, to_host_len);
            if (w <= 0) break; /* the host is not reading: keep it for later (up to 64 KiB) */
            memmove(to_host, to_host + w, to_host_len - (size_t)w);
            to_host_len -= (size_t)w;
        }
        uint64_t ahead = now_us() > wall_us() - t0 ? now_us() - (wall_us() - t0) : 0;
        if (ahead > 200) usleep((useconds_t)ahead);
        else if (!ahead) late_us = (wall_us() - t0) - now_us();
    }
    fprintf(stderr, "harness: %.3f s simulated; %llu us behind the wall clock at the end\n", now_us() / 1e6,
            (unsigned long long)late_us);
    close(slave);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: harness FIRMWARE.elf\n");
        return 2;
    }
    elf_firmware_t fw;
    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(argv[1], &fw) != 0) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    const mcu_info *mcu = &MCUS[0];
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], "--mcu") == 0) mcu = strcmp(argv[i + 1], "atmega328p") == 0 ? &MCUS[1] : &MCUS[0];
    avr = avr_make_mcu_by_name(mcu->name);
    avr_init(avr);
    avr->frequency = 16000000;
    avr->log = LOG_ERROR;
    avr_load_firmware(avr, &fw);
    memset(avr->data + mcu->sram_start, PAINT, avr->ramend + 1u - mcu->sram_start);
    isrs[0].vector = mcu->timer0_compa, isrs[1].vector = mcu->uart_rx, isrs[2].vector = mcu->uart_udre;
    uint32_t flags = 0;
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
    flags &= ~AVR_UART_FLAG_STDIO; /* binary frames, not text for the console */
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_byte, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, NULL);
    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    for (int i = 0; i < 3; i++)
        avr_irq_register_notify(avr_get_interrupt_irq(avr, isrs[i].vector) + AVR_INT_IRQ_RUNNING, on_isr, &isrs[i]);
    smp_decoder_init(&from_mcu);
    if (argc > 2 && strcmp(argv[2], "--pty") == 0) return serve_pty();

    run_until(10000);
    const uint8_t hello[2] = {SMP_PROTOCOL_VERSION, 0};
    host_frame(SMP_MSG_HELLO, 0, hello, 2);
    run_until(20000);
    CHECK(describes == 1, "HELLO answered with DESCRIBE");
    host_frame(SMP_MSG_START, 1, NULL, 0);
    run_until(30000);
    CHECK(statuses >= 1 && last_flags == SMP_STATUS_STREAMING, "START acknowledged (STATUS STREAMING)");

    int start_sensors = sensors;
    uint64_t t0 = now_us();
    const uint8_t cmd[5] = {1, 0x00, 0x00, 0x20, 0x40};  /* 2.5 V: OCR1A 512 */
    const uint8_t half[5] = {1, 0x00, 0x00, 0xa0, 0x3f}; /* 1.25 V: 256, so each COMMAND shows when applied */
    for (int k = 0; k < 50; k++) { /* 500 ms of commands at 100 Hz, at phases spread over the SENSOR period */
        run_until(t0 + 10000u * k + (1370u * (unsigned)k) % 7000u); /* >= 3 ms apart: one awaited at a time */
        host_frame(SMP_MSG_COMMAND, (uint16_t)(2 + k), k % 2 ? half : cmd, 5);
        expect_pwm = k % 2 ? 256 : 512;
    }
    run_until(t0 + 500000u);
    int streamed = sensors - start_sensors;
    printf("SENSOR frames in 500 ms of simulated time: %d (declared 100 Hz); MCU clock %u us at simulated %llu us\n",
           streamed, sensor_stamps[sensors - 1], (unsigned long long)now_us());
    CHECK(streamed >= 49 && streamed <= 51, "SENSOR streamed at the declared rate in simulated time");
    double rate = (double)(sensors - 1) * (double)avr->frequency / (double)(sensor_arrivals[sensors - 1] -
                                                                             sensor_arrivals[0]);
    printf("stream rate over %d SENSOR frames: %.4f Hz in simulated time (declared 100 Hz): error %.4f %%\n", sensors,
           rate, 100.0 * (rate / 100.0 - 1.0));
    CHECK(rate > 99.9 && rate < 100.1, "stream rate within 0.1 % of the declared one");
    uint64_t worst = 0, sum = 0;
    for (int i = 0; i < latencies; i++) {
        sum += latency_us[i];
        if (latency_us[i] > worst) worst = latency_us[i];
    }
    printf("COMMAND -> PWM: %d of 50 applied, mean %.2f ms, worst %.2f ms after the frame's last byte entered "
           "the UART\n", latencies, latencies ? (double)sum / latencies / 1000.0 : 0.0, (double)worst / 1000.0);
    CHECK(latencies == 50 && pwm() == 256,
          "every COMMAND applied: 2.5 V and 1.25 V as 50 % and 25 % duty cycles (OCR1A 512, 256 of 1023)");

    uint64_t last_cmd = applied_at_us; /* the node applied the last good COMMAND then */
    uint8_t bad[64];
    size_t n = smp_encode_frame(SMP_MSG_COMMAND, 60, 0, cmd, 5, bad, sizeof bad);
    bad[9] ^= 0x10;
    memcpy(pending, bad, n);
    pending_len = n, pending_pos = 0;
    uint64_t zeroed_at = 0;
    while (now_us() < last_cmd + 200000u && !zeroed_at) {
        run_until(now_us() + 100);
        if (pwm() == 0) zeroed_at = now_us();
    }
    printf("watchdog: PWM zeroed %.2f ms after the last good COMMAND was applied (watchdog_ms 100)\n",
           (double)(zeroed_at - last_cmd) / 1000.0);
    /* The watchdog counts in the 1 kHz timer interrupt from the tick after the COMMAND was applied. */
    CHECK(zeroed_at && zeroed_at - last_cmd >= 99000u && zeroed_at - last_cmd <= 101000u,
          "a corrupted COMMAND does not feed the watchdog: PWM zeroed within watchdog_ms + 1 tick of the last one");
    run_until(now_us() + 5000);
    CHECK(last_flags == (SMP_STATUS_STREAMING | SMP_STATUS_WATCHDOG_TRIPPED), "the trip reported in STATUS");
    host_frame(SMP_MSG_STOP, 61, NULL, 0);
    run_until(now_us() + 1100000u); /* past a heartbeat: the counters */
    CHECK(!(last_flags & SMP_STATUS_STREAMING) && last_applied == 50,
          "STOP acknowledged; STATUS counts the 50 applied commands");
    printf("STATUS after STOP: commands_applied %u; frames from the MCU decoded %u, bad %u\n", last_applied,
           from_mcu.frames_ok, from_mcu.frames_bad);
    for (int i = 0; i < 3; i++)
        printf("interrupt %s: worst case %llu cycles (%.2f us at 16 MHz) over %llu runs\n", isrs[i].name,
               (unsigned long long)isrs[i].worst, (double)isrs[i].worst / 16.0, (unsigned long long)isrs[i].count);
    CHECK(isrs[0].count > 1000 && isrs[0].worst < 1600, "the timer interrupt takes under 100 us (a tenth of its period)");
    /* The longest run of paint between the static data and the top of RAM is what nothing ever used. */
    unsigned run = 0, best = 0, best_end = 0, sram = avr->ramend + 1u - mcu->sram_start;
    for (unsigned a = mcu->sram_start; a <= avr->ramend; a++) {
        run = avr->data[a] == PAINT ? run + 1 : 0;
        if (run > best) best = run, best_end = a;
    }
    printf("%s SRAM %u B: stack peak %u B; %u B never touched\n", mcu->name, sram, avr->ramend - best_end, best);
    CHECK(best >= 128, "at least 128 B of SRAM never touched, stack included");
    printf("%s: %d failure%s\n", failures ? "FAILED" : "passed", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
