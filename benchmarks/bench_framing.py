"""Framing throughput: CRC-16 via binascii vs a pure-Python CRC, COBS encode/decode of frames."""

from __future__ import annotations

import numpy as np

from benchmarks.common import median_s, report
from sensorimotor.hardware.framing import Frame, StreamDecoder, crc16, encode_frame


def crc16_pure(data: bytes) -> int:
    """Bitwise CRC-16/CCITT-FALSE: the reference the stdlib version is compared with."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def run() -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(0)
    sensor = rng.integers(0, 256, 281, dtype=np.uint8).tobytes()
    image = rng.integers(0, 256, 4098, dtype=np.uint8).tobytes()
    assert crc16_pure(b"123456789") == crc16(b"123456789") == 0x29B1
    out = {
        "crc16_4k": report("crc16 of a 4 KiB image payload (binascii)", median_s(lambda: crc16(image)),
                           median_s(lambda: crc16_pure(image), repeats=20), "pure-Python CRC"),
    }  # fmt: skip
    frames = [encode_frame(Frame(0x10, i, i, sensor)) for i in range(100)]
    stream = b"".join(frames)
    out["decode_sensor"] = report(
        "decode one SENSOR frame (281 B payload)", median_s(lambda: StreamDecoder().feed(stream), 50) / 100
    )
    img_frame = encode_frame(Frame(0x11, 0, 0, image))
    out["decode_image"] = report(
        "decode one IMAGE frame (4 KiB payload)", median_s(lambda: StreamDecoder().feed(img_frame))
    )
    out["encode_image"] = report("encode one IMAGE frame", median_s(lambda: encode_frame(Frame(0x11, 0, 0, image))))
    return out


if __name__ == "__main__":
    run()
