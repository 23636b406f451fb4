"""Framing cost: the frame CRC, and encode + decode per frame type with CRC-32 against CRC-16.

Every ratio is against a reference measured in the same run: the stdlib CRC against a
bitwise pure-Python one, and each frame type encoded and decoded with the CRC-32 of
protocol version 3 against the same frame with the CRC-16 of version 2 (the framing
code reads both, so only the CRC differs).
"""

from __future__ import annotations

import numpy as np

from benchmarks.common import median_s, report
from sensorimotor.hardware.framing import PROTOCOL_VERSION, Frame, StreamDecoder, crc16, crc32, encode_frame
from sensorimotor.hardware.messages import (
    Command,
    Describe,
    ImageFrame,
    Message,
    MsgType,
    Reference,
    SensorBatch,
    Status,
    StatusFlags,
    make_frame,
)
from sensorimotor.sim.config import DeviceConfig

OLD_VERSION = 2  # the last version with a CRC-16


def crc32_pure(data: bytes) -> int:
    """Bitwise CRC-32/IEEE: the reference the stdlib version is compared with."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xEDB88320 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def _messages(rng: np.random.Generator) -> list[tuple[MsgType, Message]]:
    return [
        (MsgType.COMMAND, Command((1.5,))),
        (MsgType.STATUS, Status(StatusFlags.STREAMING, 10, 1, 9)),
        (MsgType.REFERENCE, Reference((("alpha", 0.1), ("alpha_d", -0.2), ("theta", 0.3), ("theta_d", 0.4)))),
        (MsgType.DESCRIBE, Describe(DeviceConfig().spec())),
        (MsgType.SENSOR, SensorBatch(rng.normal(size=(10, 6)).astype(np.float32), np.arange(10, dtype=np.int32))),
        (MsgType.IMAGE, ImageFrame(rng.integers(0, 256, (64, 64), dtype=np.uint8))),
    ]


def _round_trip_s(frame: Frame) -> float:
    """Median time to encode ``frame`` and decode it again through a long-lived stream decoder."""
    decoder = StreamDecoder(frame.version)
    assert decoder.feed(encode_frame(frame)) == [frame]
    return median_s(lambda: decoder.feed(encode_frame(frame)), repeats=400)


def crc_cost(rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Encode + decode per frame type, CRC-32 (this version) against CRC-16 (version 2); prints each ratio."""
    print(f"encode + decode per frame, v{PROTOCOL_VERSION} (CRC-32) against v{OLD_VERSION} (CRC-16), same run:")
    out = {}
    for msg_type, message in _messages(rng):
        new = make_frame(msg_type, 7, 1000, message)
        old = make_frame(msg_type, 7, 1000, message, version=OLD_VERSION)
        times = [_round_trip_s(f) for f in (old, new, new, old)]  # each twice, in mirror order: drift cancels
        old_s, new_s = min(times[0], times[3]), min(times[1], times[2])
        ratio = new_s / old_s
        body = len(new.payload) + 12
        print(
            f"  {msg_type.name:<10} {body:5d} B body   CRC-32 {new_s * 1e6:7.2f} us   CRC-16 {old_s * 1e6:7.2f} us   "
            f"ratio {ratio:.2f}x",
            flush=True,
        )
        out[msg_type.name] = {"crc32_us": new_s * 1e6, "crc16_us": old_s * 1e6, "ratio": ratio, "body_bytes": body}
    return out


def run() -> dict[str, dict]:
    rng = np.random.default_rng(0)
    sensor = rng.integers(0, 256, 281, dtype=np.uint8).tobytes()
    image = rng.integers(0, 256, 4098, dtype=np.uint8).tobytes()
    assert crc32_pure(b"123456789") == crc32(b"123456789") == 0xCBF43926
    assert crc16(b"123456789") == 0x29B1
    crc32_s = median_s(lambda: crc32(image))
    out: dict[str, dict] = {
        "crc32_4k": report("crc32 of a 4 KiB image payload (binascii)", crc32_s,
                           median_s(lambda: crc32_pure(image), repeats=20), "pure-Python CRC"),
    }  # fmt: skip
    crc16_s = median_s(lambda: crc16(image))
    print(f"{'crc16 of the same payload (binascii.crc_hqx)':<48} {crc16_s * 1e6:10.1f} us   "
          f"crc32 costs {crc32_s / crc16_s:.2f}x crc16")  # fmt: skip
    out["crc16_4k"] = {"us": crc16_s * 1e6, "crc32_over_crc16": crc32_s / crc16_s}
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
    out["crc32_vs_crc16"] = crc_cost(rng)
    return out


if __name__ == "__main__":
    run()
