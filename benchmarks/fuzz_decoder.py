"""Decoder fuzzer (``make fuzz``): a million corrupted and random inputs through the receive path.

Each input is fed to one long-lived :class:`StreamDecoder` (as a real link would) and
every frame it returns to :func:`parse_message`. Inputs: valid frames of every message
type mutated (bit flips, byte drops/insertions/duplications, truncation, splices of two
frames, 0x00 bursts), raw random bytes, and random COBS-valid blocks. Checked:

* nothing raises except :class:`MessageError` from ``parse_message`` (a frame whose CRC
  passed but whose payload is not a valid message is dropped by the caller);
* the decoder's buffer stays bounded (``MAX_ENCODED``);
* the decoder still decodes a clean frame right after every input (resync);
* mutated frames accepted anyway (a CRC-16 collision, about 1 in 65,536 corruptions) are
  counted and reported, not hidden.

``python benchmarks/fuzz_decoder.py [--inputs N] [--seed S]``; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensorimotor.hardware.framing import MAX_ENCODED, StreamDecoder, cobs_encode, encode_frame
from sensorimotor.hardware.messages import (
    Command,
    Hello,
    ImageFrame,
    MessageError,
    MsgType,
    SensorBatch,
    Status,
    StatusFlags,
    make_frame,
    parse_message,
)


def _valid_frames(rng: np.random.Generator) -> list[bytes]:
    msgs = [
        (MsgType.HELLO, Hello(2)),
        (MsgType.COMMAND, Command((1.5,))),
        (MsgType.STATUS, Status(StatusFlags.STREAMING, 10, 1, 9)),
        (MsgType.SENSOR, SensorBatch(rng.normal(size=(10, 6)).astype(np.float32), np.arange(10, dtype=np.int32))),
        (MsgType.IMAGE, ImageFrame(rng.integers(0, 256, (64, 64), dtype=np.uint8))),
    ]
    return [encode_frame(make_frame(t, i, 1000 * i, m)) for i, (t, m) in enumerate(msgs)]


def _mutate(frame: bytes, other: bytes, rng: np.random.Generator) -> bytes:
    b = bytearray(frame)
    kind = int(rng.integers(0, 8))
    for _ in range(int(rng.integers(1, 4))):
        i = int(rng.integers(0, len(b)))
        if kind == 0:
            b[i] ^= 1 << int(rng.integers(0, 8))
        elif kind == 1 and len(b) > 1:
            del b[i]
        elif kind == 2:
            b.insert(i, int(rng.integers(0, 256)))
        elif kind == 3:
            b[i : i + 1] = b[i : i + 1] * int(rng.integers(2, 5))
    if kind == 4:
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == 5:
        b = b[: int(rng.integers(1, len(b)))] + bytearray(other[int(rng.integers(0, len(other))) :])
    elif kind == 6:
        b = bytearray(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes())
        b = bytearray(b.replace(b"\x00", b"\x01") if rng.random() < 0.5 else b)
    elif kind == 7:
        block = rng.integers(1, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
        b = bytearray(cobs_encode(block) + b"\x00")
    return bytes(b)


def fuzz(inputs: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    frames = _valid_frames(rng)
    clean = frames[1]  # a COMMAND: after each input, the decoder must still take a clean frame
    dec = StreamDecoder()
    counts = {"inputs": 0, "frames_returned": 0, "accepted_corrupted": 0, "message_errors": 0, "failures": 0}
    originals = set()
    for f in frames:
        originals.add(f)
    for n in range(inputs):
        src = frames[int(rng.integers(0, len(frames)))]
        data = _mutate(src, frames[int(rng.integers(0, len(frames)))], rng)
        try:
            got = dec.feed(data + b"\x00" + clean)  # the delimiter ends the mutated input, then a clean frame
            for frame in got:
                counts["frames_returned"] += 1
                try:
                    parse_message(frame)
                except MessageError:
                    counts["message_errors"] += 1
            if not got or encode_frame(got[-1]) != clean:
                counts["failures"] += 1
                print(f"input {n}: no resync onto the clean frame after {data[:40].hex()}...", file=sys.stderr)
            counts["accepted_corrupted"] += sum(1 for f in got[:-1] if encode_frame(f) not in originals)
            if dec.buffered > MAX_ENCODED:
                counts["failures"] += 1
                print(f"input {n}: decoder holds {dec.buffered} bytes", file=sys.stderr)
        except Exception as exc:  # the point of fuzzing: anything else is a bug
            counts["failures"] += 1
            print(f"input {n}: {type(exc).__name__}: {exc} on {data[:40].hex()}...", file=sys.stderr)
        counts["inputs"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="number of fuzz inputs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    c = fuzz(args.inputs, args.seed)
    took = time.perf_counter() - t0
    print(f"decoder fuzz: {c['inputs']:,} inputs in {took:.0f} s ({c['inputs'] / took:,.0f}/s), seed {args.seed}")
    print(f"  frames returned {c['frames_returned']:,}; payloads refused by parse_message {c['message_errors']:,}")
    print(f"  mutated frames accepted (CRC-16 collisions, expected ~1/65536 of corruptions): {c['accepted_corrupted']}")
    print(f"  failures (exceptions, no resync, unbounded buffer): {c['failures']}")
    return 1 if c["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
