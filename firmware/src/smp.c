/* sensorimotor protocol for microcontrollers: see smp.h and docs/protocol.md. */
#include "smp.h"

#include <math.h>
#include <string.h>

/* CRC-32 (reflected 0xEDB88320) a byte at a time from a 1 KiB table. On an AVR the table stays in flash
   (PROGMEM; RAM is 8 KiB): 4-bit steps cost its 8-bit shifts five times as much, 1.3 ms for a SENSOR frame. */
#ifdef __AVR__
#include <avr/pgmspace.h>
#define SMP_ROM PROGMEM
#define SMP_ROM_U32(p) pgm_read_dword(p)
#else
#define SMP_ROM
#define SMP_ROM_U32(p) (*(p))
#endif

static const uint32_t CRC_TABLE[256] SMP_ROM = {
    0x00000000u, 0x77073096u, 0xEE0E612Cu, 0x990951BAu, 0x076DC419u, 0x706AF48Fu,
    0xE963A535u, 0x9E6495A3u, 0x0EDB8832u, 0x79DCB8A4u, 0xE0D5E91Eu, 0x97D2D988u,
    0x09B64C2Bu, 0x7EB17CBDu, 0xE7B82D07u, 0x90BF1D91u, 0x1DB71064u, 0x6AB020F2u,
    0xF3B97148u, 0x84BE41DEu, 0x1ADAD47Du, 0x6DDDE4EBu, 0xF4D4B551u, 0x83D385C7u,
    0x136C9856u, 0x646BA8C0u, 0xFD62F97Au, 0x8A65C9ECu, 0x14015C4Fu, 0x63066CD9u,
    0xFA0F3D63u, 0x8D080DF5u, 0x3B6E20C8u, 0x4C69105Eu, 0xD56041E4u, 0xA2677172u,
    0x3C03E4D1u, 0x4B04D447u, 0xD20D85FDu, 0xA50AB56Bu, 0x35B5A8FAu, 0x42B2986Cu,
    0xDBBBC9D6u, 0xACBCF940u, 0x32D86CE3u, 0x45DF5C75u, 0xDCD60DCFu, 0xABD13D59u,
    0x26D930ACu, 0x51DE003Au, 0xC8D75180u, 0xBFD06116u, 0x21B4F4B5u, 0x56B3C423u,
    0xCFBA9599u, 0xB8BDA50Fu, 0x2802B89Eu, 0x5F058808u, 0xC60CD9B2u, 0xB10BE924u,
    0x2F6F7C87u, 0x58684C11u, 0xC1611DABu, 0xB6662D3Du, 0x76DC4190u, 0x01DB7106u,
    0x98D220BCu, 0xEFD5102Au, 0x71B18589u, 0x06B6B51Fu, 0x9FBFE4A5u, 0xE8B8D433u,
    0x7807C9A2u, 0x0F00F934u, 0x9609A88Eu, 0xE10E9818u, 0x7F6A0DBBu, 0x086D3D2Du,
    0x91646C97u, 0xE6635C01u, 0x6B6B51F4u, 0x1C6C6162u, 0x856530D8u, 0xF262004Eu,
    0x6C0695EDu, 0x1B01A57Bu, 0x8208F4C1u, 0xF50FC457u, 0x65B0D9C6u, 0x12B7E950u,
    0x8BBEB8EAu, 0xFCB9887Cu, 0x62DD1DDFu, 0x15DA2D49u, 0x8CD37CF3u, 0xFBD44C65u,
    0x4DB26158u, 0x3AB551CEu, 0xA3BC0074u, 0xD4BB30E2u, 0x4ADFA541u, 0x3DD895D7u,
    0xA4D1C46Du, 0xD3D6F4FBu, 0x4369E96Au, 0x346ED9FCu, 0xAD678846u, 0xDA60B8D0u,
    0x44042D73u, 0x33031DE5u, 0xAA0A4C5Fu, 0xDD0D7CC9u, 0x5005713Cu, 0x270241AAu,
    0xBE0B1010u, 0xC90C2086u, 0x5768B525u, 0x206F85B3u, 0xB966D409u, 0xCE61E49Fu,
    0x5EDEF90Eu, 0x29D9C998u, 0xB0D09822u, 0xC7D7A8B4u, 0x59B33D17u, 0x2EB40D81u,
    0xB7BD5C3Bu, 0xC0BA6CADu, 0xEDB88320u, 0x9ABFB3B6u, 0x03B6E20Cu, 0x74B1D29Au,
    0xEAD54739u, 0x9DD277AFu, 0x04DB2615u, 0x73DC1683u, 0xE3630B12u, 0x94643B84u,
    0x0D6D6A3Eu, 0x7A6A5AA8u, 0xE40ECF0Bu, 0x9309FF9Du, 0x0A00AE27u, 0x7D079EB1u,
    0xF00F9344u, 0x8708A3D2u, 0x1E01F268u, 0x6906C2FEu, 0xF762575Du, 0x806567CBu,
    0x196C3671u, 0x6E6B06E7u, 0xFED41B76u, 0x89D32BE0u, 0x10DA7A5Au, 0x67DD4ACCu,
    0xF9B9DF6Fu, 0x8EBEEFF9u, 0x17B7BE43u, 0x60B08ED5u, 0xD6D6A3E8u, 0xA1D1937Eu,
    0x38D8C2C4u, 0x4FDFF252u, 0xD1BB67F1u, 0xA6BC5767u, 0x3FB506DDu, 0x48B2364Bu,
    0xD80D2BDAu, 0xAF0A1B4Cu, 0x36034AF6u, 0x41047A60u, 0xDF60EFC3u, 0xA867DF55u,
    0x316E8EEFu, 0x4669BE79u, 0xCB61B38Cu, 0xBC66831Au, 0x256FD2A0u, 0x5268E236u,
    0xCC0C7795u, 0xBB0B4703u, 0x220216B9u, 0x5505262Fu, 0xC5BA3BBEu, 0xB2BD0B28u,
    0x2BB45A92u, 0x5CB36A04u, 0xC2D7FFA7u, 0xB5D0CF31u, 0x2CD99E8Bu, 0x5BDEAE1Du,
    0x9B64C2B0u, 0xEC63F226u, 0x756AA39Cu, 0x026D930Au, 0x9C0906A9u, 0xEB0E363Fu,
    0x72076785u, 0x05005713u, 0x95BF4A82u, 0xE2B87A14u, 0x7BB12BAEu, 0x0CB61B38u,
    0x92D28E9Bu, 0xE5D5BE0Du, 0x7CDCEFB7u, 0x0BDBDF21u, 0x86D3D2D4u, 0xF1D4E242u,
    0x68DDB3F8u, 0x1FDA836Eu, 0x81BE16CDu, 0xF6B9265Bu, 0x6FB077E1u, 0x18B74777u,
    0x88085AE6u, 0xFF0F6A70u, 0x66063BCAu, 0x11010B5Cu, 0x8F659EFFu, 0xF862AE69u,
    0x616BFFD3u, 0x166CCF45u, 0xA00AE278u, 0xD70DD2EEu, 0x4E048354u, 0x3903B3C2u,
    0xA7672661u, 0xD06016F7u, 0x4969474Du, 0x3E6E77DBu, 0xAED16A4Au, 0xD9D65ADCu,
    0x40DF0B66u, 0x37D83BF0u, 0xA9BCAE53u, 0xDEBB9EC5u, 0x47B2CF7Fu, 0x30B5FFE9u,
    0xBDBDF21Cu, 0xCABAC28Au, 0x53B39330u, 0x24B4A3A6u, 0xBAD03605u, 0xCDD70693u,
    0x54DE5729u, 0x23D967BFu, 0xB3667A2Eu, 0xC4614AB8u, 0x5D681B02u, 0x2A6F2B94u,
    0xB40BBE37u, 0xC30C8EA1u, 0x5A05DF1Bu, 0x2D02EF8Du,
};

uint32_t smp_crc32(const uint8_t *data, size_t n) {
    uint32_t crc = 0xFFFFFFFFul;
    while (n--) crc = (crc >> 8) ^ SMP_ROM_U32(&CRC_TABLE[(uint8_t)(crc ^ *data++)]);
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

static uint8_t body[SMP_FW_MAX_BODY]; /* the frame being encoded */

uint8_t *smp_tx_payload(void) { return body + SMP_HEADER_SIZE; }

size_t smp_encode_frame(uint8_t msg_type, uint16_t seq, uint32_t timestamp_us, const uint8_t *payload, size_t length,
                        uint8_t *wire, size_t cap) {
    if (length > SMP_FW_MAX_PAYLOAD) return 0;
    size_t n = SMP_HEADER_SIZE + length;
    if (cap < SMP_COBS_MAX(n + SMP_CRC_SIZE) + 1u) return 0;
    body[0] = SMP_PROTOCOL_VERSION;
    body[1] = msg_type;
    put16(body + 2, seq);
    put32(body + 4, timestamp_us);
    if (length && payload != body + SMP_HEADER_SIZE) memcpy(body + SMP_HEADER_SIZE, payload, length);
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
    long len = smp_cobs_decode(d->raw, n, d->raw, sizeof d->raw); /* in place: the output trails the input */
    if (len < (long)(SMP_HEADER_SIZE + SMP_CRC_SIZE)) {
        d->frames_bad++;
        return 0;
    }
    size_t body_len = (size_t)len - SMP_CRC_SIZE;
    if (smp_crc32(d->raw, body_len) != get32(d->raw + body_len) || d->raw[0] != SMP_PROTOCOL_VERSION) {
        d->frames_bad++; /* a corrupted version byte counts as a CRC error: the CRC is checked first */
        return 0;
    }
    out->version = d->raw[0];
    out->msg_type = d->raw[1];
    out->seq = get16(d->raw + 2);
    out->timestamp_us = get32(d->raw + 4);
    out->payload = d->raw + SMP_HEADER_SIZE;
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
