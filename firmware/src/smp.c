/* sensorimotor protocol for microcontrollers: see smp.h and docs/protocol.md. */
#include "smp.h"

#include <math.h>
#include <string.h>

/* CRC-32 (reflected 0xEDB88320) four bits at a time: a 64-byte table, 2 lookups a byte (the bitwise
   loop costs an 8-bit MCU about 8x as much; a 1 KiB byte table would not fit a small one's RAM). */
static const uint32_t CRC_NIBBLE[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu
};

uint32_t smp_crc32(const uint8_t *data, size_t n) {
    uint32_t crc = 0xFFFFFFFFul;
    while (n--) {
        crc ^= *data++;
        crc = (crc >> 4) ^ CRC_NIBBLE[crc & 0x0Fu];
        crc = (crc >> 4) ^ CRC_NIBBLE[crc & 0x0Fu];
    }
    return crc ^ 0xFFFFFFFFul;
}

size_t smp_cobs_encode(const uint8_t *in, size_t n, uint8_t *out) {
    size_t code_at = 0, o = 1;
    uint8_t code = 1;
    for (size_t i = 0; i < n; i++) {
        if (in[i] != 0) {
            out[o++] = in[i];
            code++;
        }
        if (in[i] == 0 || code == 0xFF) {
            out[code_at] = code;
            code = 1;
            code_at = o++;
        }
    }
    out[code_at] = code;
    return o;
}

long smp_cobs_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t code = in[i++];
        if (code == 0) return -1;
        for (uint8_t k = 1; k < code; k++) {
            if (i >= n || in[i] == 0 || o >= cap) return -1;
            out[o++] = in[i++];
        }
        if (code != 0xFF && i < n) { /* not after a full block or at the end */
            if (o >= cap) return -1;
            out[o++] = 0;
        }
    }
    return (long)o;
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void putf(uint8_t *p, float f) {
    uint32_t v;
    memcpy(&v, &f, sizeof v);
    put32(p, v);
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t get32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static float getf(const uint8_t *p) {
    uint32_t v = get32(p);
    float f;
    memcpy(&f, &v, sizeof f);
    return f;
}

/* A text field of exactly `size` bytes, 0x00-padded; 0 if the text is longer. */
static int puttext(uint8_t *p, const char *text, size_t size) {
    size_t len = strlen(text);
    if (len > size) return 0;
    memset(p, 0, size);
    memcpy(p, text, len);
    return 1;
}

size_t smp_encode_frame(uint8_t msg_type, uint16_t seq, uint32_t timestamp_us, const uint8_t *payload, size_t length,
                        uint8_t *wire, size_t cap) {
    static uint8_t body[SMP_FW_MAX_BODY];
    if (length > SMP_FW_MAX_PAYLOAD) return 0;
    size_t n = SMP_HEADER_SIZE + length;
    if (cap < SMP_COBS_MAX(n + SMP_CRC_SIZE) + 1u) return 0;
    body[0] = SMP_PROTOCOL_VERSION;
    body[1] = msg_type;
    put16(body + 2, seq);
    put32(body + 4, timestamp_us);
    if (length) memcpy(body + SMP_HEADER_SIZE, payload, length);
    put32(body + n, smp_crc32(body, n));
    size_t w = smp_cobs_encode(body, n + SMP_CRC_SIZE, wire);
    wire[w++] = 0;
    return w;
}

void smp_decoder_init(smp_decoder *d) { memset(d, 0, sizeof *d); }

int smp_decoder_feed(smp_decoder *d, uint8_t byte, smp_frame *out) {
    if (byte != 0) {
        if (d->n < sizeof d->raw) {
            d->raw[d->n++] = byte;
        } else if (!d->overflow) { /* no frame is this long: an error, then wait for the next 0x00 */
            d->overflow = 1;
            d->frames_bad++;
        }
        return 0;
    }
    size_t n = d->n;
    int overflowed = d->overflow;
    d->n = 0;
    d->overflow = 0;
    if (n == 0 || overflowed) return 0; /* an empty frame (the flush byte), or the end of an overlong run */
    long len = smp_cobs_decode(d->raw, n, d->body, sizeof d->body);
    if (len < (long)(SMP_HEADER_SIZE + SMP_CRC_SIZE)) {
        d->frames_bad++;
        return 0;
    }
    size_t body_len = (size_t)len - SMP_CRC_SIZE;
    if (smp_crc32(d->body, body_len) != get32(d->body + body_len) || d->body[0] != SMP_PROTOCOL_VERSION) {
        d->frames_bad++; /* a corrupted version byte counts as a CRC error: the CRC is checked first */
        return 0;
    }
    out->version = d->body[0];
    out->msg_type = d->body[1];
    out->seq = get16(d->body + 2);
    out->timestamp_us = get32(d->body + 4);
    out->payload = d->body + SMP_HEADER_SIZE;
    out->length = (uint16_t)(body_len - SMP_HEADER_SIZE);
    d->frames_ok++;
    return 1;
}

size_t smp_pack_describe(const smp_device *dev, uint8_t *out, size_t cap) {
    size_t size = SMP_DESCRIBE_FIXED_SIZE + (size_t)dev->n_channels * SMP_DESCRIBE_CHANNEL_SIZE +
                  (size_t)dev->n_encoders * SMP_DESCRIBE_ENCODER_SIZE +
                  (size_t)dev->n_actuators * SMP_DESCRIBE_ACTUATOR_SIZE;
    if (size > cap) return 0;
    uint8_t *p = out;
    put16(p, SMP_PROTOCOL_VERSION);
    if (!puttext(p + 2, dev->name, 16)) return 0;
    put16(p + 18, dev->imu_rate_hz);
    put16(p + 20, dev->imu_window);
    p[22] = dev->samples_per_frame;
    put16(p + 23, dev->stream_rate_hz);
    put16(p + 25, dev->control_rate_hz);
    p[27] = dev->image_height;
    p[28] = dev->image_width;
    put16(p + 29, dev->camera_rate_hz);
    put16(p + 31, dev->watchdog_ms);
    p[33] = dev->n_channels;
    p[34] = dev->n_encoders;
    p[35] = dev->n_actuators;
    p += SMP_DESCRIBE_FIXED_SIZE;
    for (uint8_t i = 0; i < dev->n_channels; i++, p += SMP_DESCRIBE_CHANNEL_SIZE) {
        const smp_channel *c = &dev->channels[i];
        if (!puttext(p, c->name, 8) || !puttext(p + 8, c->unit, 8)) return 0;
        p[16] = c->encoding;
        putf(p + 17, c->scale);
    }
    for (uint8_t i = 0; i < dev->n_encoders; i++, p += SMP_DESCRIBE_ENCODER_SIZE) {
        const smp_encoder *e = &dev->encoders[i];
        if (!puttext(p, e->name, 8)) return 0;
        put32(p + 8, e->cpr);
        putf(p + 12, e->limit_rad);
    }
    for (uint8_t i = 0; i < dev->n_actuators; i++, p += SMP_DESCRIBE_ACTUATOR_SIZE) {
        const smp_actuator *a = &dev->actuators[i];
        if (!puttext(p, a->name, 8) || !puttext(p + 8, a->unit, 8)) return 0;
        putf(p + 16, a->min);
        putf(p + 20, a->max);
    }
    return size;
}

/* Round to the nearest integer, halves to even (numpy.rint, as the host packs); avr-libc has no nearbyintf. */
static float round_even(float x) {
    float r = floorf(x + 0.5f);
    if (r - x == 0.5f && ((long)r & 1L)) r -= 1.0f; /* callers clip to int16 after: r fits a long */
    return r;
}

size_t smp_record_size(const smp_device *dev) {
    size_t record = 4u * dev->n_encoders;
    for (uint8_t c = 0; c < dev->n_channels; c++) record += dev->channels[c].encoding == SMP_ENCODING_I16 ? 2u : 4u;
    return record;
}

uint8_t *smp_pack_record(const smp_device *dev, const float *imu, const int32_t *encoders, uint8_t *p) {
    for (uint8_t c = 0; c < dev->n_channels; c++) {
        if (dev->channels[c].encoding == SMP_ENCODING_I16) { /* counts: clipped, rounded half to even */
            float counts = imu[c] / dev->channels[c].scale;
            if (!(counts >= -32768.0f)) counts = -32768.0f; /* NaN too */
            if (counts > 32767.0f) counts = 32767.0f;
            put16(p, (uint16_t)(int16_t)round_even(counts));
            p += 2;
        } else {
            putf(p, imu[c]);
            p += 4;
        }
    }
    for (uint8_t e = 0; e < dev->n_encoders; e++, p += 4) put32(p, (uint32_t)encoders[e]);
    return p;
}

size_t smp_pack_sensor(const smp_device *dev, uint8_t n, const float *imu, const int32_t *encoders, uint8_t *out,
                       size_t cap) {
    if (n == 0 || n > SMP_MAX_SAMPLES_PER_FRAME || 1u + n * smp_record_size(dev) > cap) return 0;
    uint8_t *p = out;
    *p++ = n;
    for (uint8_t k = 0; k < n; k++)
        p = smp_pack_record(dev, imu + (size_t)k * dev->n_channels, encoders + (size_t)k * dev->n_encoders, p);
    return (size_t)(p - out);
}

size_t smp_pack_status(uint8_t flags, uint32_t frames_ok, uint32_t frames_bad, uint32_t commands_applied, uint8_t *out,
                       size_t cap) {
    if (cap < SMP_STATUS_SIZE) return 0;
    out[0] = flags;
    put32(out + 1, frames_ok);
    put32(out + 5, frames_bad);
    put32(out + 9, commands_applied);
    return SMP_STATUS_SIZE;
}

int smp_unpack_command(const smp_frame *f, uint8_t n_actuators, float *volts) {
    if (f->msg_type != SMP_MSG_COMMAND || f->length < 1 || f->payload[0] != n_actuators ||
        f->length != 1u + 4u * n_actuators)
        return -1;
    for (uint8_t i = 0; i < n_actuators; i++) {
        float v = getf(f->payload + 1 + 4 * i);
        if (!isfinite(v)) return -1;
        volts[i] = v;
    }
    return 0;
}

int smp_unpack_hello(const smp_frame *f, uint16_t *protocol_version) {
    if (f->msg_type != SMP_MSG_HELLO || f->length != SMP_HELLO_SIZE) return -1;
    *protocol_version = get16(f->payload);
    return 0;
}
