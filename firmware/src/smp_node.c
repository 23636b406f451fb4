/* A device node: see smp_node.h. */
#include "smp_node.h"

#include <string.h>

void smp_node_send(smp_node *node, uint8_t type, const uint8_t *payload, size_t n) {
    static uint8_t wire[SMP_FW_MAX_WIRE];
    size_t w = smp_encode_frame(type, node->seq, node->hal->micros(node->hal->ctx), payload, n, wire, sizeof wire);
    if (w) {
        node->hal->uart_write(node->hal->ctx, wire, w);
        node->seq++;
    }
}

static uint8_t flags(const smp_node *node) {
    return (uint8_t)((node->tripped ? SMP_STATUS_WATCHDOG_TRIPPED : 0u) | (node->streaming ? SMP_STATUS_STREAMING : 0u));
}

static void send_status(smp_node *node) {
    uint8_t payload[SMP_STATUS_SIZE];
    size_t n = smp_pack_status(flags(node), node->frames_ok, node->frames_bad, node->commands_applied, payload,
                               sizeof payload);
    smp_node_send(node, SMP_MSG_STATUS, payload, n);
    node->flags_sent = flags(node);
    node->last_status_us = node->hal->micros(node->hal->ctx);
}

static void zero_actuators(smp_node *node) {
    float zero[SMP_MAX_ACTUATORS] = {0};
    node->hal->write_actuators(node->hal->ctx, zero);
}

int smp_node_init(smp_node *node, const smp_device *dev, const smp_hal *hal) {
    if (dev->n_channels > SMP_NODE_MAX_CHANNELS || dev->n_encoders > SMP_NODE_MAX_ENCODERS ||
        dev->n_actuators > SMP_MAX_ACTUATORS || 1u + dev->samples_per_frame * smp_record_size(dev) > SMP_FW_MAX_PAYLOAD)
        return -1;
    memset(node, 0, sizeof *node);
    node->dev = dev;
    node->hal = hal;
    smp_decoder_init(&node->rx);
    zero_actuators(node);
    const uint8_t flush = 0;
    hal->uart_write(hal->ctx, &flush, 1); /* ends any partial frame in the host's buffer */
    return 0;
}

static void handle(smp_node *node, const smp_frame *f) {
    const smp_device *dev = node->dev;
    uint32_t now = node->hal->micros(node->hal->ctx);
    uint16_t version;
    float volts[SMP_MAX_ACTUATORS];
    switch (f->msg_type) {
    case SMP_MSG_HELLO:
        if (smp_unpack_hello(f, &version) == 0) {
            uint8_t *payload = smp_tx_payload(); /* packed where the frame is encoded: no copy, no buffer */
            size_t n = smp_pack_describe(dev, payload, SMP_FW_MAX_PAYLOAD);
            smp_node_send(node, SMP_MSG_DESCRIBE, payload, n);
        }
        break;
    case SMP_MSG_START:
        node->streaming = 1;
        node->tripped = 0;
        node->n = 0;
        node->last_command_us = now; /* the watchdog runs from START */
        node->fed = 1;
        if (node->hal->on_stream) node->hal->on_stream(node->hal->ctx, 1);
        break;
    case SMP_MSG_STOP:
        node->streaming = 0;
        zero_actuators(node);
        if (node->hal->on_stream) node->hal->on_stream(node->hal->ctx, 0);
        break;
    case SMP_MSG_COMMAND:
        if (node->streaming && smp_unpack_command(f, dev->n_actuators, volts) == 0) {
            for (uint8_t i = 0; i < dev->n_actuators; i++) {
                const smp_actuator *a = &dev->actuators[i];
                volts[i] = volts[i] < a->min ? a->min : volts[i] > a->max ? a->max : volts[i];
            }
            node->hal->write_actuators(node->hal->ctx, volts);
            node->commands_applied++;
            node->last_command_us = now;
            node->fed = 1;
            node->tripped = 0;
        }
        break;
    default:
        break; /* a type the device does not take: ignored */
    }
}

void smp_node_poll(smp_node *node) {
    uint8_t byte;
    smp_frame f;
    while (node->hal->uart_read(node->hal->ctx, &byte)) {
        if (smp_decoder_feed(&node->rx, byte, &f)) {
            node->frames_ok++;
            handle(node, &f);
        }
    }
    node->frames_bad = node->rx.frames_bad;
    uint32_t now = node->hal->micros(node->hal->ctx);
    if (!node->ticking && node->streaming && !node->tripped &&
        now - node->last_command_us >= 1000ul * node->dev->watchdog_ms) {
        zero_actuators(node);
        node->tripped = 1;
    }
    if (flags(node) != node->flags_sent || (node->streaming && now - node->last_status_us >= 1000000ul))
        send_status(node);
}

void smp_node_sample(smp_node *node) {
    const smp_device *dev = node->dev;
    float imu[SMP_NODE_MAX_CHANNELS];
    int32_t encoders[SMP_NODE_MAX_ENCODERS];
    if (!node->streaming) return;
    node->hal->read_imu(node->hal->ctx, imu);
    node->hal->read_encoders(node->hal->ctx, encoders);
    smp_pack_record(dev, imu, encoders, node->sensor + 1 + (size_t)node->n * smp_record_size(dev));
    if (++node->n == dev->samples_per_frame) {
        node->sensor[0] = node->n;
        smp_node_send(node, SMP_MSG_SENSOR, node->sensor, 1u + node->n * smp_record_size(dev)); /* stamped: its last sample */
        node->n = 0;
    }
}

void smp_node_tick_1ms(smp_node *node) {
    node->ticking = 1;
    if (!node->streaming || node->tripped) return;
    if (node->fed) { /* a COMMAND (or START) since the last tick: the countdown starts again */
        node->fed = 0;
        node->watchdog_left_ms = node->dev->watchdog_ms;
        return;
    }
    if (node->watchdog_left_ms && --node->watchdog_left_ms == 0) {
        zero_actuators(node);
        node->tripped = 1;
    }
}
