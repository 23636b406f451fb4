/* The C library against frames the Python host encoded (vectors.h, generated), and a fuzz run of its decoder.
 * Built by tests/firmware/test_native.py with -Werror and ASan/UBSan; prints one line per check, exits 1 on a failure. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "smp.h"
#include "qube.h"
#include "vectors.h"

static int same(const uint8_t *a, size_t na, const uint8_t *b, size_t nb) { return na == nb && memcmp(a, b, na) == 0; }

static int decode_all(smp_decoder *d, const uint8_t *wire, size_t n, smp_frame *last) {
    int frames = 0;
    for (size_t i = 0; i < n; i++) frames += smp_decoder_feed(d, wire[i], last);
    return frames;
}

static void test_crc_and_cobs(void) {
    CHECK(smp_crc32((const uint8_t *)"123456789", 9) == 0xCBF43926u, "CRC-32 check value 0xCBF43926");
    const uint8_t in[4] = {0x11, 0x22, 0x00, 0x33}, want[5] = {0x03, 0x11, 0x22, 0x02, 0x33};
    uint8_t out[8], back[8];
    size_t n = smp_cobs_encode(in, 4, out);
    CHECK(same(out, n, want, 5), "COBS 11 22 00 33 -> 03 11 22 02 33");
    CHECK(smp_cobs_decode(out, n, back, sizeof back) == 4 && memcmp(back, in, 4) == 0, "COBS round trip");
    uint8_t run[600], enc[SMP_COBS_MAX(600)], dec[600];
    for (int i = 0; i < 600; i++) run[i] = (uint8_t)(1 + i % 255);
    n = smp_cobs_encode(run, 600, enc);
    CHECK(smp_cobs_decode(enc, n, dec, sizeof dec) == 600 && memcmp(dec, run, 600) == 0, "COBS over 254-byte blocks");
}

static void test_device_frames_match_python(void) {
    uint8_t payload[SMP_FW_MAX_PAYLOAD], wire[SMP_FW_MAX_WIRE];
    size_t n = smp_pack_describe(&QUBE, payload, sizeof payload);
    size_t w = smp_encode_frame(SMP_MSG_DESCRIBE, 0, 0, payload, n, wire, sizeof wire);
    CHECK(n == 202 && same(wire, w, VEC_DESCRIBE_QUBE, sizeof VEC_DESCRIBE_QUBE), "DESCRIBE of the Qube = Python's");

    float imu[60];
    int32_t enc[10];
    for (int i = 0; i < 60; i++) imu[i] = i == 59 ? 2.0f : (float)(-2.0 + i * (4.0 / 59.0)); /* numpy.linspace */
    for (int k = 0; k < 10; k++) enc[k] = 1000 * (k - 5);
    n = smp_pack_sensor(&QUBE, 10, imu, enc, payload, sizeof payload);
    w = smp_encode_frame(SMP_MSG_SENSOR, 7, 123456u, payload, n, wire, sizeof wire);
    CHECK(n == 1 + 28 * 10, "SENSOR payload 1 + 28 x 10 bytes (SMP_FW_MAX_PAYLOAD >= 281: six f32 channels)");
    CHECK(same(wire, w, VEC_SENSOR_QUBE, sizeof VEC_SENSOR_QUBE), "SENSOR of 10 samples = Python's");

    n = smp_pack_status(SMP_STATUS_STREAMING, 10, 1, 9, payload, sizeof payload);
    w = smp_encode_frame(SMP_MSG_STATUS, 0xFFFFu, 0xFFFFFFFFu, payload, n, wire, sizeof wire);
    CHECK(same(wire, w, VEC_STATUS, sizeof VEC_STATUS), "STATUS = Python's (seq and timestamp at their maxima)");

    const uint8_t volts[5] = {1, 0x00, 0x00, 0xc0, 0x3f}; /* 1.5 as f32 */
    w = smp_encode_frame(SMP_MSG_COMMAND, 7, 1000, volts, 5, wire, sizeof wire);
    CHECK(same(wire, w, VEC_COMMAND, sizeof VEC_COMMAND), "COMMAND frame = docs/protocol.md's worked example");
}

static void test_int16_channels(void) {
    const smp_channel counted[2] = {{"gyro_x", "rad/s", SMP_ENCODING_I16, 0.001f}, {"accel_z", "m/s^2", 0, 1.0f}};
    const smp_encoder wheels[2] = {{"left", 1000u, 0.0f}, {"right", 1000u, 0.0f}};
    smp_device dev = QUBE;
    dev.n_channels = 2, dev.channels = counted, dev.n_encoders = 2, dev.encoders = wheels;
    const float imu[4] = {0.0123f, 9.5f, -40.0f, -1.0f};
    const int32_t enc[4] = {5, -6, 7, 2147483647};
    uint8_t out[64];
    size_t n = smp_pack_sensor(&dev, 2, imu, enc, out, sizeof out);
    /* Python: struct.pack("<hfii", 12, 9.5, 5, -6) + struct.pack("<hfii", -32768, -1.0, 7, 2**31 - 1) */
    const uint8_t want[29] = {2,    12,   0,    0x00, 0x00, 0x18, 0x41, 5,    0,    0,    0,    0xfa, 0xff, 0xff, 0xff,
                              0x00, 0x80, 0x00, 0x00, 0x80, 0xbf, 7,    0,    0,    0,    0xff, 0xff, 0xff, 0x7f};
    CHECK(same(out, n, want, sizeof want), "SENSOR with an int16 channel and two encoders (rounded, clipped)");
}

static void test_host_frames_decode(void) {
    smp_decoder d;
    smp_frame f;
    float v[3];
    uint16_t version = 0;
    smp_decoder_init(&d);
    CHECK(decode_all(&d, VEC_COMMAND, sizeof VEC_COMMAND, &f) == 1 && smp_unpack_command(&f, 1, v) == 0 &&
              v[0] == 1.5f && f.seq == 7 && f.timestamp_us == 1000,
          "COMMAND 1.5 V decoded");
    CHECK(decode_all(&d, VEC_COMMAND3, sizeof VEC_COMMAND3, &f) == 1 && smp_unpack_command(&f, 3, v) == 0 &&
              v[0] == -3.25f && v[1] == 0.0f && v[2] == 12.0f && f.seq == 300,
          "COMMAND of three actuators decoded");
    CHECK(smp_unpack_command(&f, 1, v) == -1, "COMMAND with the wrong actuator count refused");
    CHECK(decode_all(&d, VEC_HELLO, sizeof VEC_HELLO, &f) == 1 && smp_unpack_hello(&f, &version) == 0 &&
              version == SMP_PROTOCOL_VERSION,
          "HELLO decoded with the host's version");
    CHECK(decode_all(&d, VEC_START, sizeof VEC_START, &f) == 1 && f.msg_type == SMP_MSG_START && f.length == 0,
          "START decoded");
    CHECK(decode_all(&d, VEC_STOP, sizeof VEC_STOP, &f) == 1 && f.msg_type == SMP_MSG_STOP, "STOP decoded");

    uint8_t bad[sizeof VEC_COMMAND];
    memcpy(bad, VEC_COMMAND, sizeof bad);
    bad[12] ^= 0x04; /* one payload bit flipped on the line */
    uint32_t before = d.frames_bad;
    CHECK(decode_all(&d, bad, sizeof bad, &f) == 0 && d.frames_bad == before + 1, "a corrupted COMMAND is dropped");
    CHECK(decode_all(&d, VEC_COMMAND, sizeof VEC_COMMAND, &f) == 1, "and the next frame is taken");

    uint8_t nan_cmd[5] = {1, 0x00, 0x00, 0xc0, 0x7f}, wire[32]; /* NaN */
    size_t w = smp_encode_frame(SMP_MSG_COMMAND, 8, 0, nan_cmd, 5, wire, sizeof wire);
    CHECK(decode_all(&d, wire, w, &f) == 1 && smp_unpack_command(&f, 1, v) == -1, "a NaN command is refused");
}

/* Random bytes and mutated valid frames through the decoder: with ASan/UBSan any overrun aborts the run. */
static void fuzz_decoder(unsigned long inputs) {
    const uint8_t *valid[] = {VEC_COMMAND, VEC_COMMAND3, VEC_HELLO, VEC_STATUS, VEC_DESCRIBE_QUBE, VEC_SENSOR_QUBE};
    const size_t sizes[] = {sizeof VEC_COMMAND,      sizeof VEC_COMMAND3,   sizeof VEC_HELLO,
                            sizeof VEC_STATUS,       sizeof VEC_DESCRIBE_QUBE, sizeof VEC_SENSOR_QUBE};
    static smp_decoder d;
    smp_frame f;
    uint8_t buf[2 * SMP_FW_MAX_WIRE];
    unsigned long accepted_corrupt = 0, resynced = 0;
    uint32_t state = 12345u;
    smp_decoder_init(&d);
    for (unsigned long i = 0; i < inputs; i++) {
        state = state * 1664525u + 1013904223u;
        size_t which = (state >> 8) % 6, n = sizes[which];
        memcpy(buf, valid[which], n);
        int kind = (int)((state >> 16) % 3);
        if (kind == 0) { /* flip 1..3 bits (not the delimiter) */
            for (int b = 0; b < 1 + (int)(state % 3); b++) {
                state = state * 1664525u + 1013904223u;
                buf[(state >> 8) % (n - 1)] ^= (uint8_t)(1u << (state % 8));
            }
        } else if (kind == 1) { /* random bytes, some long enough to overflow */
            n = (state >> 4) % sizeof buf;
            for (size_t k = 0; k < n; k++) {
                state = state * 1664525u + 1013904223u;
                buf[k] = (uint8_t)(state >> 24);
            }
        } else { /* truncated */
            n = 1 + (state >> 4) % n;
        }
        int got = decode_all(&d, buf, n, &f);
        got += smp_decoder_feed(&d, 0, &f); /* the delimiter ends the input */
        if (kind == 0 && got > 0) {
            float v[8];
            uint16_t ver;
            (void)smp_unpack_command(&f, 1, v);
            (void)smp_unpack_hello(&f, &ver);
            if (memcmp(buf, valid[which], sizes[which]) != 0) accepted_corrupt++;
        }
        resynced += (unsigned long)decode_all(&d, VEC_COMMAND, sizeof VEC_COMMAND, &f);
    }
    printf("fuzz: %lu inputs, %lu corrupted frames accepted, resynchronised %lu times\n", inputs, accepted_corrupt,
           resynced);
    CHECK(resynced == inputs, "the decoder takes the clean frame after every fuzzed input");
}

int main(int argc, char **argv) {
    unsigned long inputs = argc > 1 ? strtoul(argv[1], NULL, 10) : 20000ul;
    test_crc_and_cobs();
    test_device_frames_match_python();
    test_int16_channels();
    test_host_frames_decode();
    fuzz_decoder(inputs);
    printf("%s: %d failure%s\n", failures ? "FAILED" : "passed", failures, failures == 1 ? "" : "s");
    return failures ? 1 : 0;
}
