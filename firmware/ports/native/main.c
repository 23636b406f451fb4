/* Firmware in the loop: the node compiled for the host, its hardware played by the simulator.
 *
 * `sim twin --firmware PATH` starts this program with two file descriptors:
 *   --uart FD     the pty master: the UART, which the host (`hw run`) opens as its serial port;
 *   --physics FD  a SOCK_SEQPACKET socket to the simulator, which plays the sensors and the motor.
 * Everything the host sees is produced by the same library and node code a board runs
 * (src/smp.c, src/smp_node.c); only this file's HAL differs from a board's.
 *
 * Physics messages (one per packet, little-endian; docs/firmware.md, "Firmware in the loop"):
 *   simulator -> firmware, once at start:  'D' + a DESCRIBE payload (the device this build plays)
 *   firmware -> simulator:  'B' START (a new episode)      'E' STOP
 *                           'A' + f32 per actuator: the values the node wrote (commands, watchdog, STOP)
 *                           'S' take a sample: one IMU period of physics, then
 *   simulator -> firmware:  'R' + f32 per channel (SI) + i32 per encoder [+ height u8, width u8, pixels:
 *                           a camera frame that reached the host side, sent as an IMAGE frame]
 *
 * Time is real: samples are taken every 1/imu_rate_hz of CLOCK_MONOTONIC, so the host's
 * latency is real and the node's watchdog runs on the clock a board's would. Bytes wait in a
 * transmit buffer until the pty takes them; a host that stops reading loses whole frames
 * once 256 KiB wait (as the Python twin does), never the sample clock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smp_node.h"

#define MAX_PACKET (1u + SMP_FW_MAX_PAYLOAD)
#define TEXT 9u /* 8-byte fields + NUL */

static int uart_fd = -1, physics_fd = -1;
static uint8_t rx[4096];
static size_t rx_len, rx_pos;
static uint8_t tx[256u * 1024u];
static size_t tx_len;
static unsigned long dropped_bytes;

static char dev_name[17], texts[SMP_MAX_CHANNELS * 2 + SMP_MAX_ENCODERS + SMP_MAX_ACTUATORS * 2][TEXT];
static smp_channel channels[SMP_MAX_CHANNELS];
static smp_encoder encoders[SMP_MAX_ENCODERS];
static smp_actuator actuators[SMP_MAX_ACTUATORS];
static smp_device device;

static float imu_sample[SMP_MAX_CHANNELS];
static int32_t encoder_sample[SMP_MAX_ENCODERS];
static uint8_t image[SMP_FW_MAX_PAYLOAD]; /* an IMAGE payload to send after the sample, when image_len > 0 */
static size_t image_len;

static void die(const char *what) {
    fprintf(stderr, "smp_native: %s\n", what);
    exit(2);
}

static uint64_t micros64(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t t0;

static uint32_t hal_micros(void *ctx) {
    (void)ctx;
    return (uint32_t)(micros64() - t0);
}

static int hal_uart_read(void *ctx, uint8_t *byte) {
    (void)ctx;
    if (rx_pos == rx_len) {
        ssize_t n = read(uart_fd, rx, sizeof rx);
        if (n <= 0) return 0; /* EAGAIN, or EIO while no host holds the port open */
        rx_len = (size_t)n;
        rx_pos = 0;
    }
    *byte = rx[rx_pos++];
    return 1;
}

/* The transmit side of the wire: bytes wait here until the pty takes them (a board's UART drains at its baud
 * rate whether anyone listens or not; a pty drains only as fast as the host reads, so the wire is this buffer). */
static void flush_tx(void) {
    while (tx_len) {
        ssize_t w = write(uart_fd, tx, tx_len);
        if (w <= 0) return; /* the pty is full (EAGAIN) or no host holds it: later */
        memmove(tx, tx + w, tx_len - (size_t)w);
        tx_len -= (size_t)w;
    }
}

static void hal_uart_write(void *ctx, const uint8_t *data, size_t n) {
    (void)ctx;
    if (tx_len + n > sizeof tx) { /* a host that stopped reading: lose the frame whole, as the twin does */
        dropped_bytes += n;
        return;
    }
    memcpy(tx + tx_len, data, n);
    tx_len += n;
    flush_tx();
}

static void physics_send(const uint8_t *packet, size_t n) {
    if (send(physics_fd, packet, n, 0) != (ssize_t)n) die("the simulator is gone");
}

static void put_f32(uint8_t *p, float f) { memcpy(p, &f, 4); } /* the host is little-endian (x86-64, arm64) */

static void hal_read_imu(void *ctx, float *values) { /* one sample of physics; the encoders come with it */
    (void)ctx;
    static uint8_t reply[1u + 4u * (SMP_MAX_CHANNELS + SMP_MAX_ENCODERS) + 2u + SMP_FW_MAX_PAYLOAD];
    const uint8_t request = 'S';
    physics_send(&request, 1);
    ssize_t n = recv(physics_fd, reply, sizeof reply, 0);
    size_t fixed = 1u + 4u * (device.n_channels + device.n_encoders);
    if (n < (ssize_t)fixed || reply[0] != 'R') die("malformed sample from the simulator");
    memcpy(imu_sample, reply + 1, 4u * device.n_channels);
    memcpy(encoder_sample, reply + 1 + 4u * device.n_channels, 4u * device.n_encoders);
    memcpy(values, imu_sample, 4u * device.n_channels);
    image_len = (size_t)n - fixed;
    if (image_len) memcpy(image, reply + fixed, image_len);
}

static void hal_read_encoders(void *ctx, int32_t *counts) {
    (void)ctx;
    memcpy(counts, encoder_sample, 4u * device.n_encoders);
}

static void hal_write_actuators(void *ctx, const float *values) {
    (void)ctx;
    uint8_t packet[1u + 4u * SMP_MAX_ACTUATORS];
    packet[0] = 'A';
    for (uint8_t i = 0; i < device.n_actuators; i++) put_f32(packet + 1 + 4u * i, values[i]);
    physics_send(packet, 1u + 4u * device.n_actuators);
}

static void hal_on_stream(void *ctx, int streaming) {
    (void)ctx;
    const uint8_t event = streaming ? 'B' : 'E';
    physics_send(&event, 1);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | ((uint32_t)get16(p + 2) << 16); }

static float get_f32(const uint8_t *p) {
    float f;
    memcpy(&f, p, 4);
    return f;
}

static const char *text(size_t *used, const uint8_t *p, size_t size) {
    char *t = texts[(*used)++];
    memcpy(t, p, size);
    t[size] = 0;
    return t;
}

/* The device this build plays, from the DESCRIBE payload the simulator sends (docs/protocol.md, DESCRIBE). */
static void read_description(void) {
    static uint8_t packet[MAX_PACKET];
    ssize_t n = recv(physics_fd, packet, sizeof packet, 0);
    const uint8_t *p = packet + 1;
    if (n < 1 + (ssize_t)SMP_DESCRIBE_FIXED_SIZE || packet[0] != 'D') die("expected the device description first");
    if (get16(p) != SMP_PROTOCOL_VERSION) die("the description is for another protocol version");
    memcpy(dev_name, p + 2, 16);
    device.name = dev_name;
    device.imu_rate_hz = get16(p + 18);
    device.imu_window = get16(p + 20);
    device.samples_per_frame = p[22];
    device.stream_rate_hz = get16(p + 23);
    device.control_rate_hz = get16(p + 25);
    device.image_height = p[27];
    device.image_width = p[28];
    device.camera_rate_hz = get16(p + 29);
    device.watchdog_ms = get16(p + 31);
    device.n_channels = p[33];
    device.n_encoders = p[34];
    device.n_actuators = p[35];
    if (device.n_channels > SMP_MAX_CHANNELS || device.n_encoders > SMP_MAX_ENCODERS ||
        device.n_actuators > SMP_MAX_ACTUATORS || device.imu_rate_hz == 0)
        die("the description declares more than this build holds");
    size_t size = SMP_DESCRIBE_FIXED_SIZE + device.n_channels * SMP_DESCRIBE_CHANNEL_SIZE +
                  device.n_encoders * SMP_DESCRIBE_ENCODER_SIZE + device.n_actuators * SMP_DESCRIBE_ACTUATOR_SIZE;
    if ((size_t)n != 1u + size) die("the description's length does not match its counts");
    size_t used = 0;
    p += SMP_DESCRIBE_FIXED_SIZE;
    for (uint8_t i = 0; i < device.n_channels; i++, p += SMP_DESCRIBE_CHANNEL_SIZE) {
        channels[i].name = text(&used, p, 8);
        channels[i].unit = text(&used, p + 8, 8);
        channels[i].encoding = p[16];
        channels[i].scale = get_f32(p + 17);
    }
    for (uint8_t i = 0; i < device.n_encoders; i++, p += SMP_DESCRIBE_ENCODER_SIZE) {
        encoders[i].name = text(&used, p, 8);
        encoders[i].cpr = get32(p + 8);
        encoders[i].limit_rad = get_f32(p + 12);
    }
    for (uint8_t i = 0; i < device.n_actuators; i++, p += SMP_DESCRIBE_ACTUATOR_SIZE) {
        actuators[i].name = text(&used, p, 8);
        actuators[i].unit = text(&used, p + 8, 8);
        actuators[i].min = get_f32(p + 16);
        actuators[i].max = get_f32(p + 20);
    }
    device.channels = channels;
    device.encoders = encoders;
    device.actuators = actuators;
}

static int fd_argument(int argc, char **argv, const char *flag) {
    for (int i = 1; i + 1 < argc; i++)
        if (strcmp(argv[i], flag) == 0) return atoi(argv[i + 1]);
    fprintf(stderr, "usage: %s --uart FD --physics FD (started by `sim twin --firmware`)\n", argv[0]);
    exit(2);
}

static const smp_hal HAL = {hal_micros,        hal_uart_read, hal_uart_write, hal_read_imu,
                            hal_read_encoders, hal_write_actuators, NULL, hal_on_stream};
static smp_node node;

int main(int argc, char **argv) {
    uart_fd = fd_argument(argc, argv, "--uart");
    physics_fd = fd_argument(argc, argv, "--physics");
    read_description();
    t0 = micros64();
    if (smp_node_init(&node, &device, &HAL) != 0) die("the description does not fit this build's frames");
    const uint64_t period = 1000000u / device.imu_rate_hz;
    uint64_t next_sample = micros64() + period;
    struct pollfd fds[2] = {{uart_fd, POLLIN, 0}, {physics_fd, POLLIN, 0}};
    for (;;) {
        uint64_t now = micros64();
        uint64_t wait_us = next_sample > now ? next_sample - now : 0;
        struct timespec timeout = {(time_t)(wait_us / 1000000u), (long)(wait_us % 1000000u) * 1000L};
        fds[0].events = (short)(POLLIN | (tx_len ? POLLOUT : 0));
        if (ppoll(fds, 2, &timeout, NULL) < 0 && errno != EINTR) die("poll failed");
        flush_tx();
        if (fds[1].revents & (POLLHUP | POLLERR | POLLIN)) break; /* the simulator closed its end: we are done */
        smp_node_poll(&node);
        if (fds[0].revents & POLLHUP) usleep(1000); /* no host on the port yet: do not spin */
        for (now = micros64(); now >= next_sample; next_sample += period) {
            smp_node_sample(&node);
            if (image_len) {
                smp_node_send(&node, SMP_MSG_IMAGE, image, image_len);
                image_len = 0;
            }
            if (now - next_sample > 100000u) next_sample = now; /* stalled for 100 ms: do not replay it all at once */
        }
    }
    if (dropped_bytes) fprintf(stderr, "smp_native: %lu bytes the host did not read were dropped\n", dropped_bytes);
    return 0;
}
