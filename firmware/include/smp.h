/* sensorimotor protocol (docs/protocol.md) for microcontrollers: framing, CRC-32, messages.
 *
 * Portable C99, no malloc: every buffer is the caller's or a static one sized by
 * SMP_FW_MAX_PAYLOAD (default 244: frames of at most 256 bytes before COBS). Constants
 * and sizes come from smp_generated.h, generated from the Python host's definitions.
 * Multi-byte fields are written byte by byte, so the code is independent of the CPU's
 * endianness and alignment.
 */
#ifndef SMP_H
#define SMP_H

#include <stddef.h>
#include <stdint.h>

#include "smp_generated.h"

#if defined(__AVR_ATmega328P__) && !defined(SMP_FW_MAX_PAYLOAD) /* 2 KiB of SRAM: what the Qube needs (build.py) */
#define SMP_FW_MAX_PAYLOAD 204u
#define SMP_FW_MAX_RX_PAYLOAD 40u
#endif
#ifndef SMP_FW_MAX_PAYLOAD
#define SMP_FW_MAX_PAYLOAD 244u /* 8 header + 244 + 4 CRC = 256-byte bodies */
#endif
#ifndef SMP_FW_MAX_RX_PAYLOAD /* the largest payload received: a device only takes COMMAND (1 + 4 per actuator) */
#define SMP_FW_MAX_RX_PAYLOAD SMP_FW_MAX_PAYLOAD
#endif
#define SMP_FW_MAX_BODY (SMP_HEADER_SIZE + SMP_FW_MAX_PAYLOAD + SMP_CRC_SIZE)
#define SMP_COBS_MAX(n) ((n) + (n) / 254u + 1u)
#define SMP_FW_MAX_WIRE (SMP_COBS_MAX(SMP_FW_MAX_BODY) + 1u) /* + the 0x00 delimiter */

uint32_t smp_crc32(const uint8_t *data, size_t n);
/* COBS-encode n bytes into out (room for SMP_COBS_MAX(n)); returns the encoded length. */
size_t smp_cobs_encode(const uint8_t *in, size_t n, uint8_t *out);
/* COBS-decode n bytes (no delimiter) into out (cap bytes; out may be in: the output trails the input); returns
   the length, or -1 if malformed or too long. */
long smp_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap);

/* One frame: header fields and a payload (pointing into the encoder's or decoder's buffer). */
typedef struct {
    uint8_t version;
    uint8_t msg_type;
    uint16_t seq;
    uint32_t timestamp_us;
    const uint8_t *payload;
    uint16_t length;
} smp_frame;

/* header + payload + CRC-32, COBS, 0x00 into wire (cap bytes); returns bytes written, 0 if it does not fit.
 * A payload built at smp_tx_payload() is not copied (DESCRIBE is packed there: no buffer of its own). */
uint8_t *smp_tx_payload(void);
size_t smp_encode_frame(uint8_t msg_type, uint16_t seq, uint32_t timestamp_us, const uint8_t *payload, size_t length,
                        uint8_t *wire, size_t cap);

/* Byte-at-a-time receiver (docs/protocol.md 1, "Receiving and resynchronising"). Frames of payloads up to
 * SMP_FW_MAX_RX_PAYLOAD, decoded in place: a frame's payload is valid until the next byte is fed. */
typedef struct {
    uint8_t raw[SMP_COBS_MAX(SMP_HEADER_SIZE + SMP_FW_MAX_RX_PAYLOAD + SMP_CRC_SIZE) + 1u];
    size_t n;          /* bytes collected since the last 0x00 */
    uint8_t overflow;  /* more bytes than any frame: drop everything up to the next 0x00 */
    uint32_t frames_ok;
    uint32_t frames_bad; /* COBS, size, CRC or version */
} smp_decoder;

void smp_decoder_init(smp_decoder *d);
/* Feed one byte; returns 1 and fills *out when it completes an intact frame of this version. */
int smp_decoder_feed(smp_decoder *d, uint8_t byte, smp_frame *out);

/* ------------------------------------------------------------------ messages */

typedef struct {
    const char *name;  /* at most 8 UTF-8 bytes */
    const char *unit;  /* SI unit after scaling */
    uint8_t encoding;  /* SMP_ENCODING_F32 or SMP_ENCODING_I16 */
    float scale;       /* SI units per count (i16); 1 for f32 */
} smp_channel;

typedef struct {
    const char *name;
    uint32_t cpr;
    float limit_rad; /* 0: unbounded */
} smp_encoder;

typedef struct {
    const char *name;
    const char *unit;
    float min, max;
} smp_actuator;

/* What DESCRIBE says: a board keeps one as a const. No camera: image_height = image_width = camera_rate_hz = 0. */
typedef struct {
    const char *name; /* at most 16 UTF-8 bytes */
    uint16_t imu_rate_hz, imu_window;
    uint8_t samples_per_frame;
    uint16_t stream_rate_hz, control_rate_hz;
    uint8_t image_height, image_width;
    uint16_t camera_rate_hz, watchdog_ms;
    uint8_t n_channels, n_encoders, n_actuators;
    const smp_channel *channels;
    const smp_encoder *encoders;
    const smp_actuator *actuators;
} smp_device;

/* Each returns the payload length written into out (cap bytes), 0 if it does not fit. */
size_t smp_pack_describe(const smp_device *dev, uint8_t *out, size_t cap);
/* n samples, oldest first: imu[k * n_channels + c] in SI units, encoders[k * n_encoders + e] in counts. */
size_t smp_pack_sensor(const smp_device *dev, uint8_t n, const float *imu, const int32_t *encoders, uint8_t *out,
                       size_t cap);
/* One SENSOR record (a sample: every channel in its encoding, then every encoder) at p; returns the end. */
uint8_t *smp_pack_record(const smp_device *dev, const float *imu, const int32_t *encoders, uint8_t *p);
size_t smp_record_size(const smp_device *dev);
size_t smp_pack_status(uint8_t flags, uint32_t frames_ok, uint32_t frames_bad, uint32_t commands_applied, uint8_t *out,
                       size_t cap);

/* 0 and the values on success; -1 for a wrong length, a count other than n_actuators, or a non-finite value. */
int smp_unpack_command(const smp_frame *f, uint8_t n_actuators, float *volts);
int smp_unpack_hello(const smp_frame *f, uint16_t *protocol_version);

#endif /* SMP_H */
