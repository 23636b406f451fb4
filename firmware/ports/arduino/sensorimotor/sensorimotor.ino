// Example port as an Arduino sketch (Uno or Nano: ATmega328P at 16 MHz), with the Arduino core's Serial,
// micros() and analogWrite(). Build: `python firmware/build.py arduino` (Debian's arduino-core-avr; the tests run
// the result on an emulated ATmega328P), or copy firmware/include/*.h and firmware/src/*.c into this folder and
// open it in the Arduino IDE (the headers size the library for the 328P by themselves).
//
// The IMU and encoder drivers are stubs, as in ports/avr: a resting MPU-6050's int16 counts and a still
// encoder. The motor: PWM on pin 9 (Timer1, 8-bit analogWrite) and the direction on pin 8. The sample
// clock is micros() in loop(); the watchdog runs from smp_node_poll() (ports/avr shows it in a timer
// interrupt, which the Arduino core's timers leave no room for without a library).
extern "C" {
#include "smp_node.h"
}

static const uint8_t PWM_PIN = 9, DIR_PIN = 8;

static const smp_channel CHANNELS[6] = {
    {"gyro_x", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},  {"gyro_y", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},
    {"gyro_z", "rad/s", SMP_ENCODING_I16, 2.66462e-4f},  {"accel_x", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f},
    {"accel_y", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f}, {"accel_z", "m/s^2", SMP_ENCODING_I16, 1.19708e-3f},
};
static const smp_encoder ENCODERS[1] = {{"arm", 2048u, 3.0f}};
static const smp_actuator ACTUATORS[1] = {{"motor", "V", -5.0f, 5.0f}};
static const smp_device DEVICE = {"qube-uno", 1000, 64, 10, 100, 100, 0, 0, 0, 100, 6, 1, 1,
                                  CHANNELS,   ENCODERS, ACTUATORS};

static uint32_t hal_micros(void *) { return micros(); }

static int hal_uart_read(void *, uint8_t *byte) {
    int c = Serial.read();
    if (c < 0) return 0;
    *byte = (uint8_t)c;
    return 1;
}

static void hal_uart_write(void *, const uint8_t *data, size_t n) { Serial.write(data, n); }

static void hal_read_imu(void *, float *values) {  // stub: at rest, z up
    for (int c = 0; c < 5; c++) values[c] = 0.0f;
    values[5] = 9.81f;
}

static void hal_read_encoders(void *, int32_t *counts) { counts[0] = 0; }  // stub: a still arm

static void hal_write_actuators(void *, const float *volts) {
    float v = volts[0], mag = v < 0 ? -v : v;
    int duty = (int)(mag * (255.0f / 5.0f) + 0.5f);
    digitalWrite(DIR_PIN, v < 0 ? HIGH : LOW);
    analogWrite(PWM_PIN, duty > 255 ? 255 : duty);
}

static const smp_hal HAL = {hal_micros, hal_uart_read, hal_uart_write, hal_read_imu, hal_read_encoders,
                            hal_write_actuators, nullptr, nullptr};
static smp_node node;
static uint32_t next_sample_us;

void setup() {
    pinMode(DIR_PIN, OUTPUT);
    pinMode(PWM_PIN, OUTPUT);
    Serial.begin(1000000);
    smp_node_init(&node, &DEVICE, &HAL);
    next_sample_us = micros() + 1000u;
}

void loop() {  // one sample when due (1 kHz), then the UART
    if ((int32_t)(micros() - next_sample_us) >= 0) {
        next_sample_us += 1000u;
        smp_node_sample(&node);
    }
    smp_node_poll(&node);
}
