/* What both native tests share: the twin's device (configs/furuta.yaml) as a board declares it, and CHECK. */
#ifndef SMP_TEST_QUBE_H
#define SMP_TEST_QUBE_H

#include <stdio.h>

#include "smp.h"

static int failures = 0;

#define CHECK(cond, what)                                          \
    do {                                                           \
        if (cond) {                                                \
            printf("ok   %s\n", what);                             \
        } else {                                                   \
            printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__); \
            failures++;                                            \
        }                                                          \
    } while (0)

static const smp_channel CHANNELS[6] = {
    {"gyro_x", "rad/s", SMP_ENCODING_F32, 1.0f},  {"gyro_y", "rad/s", SMP_ENCODING_F32, 1.0f},
    {"gyro_z", "rad/s", SMP_ENCODING_F32, 1.0f},  {"accel_x", "m/s^2", SMP_ENCODING_F32, 1.0f},
    {"accel_y", "m/s^2", SMP_ENCODING_F32, 1.0f}, {"accel_z", "m/s^2", SMP_ENCODING_F32, 1.0f},
};
static const smp_encoder ENCODERS[1] = {{"arm", 2048u, 3.0f}};
static const smp_actuator ACTUATORS[1] = {{"motor", "V", -5.0f, 5.0f}};
static const smp_device QUBE = {"qube-twin", 1000, 64, 10, 100, 100, 64, 64, 50, 100, 6, 1, 1,
                                CHANNELS,    ENCODERS, ACTUATORS};

#endif /* SMP_TEST_QUBE_H */
