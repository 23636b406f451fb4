/* A device node: the protocol's session on a board (docs/protocol.md, sections 4 and 5).
 *
 * A board port implements smp_hal (time, UART, sensors, motors) and calls smp_node_poll()
 * from its main loop and smp_node_sample() at imu_rate_hz (from a timer interrupt, or from
 * the main loop when smp_node_sample_due() says so). The node answers HELLO with DESCRIBE
 * whatever its state, streams SENSOR frames of samples_per_frame samples after START, applies
 * COMMAND values clamped to each actuator's range, zeroes the actuators when no COMMAND came
 * for watchdog_ms (and says so in STATUS), sends STATUS on every flag change and at least once
 * a second while streaming, and stops on STOP. Everything is static; no malloc.
 */
#ifndef SMP_NODE_H
#define SMP_NODE_H

#include "smp.h"

#if defined(__AVR_ATmega328P__) && !defined(SMP_NODE_MAX_CHANNELS) /* 2 KiB of SRAM (an Uno's sketch) */
#define SMP_NODE_MAX_CHANNELS 6u
#define SMP_NODE_MAX_ENCODERS 1u
#endif
#ifndef SMP_NODE_MAX_CHANNELS
#define SMP_NODE_MAX_CHANNELS 8u
#endif
#ifndef SMP_NODE_MAX_ENCODERS
#define SMP_NODE_MAX_ENCODERS 2u
#endif

typedef struct {
    uint32_t (*micros)(void *ctx);                       /* a free-running µs clock (wraps at 2^32) */
    int (*uart_read)(void *ctx, uint8_t *byte);          /* 1 and the byte when one is waiting, else 0 */
    void (*uart_write)(void *ctx, const uint8_t *data, size_t n);
    void (*read_imu)(void *ctx, float *values);          /* one value per described channel, SI units */
    void (*read_encoders)(void *ctx, int32_t *counts);   /* one count per described encoder */
    void (*write_actuators)(void *ctx, const float *values); /* one value per described actuator */
    void *ctx;
    void (*on_stream)(void *ctx, int streaming);         /* optional: START (1) or STOP (0) arrived, e.g. to
                                                            enable the motor driver; NULL when unused */
} smp_hal;

typedef struct {
    const smp_device *dev;
    const smp_hal *hal;
    smp_decoder rx;
    uint16_t seq;
    uint8_t streaming, tripped, flags_sent;
    uint32_t frames_ok, frames_bad, commands_applied;
    uint32_t last_command_us, last_status_us;
    /* The watchdog in a timer interrupt (smp_node_tick_1ms): fed by each COMMAND, counted down in the tick. */
    volatile uint8_t ticking, fed;
    volatile uint16_t watchdog_left_ms;
    uint8_t n; /* samples in the current SENSOR frame */
    /* Each sample is packed as it is taken, so completing a frame costs only its CRC, COBS and sending. */
    uint8_t sensor[SMP_FW_MAX_PAYLOAD];
} smp_node;

/* 0, or -1 when the description does not fit the node's static buffers. Sends the flush byte. */
int smp_node_init(smp_node *node, const smp_device *dev, const smp_hal *hal);
/* Read and handle every waiting byte; run the watchdog (unless the tick does) and the STATUS heartbeat. */
void smp_node_poll(smp_node *node);
/* Optional: call once a millisecond from a timer interrupt. The watchdog then runs there and zeroes
 * the actuators watchdog_ms after the last COMMAND was handled, however long the main loop is busy;
 * write_actuators is then also called from the interrupt and must be safe there. STATUS reports the
 * trip from smp_node_poll(). */
void smp_node_tick_1ms(smp_node *node);
/* Take one IMU and encoder sample (at imu_rate_hz while streaming); sends SENSOR when a frame is full. */
void smp_node_sample(smp_node *node);
/* Send one frame of another message a port adds (the native build's IMAGE); stamped now. */
void smp_node_send(smp_node *node, uint8_t msg_type, const uint8_t *payload, size_t n);

#endif /* SMP_NODE_H */
