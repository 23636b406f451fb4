/* The device node's session in simulated time: handshake, streaming rate, command, watchdog, STOP, STATUS.
 * A fake HAL: a µs clock the test advances, a UART whose output the test decodes with the same library. */
#include <stdio.h>
#include <string.h>

#include "smp_node.h"
#include "qube.h"
#include "vectors.h"

/* The fake board. */
static uint32_t now_us;
static uint8_t in[4096];
static size_t in_len, in_pos;
static uint8_t out[1 << 20];
static size_t out_len;
static float motor = -99.0f;
static int32_t counts;

static uint32_t micros(void *ctx) { (void)ctx; return now_us; }
static int uart_read(void *ctx, uint8_t *b) {
    (void)ctx;
    if (in_pos >= in_len) return 0;
    *b = in[in_pos++];
    return 1;
}
static void uart_write(void *ctx, const uint8_t *d, size_t n) {
    (void)ctx;
    if (out_len + n <= sizeof out) memcpy(out + out_len, d, n), out_len += n;
}
static void read_imu(void *ctx, float *v) { (void)ctx; for (int c = 0; c < 6; c++) v[c] = 0.5f * (float)c; }
static void read_encoders(void *ctx, int32_t *c) { (void)ctx; *c = counts++; }
static void write_actuators(void *ctx, const float *v) { (void)ctx; motor = v[0]; }
static int stream_events = 0, streaming_said = -1; /* what on_stream was told */
static void on_stream(void *ctx, int on) { (void)ctx; stream_events++; streaming_said = on; }
static const smp_hal HAL = {micros, uart_read, uart_write, read_imu, read_encoders, write_actuators, NULL, on_stream};

static void host_sends(const uint8_t *wire, size_t n) {
    memcpy(in + in_len, wire, n);
    in_len += n;
}

static void host_command(float v, uint16_t seq) {
    uint8_t payload[5] = {1}, wire[32];
    uint32_t bits;
    memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; i++) payload[1 + i] = (uint8_t)(bits >> (8 * i));
    host_sends(wire, smp_encode_frame(SMP_MSG_COMMAND, seq, 0, payload, 5, wire, sizeof wire));
}

/* What the device sent since `from`: counts per type, the last STATUS payload. */
typedef struct { int describe, sensor, status; uint8_t last_flags; uint32_t last_applied; size_t describe_at; } seen;
static seen decode_out(size_t from) {
    static smp_decoder d;
    smp_frame f;
    seen s = {0, 0, 0, 0, 0, 0};
    smp_decoder_init(&d);
    for (size_t i = from; i < out_len; i++) {
        if (!smp_decoder_feed(&d, out[i], &f)) continue;
        if (f.msg_type == SMP_MSG_DESCRIBE) s.describe++, s.describe_at = i;
        if (f.msg_type == SMP_MSG_SENSOR) s.sensor++;
        if (f.msg_type == SMP_MSG_STATUS) {
            s.status++;
            s.last_flags = f.payload[0];
            s.last_applied = (uint32_t)f.payload[9] | (uint32_t)f.payload[10] << 8 | (uint32_t)f.payload[11] << 16 |
                             (uint32_t)f.payload[12] << 24;
        }
    }
    return s;
}

static smp_node node;

/* Advance simulated time by `ms`, sampling at 1 kHz and polling every sample; a COMMAND every 10 ms if asked. */
static void run(int ms, int commanding, float v) {
    for (int t = 0; t < ms; t++) {
        now_us += 1000;
        if (commanding && t % 10 == 0) host_command(v, (uint16_t)t);
        smp_node_sample(&node);
        smp_node_poll(&node);
    }
}

int main(void) {
    CHECK(smp_node_init(&node, &QUBE, &HAL) == 0 && motor == 0.0f && out_len == 1 && out[0] == 0,
          "init: actuators zeroed, the flush byte sent");
    host_sends(VEC_HELLO, sizeof VEC_HELLO);
    smp_node_poll(&node);
    CHECK(out_len == 1 + sizeof VEC_DESCRIBE_QUBE && memcmp(out + 1, VEC_DESCRIBE_QUBE, sizeof VEC_DESCRIBE_QUBE) == 0,
          "HELLO answered with DESCRIBE, byte for byte Python's");

    size_t mark = out_len;
    host_sends(VEC_START, sizeof VEC_START);
    smp_node_poll(&node);
    seen s = decode_out(mark);
    CHECK(s.status == 1 && s.last_flags == SMP_STATUS_STREAMING, "START acknowledged by STATUS (STREAMING)");
    CHECK(stream_events == 1 && streaming_said == 1, "START told to the port (on_stream)");

    mark = out_len;
    run(1000, 1, 1.5f);
    s = decode_out(mark);
    CHECK(s.sensor == 100, "100 SENSOR frames in 1 s of simulated time (stream_rate_hz 100)");
    CHECK(motor == 1.5f && node.commands_applied == 100, "every COMMAND applied");
    CHECK(s.status >= 1 && s.last_applied == 100, "STATUS heartbeat within a second, with the counters");

    run(10, 1, 9.0f);
    CHECK(motor == 5.0f, "a COMMAND past the actuator's range is clamped to it");

    mark = out_len;
    uint32_t last_command = now_us - 9000; /* the last COMMAND was read 9 ms ago (t % 10 == 0) */
    uint32_t tripped_at = 0;
    for (int t = 0; t < 150 && !tripped_at; t++) {
        run(1, 0, 0.0f);
        if (motor == 0.0f) tripped_at = now_us;
    }
    s = decode_out(mark);
    CHECK(tripped_at && tripped_at - last_command >= 100000u && tripped_at - last_command <= 101000u,
          "no COMMAND for watchdog_ms (100 ms): actuators zeroed within a millisecond of it");
    CHECK(s.status >= 1 && (s.last_flags & SMP_STATUS_WATCHDOG_TRIPPED), "the trip reported in STATUS");
    run(50, 0, 0.0f);
    CHECK(motor == 0.0f && node.streaming, "the device keeps streaming, actuators held at zero");

    run(20, 1, -2.0f);
    CHECK(motor == -2.0f && !node.tripped, "a COMMAND after a trip is applied again");

    mark = out_len;
    host_sends(VEC_STOP, sizeof VEC_STOP);
    smp_node_poll(&node);
    run(100, 0, 0.0f);
    s = decode_out(mark);
    CHECK(motor == 0.0f && s.sensor == 0 && s.status == 1 && s.last_flags == 0,
          "STOP: actuators zeroed, streaming stops, acknowledged by STATUS");
    CHECK(stream_events == 2 && streaming_said == 0, "STOP told to the port (on_stream)");

    uint8_t bad[sizeof VEC_COMMAND];
    memcpy(bad, VEC_COMMAND, sizeof bad);
    bad[12] ^= 0x04;
    uint32_t before = node.frames_bad;
    host_sends(bad, sizeof bad);
    smp_node_poll(&node);
    CHECK(node.frames_bad == before + 1, "a corrupted frame counted in frames_bad");

    /* The watchdog in a 1 ms tick (a port's timer interrupt): the main loop may be as late as it likes. */
    host_sends(VEC_START, sizeof VEC_START);
    smp_node_poll(&node);
    for (int t = 0; t < 30; t++) { /* commands every 10 ms, the tick every 1 ms */
        now_us += 1000;
        if (t % 10 == 0) host_command(2.0f, (uint16_t)(100 + t));
        smp_node_tick_1ms(&node);
        smp_node_poll(&node);
    }
    uint32_t applied = now_us - 9000; /* the last COMMAND was handled 9 ms ago */
    uint32_t zeroed = 0;
    for (int t = 0; t < 150 && !zeroed; t++) { /* ticks only: no poll, no sample */
        now_us += 1000;
        smp_node_tick_1ms(&node);
        if (motor == 0.0f) zeroed = now_us;
    }
    CHECK(zeroed && zeroed - applied >= 100000u && zeroed - applied <= 101000u,
          "the tick's watchdog zeroes the actuators within a tick of watchdog_ms, without the main loop");
    mark = out_len;
    smp_node_poll(&node);
    s = decode_out(mark);
    CHECK(s.status == 1 && (s.last_flags & SMP_STATUS_WATCHDOG_TRIPPED), "the next poll reports the trip in STATUS");
    printf("%s: %d failure%s\n", failures ? "FAILED" : "passed", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
