"""Decoder fuzzer (``make fuzz``): a million corrupted and random inputs through the receive path.

Each input is fed to one long-lived :class:`StreamDecoder` (as a real link would) and
every frame it returns to :func:`parse_message`. Inputs: a valid frame of each message
type (HELLO, DESCRIBE, START, STOP, SENSOR, IMAGE, STATUS, REFERENCE, COMMAND) mutated on
the wire (bit flips, byte substitutions, deletions, insertions, duplications,
truncation, a splice of two frames) or in its body (bytes replaced, then stuffed again, so
that only the CRC can tell), raw random bytes, and random COBS-valid blocks.
Checked:

* nothing raises except :class:`MessageError` from ``parse_message`` (a frame whose CRC
  passed but whose payload is not a valid message is dropped by the caller);
* the decoder's buffer stays bounded (``MAX_ENCODED``);
* the decoder still decodes a clean frame right after every input (resync);
* mutated frames accepted anyway (a frame returned that is none of the originals) are
  counted per message type, with the rate per corrupted frame, or its 95 % upper bound
  (rule of three: 3 / n) when none was.

The reference, in the same run: every mutated input is made a second time from the same
message framed as protocol version 2 (CRC-16) and fed to a version-2 decoder, so the
table shows what the CRC-32 changed, and that the fuzzer does find CRC-16's collisions.

``python benchmarks/fuzz_decoder.py [--inputs N] [--seed S]``; exit 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sensorimotor.hardware.framing import (
    MAX_ENCODED,
    PROTOCOL_VERSION,
    Frame,
    StreamDecoder,
    cobs_decode,
    cobs_encode,
    encode_frame,
)
from sensorimotor.hardware.messages import (
    Command,
    Describe,
    Hello,
    ImageFrame,
    Message,
    MessageError,
    MsgType,
    Reference,
    SensorBatch,
    SensorLayout,
    Start,
    Status,
    StatusFlags,
    Stop,
    make_frame,
    parse_message,
)
from sensorimotor.sim.config import DeviceConfig

REFERENCE_VERSION = 2  # the last version with a CRC-16
LAYOUT = SensorLayout.of(DeviceConfig().spec())  # how the SENSOR frames are read
MUTATIONS = (
    "bit flips", "substitutions", "deletions", "insertions", "duplications", "truncation", "splice", "body substitutions",
)  # fmt: skip
RANDOM = "random"  # raw random bytes and random COBS blocks: no original frame


def _messages(rng: np.random.Generator) -> list[tuple[MsgType, Message]]:
    return [
        (MsgType.HELLO, Hello(PROTOCOL_VERSION)),
        (MsgType.DESCRIBE, Describe(DeviceConfig().spec())),
        (MsgType.START, Start()),
        (MsgType.STOP, Stop()),
        (MsgType.SENSOR, SensorBatch(rng.normal(size=(10, 6)).astype(np.float32), np.arange(10, dtype=np.int32))),
        (MsgType.IMAGE, ImageFrame(rng.integers(0, 256, (64, 64), dtype=np.uint8))),
        (MsgType.STATUS, Status(StatusFlags.STREAMING, 10, 1, 9)),
        (MsgType.REFERENCE, Reference((("alpha", 0.1), ("alpha_d", -0.2), ("theta", 0.3), ("theta_d", 0.4)))),
        (MsgType.COMMAND, Command((1.5,))),
    ]


def _mutate(frame: bytes, other: bytes, kind: int, rng: np.random.Generator) -> bytes:
    """``frame`` (wire bytes, delimiter included) damaged by mutation ``kind`` (an index into MUTATIONS, or random)."""
    b = bytearray(frame)
    if kind <= 4:
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(b)))
            if kind == 0:
                b[i] ^= 1 << int(rng.integers(0, 8))
            elif kind == 1:
                b[i] ^= int(rng.integers(1, 256))  # another value, never the same
            elif kind == 2 and len(b) > 1:
                del b[i]
            elif kind == 3:
                b.insert(i, int(rng.integers(0, 256)))
            elif kind == 4:
                b[i : i + 1] = b[i : i + 1] * int(rng.integers(2, 5))
    elif kind == 5:
        b = b[: int(rng.integers(0, len(b)))]
    elif kind == 6:
        b = b[: int(rng.integers(1, len(b)))] + bytearray(other[int(rng.integers(0, len(other))) :])
    elif kind == 7:  # 2 to 8 bytes of the body replaced, stuffed again: COBS stays valid, only the CRC can tell
        body = bytearray(cobs_decode(frame[:-1]))
        for i in rng.integers(0, len(body), int(rng.integers(2, 9))):
            body[i] ^= int(rng.integers(1, 256))
        b = bytearray(cobs_encode(bytes(body)) + b"\x00")
    elif kind == 8:
        b = bytearray(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes())
        b = bytearray(b.replace(b"\x00", b"\x01") if rng.random() < 0.5 else b)
    else:
        block = rng.integers(1, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
        b = bytearray(cobs_encode(block) + b"\x00")
    return bytes(b)


@dataclass
class Link:
    """One receiver under test: a long-lived decoder of ``version`` and the frames it must not return."""

    version: int
    frames: list[Frame]
    wires: list[bytes]

    def __post_init__(self) -> None:
        self.decoder = StreamDecoder(self.version)
        self.originals = set(self.frames)
        self.clean = self.frames[-1]  # after each input, the decoder must take a clean frame (a COMMAND)
        self.clean_wire = self.wires[-1]

    def feed(self, data: bytes) -> tuple[int, int, list[str]]:
        """(accepted corrupted frames, payloads refused by parse_message, failures) for one input."""
        problems, refused = [], 0
        try:
            got = self.decoder.feed(data + b"\x00" + self.clean_wire)  # the delimiter ends the input
            for frame in got:
                try:
                    parse_message(frame, LAYOUT)
                except MessageError:
                    refused += 1
            if not got or got[-1] != self.clean:
                problems.append(f"v{self.version}: no resync onto the clean frame")
            if self.decoder.buffered > MAX_ENCODED:
                problems.append(f"v{self.version}: decoder holds {self.decoder.buffered} bytes")
            accepted = sum(1 for f in got[:-1] if f not in self.originals)
        except Exception as exc:  # the point of fuzzing: anything else is a bug
            problems.append(f"v{self.version}: {type(exc).__name__}: {exc}")
            accepted = 0
        return accepted, refused, problems


def fuzz(inputs: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    msgs = _messages(rng)
    links = []
    for version in (PROTOCOL_VERSION, REFERENCE_VERSION):
        frames = [make_frame(t, i, 1000 * i, m, version) for i, (t, m) in enumerate(msgs)]
        links.append(Link(version, frames, [encode_frame(f) for f in frames]))
    names = [t.name for t, _ in msgs]
    rows = {name: {"corrupted": 0, "accepted": 0, "accepted_ref": 0} for name in [*names, RANDOM]}
    counts = {"inputs": 0, "frames_returned": 0, "message_errors": 0, "failures": 0}
    for n in range(inputs):
        t, o = int(rng.integers(0, len(msgs))), int(rng.integers(0, len(msgs)))
        kind = int(rng.integers(0, len(MUTATIONS) + 2))
        state = rng.bit_generator.state  # the same draws mutate the version-2 frame of the same message
        outcomes = []
        for link in links:
            rng.bit_generator.state = state
            data = _mutate(link.wires[t], link.wires[o], kind, rng)
            changed = data.strip(b"\x00") != link.wires[t][:-1]  # not just a delimiter more
            outcomes.append((data, changed, *link.feed(data)))
        row = rows[names[t] if kind < len(MUTATIONS) else RANDOM]
        (data, changed, accepted, refused, problems), (_, _, accepted_ref, _, problems_ref) = outcomes
        row["corrupted"] += changed
        row["accepted"] += accepted
        row["accepted_ref"] += accepted_ref
        counts["message_errors"] += refused
        for problem in problems + problems_ref:
            counts["failures"] += 1
            print(f"input {n}: {problem} on {data[:40].hex()}...", file=sys.stderr)
        counts["inputs"] += 1
    counts["frames_returned"] = sum(link.decoder.stats.frames_ok for link in links[:1])
    return {"counts": counts, "rows": rows}


def rate(accepted: int, n: int) -> str:
    """The accepted fraction, or its 95 % upper bound (rule of three) when nothing was accepted."""
    if not n:
        return "-"
    return f"{accepted / n:.1e}" if accepted else f"< {3 / n:.1e}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000, help="number of fuzz inputs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = fuzz(args.inputs, args.seed)
    took = time.perf_counter() - t0
    c, rows = result["counts"], result["rows"]
    print(f"decoder fuzz: {c['inputs']:,} inputs in {took:.0f} s ({c['inputs'] / took:,.0f}/s), seed {args.seed}")
    print(f"  frames returned {c['frames_returned']:,}; payloads refused by parse_message {c['message_errors']:,}")
    print(
        f"  corrupted frames accepted as valid, per type (v{PROTOCOL_VERSION}: CRC-32; the same mutations of "
        f"v{REFERENCE_VERSION} frames, CRC-16, for reference; '<' is the 95 % upper bound when none was):"
    )
    print(f"    {'type':<10} {'corrupted':>10} {'accepted':>9} {'rate':>10}   {'CRC-16 accepted':>15} {'rate':>9}")
    mutated = [name for name in rows if name != RANDOM]
    total = {k: sum(rows[name][k] for name in mutated) for k in ("corrupted", "accepted", "accepted_ref")}
    for name, r in [*((name, rows[name]) for name in mutated), ("all types", total), (RANDOM, rows[RANDOM])]:
        print(
            f"    {name:<10} {r['corrupted']:>10,} {r['accepted']:>9} {rate(r['accepted'], r['corrupted']):>10}"
            f"   {r['accepted_ref']:>15} {rate(r['accepted_ref'], r['corrupted']):>9}"
        )
    print(f"  failures (exceptions, no resync, unbounded buffer): {c['failures']}")
    return 1 if c["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
