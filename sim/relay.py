"""A fault-injecting serial relay: a bad cable between a host and a device, on pseudo-terminals.

The relay opens the device's port and offers a new pty to the host; every frame passing
through (delimited by ``0x00``, see docs/protocol.md) can be corrupted on its way, per
direction and seeded:

====================  ========================================================
``drop=P``            remove one random byte from the frame
``flip=P``            flip one random bit of the frame
``garbage=P``         a burst of 1-40 random bytes before the frame (0x00 included)
``dup=P``             send the frame twice
``reorder=P``         hold the frame back and send it after the next one
``stall=T+D``         from T s after the first byte, drop everything for D s
``cut=T``             from T s after the first byte, drop everything for good
``outage=P+D``        with probability P per frame, drop it and everything after for D s
``mute=0xTT``         drop every frame of message type 0xTT (e.g. 0x12: STATUS)
====================  ========================================================

Each P is a probability per frame. Faults for the two directions are independent,
so a stall of the sensor path alone, or of the command path alone, can be produced.
Every intact frame the device sent is remembered (``sent_to_host``) so a test can check
that the host accepted only frames that were sent.

``python -m sensorimotor.cli.relay DEVICE_PORT --to-host "flip=0.01,dup=0.02"`` prints
the host's port and relays until Ctrl-C. Light: standard library and numpy only.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorimotor.hardware.framing import FramingError, cobs_decode
from sensorimotor.sim.twin import open_pty


@dataclass
class Faults:
    """What happens to the frames of one direction; see the module docstring."""

    drop: float = 0.0
    flip: float = 0.0
    garbage: float = 0.0
    dup: float = 0.0
    reorder: float = 0.0
    stall_at_s: float | None = None
    stall_s: float = 0.0
    cut_at_s: float | None = None
    outage: float = 0.0
    outage_s: float = 0.0
    mute_type: int | None = None

    @classmethod
    def parse(cls, text: str) -> Faults:
        """``"flip=0.01,dup=0.02,stall=1.0+0.3"`` -> Faults; a clear ValueError for anything else."""
        out = cls()
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = item.partition("=")
            try:
                if name == "stall":
                    at, _, dur = value.partition("+")
                    out.stall_at_s, out.stall_s = float(at), float(dur)
                elif name == "cut":
                    out.cut_at_s = float(value)
                elif name == "outage":
                    prob, _, dur = value.partition("+")
                    out.outage, out.outage_s = _probability(prob), float(dur)
                elif name == "mute":
                    out.mute_type = int(value, 0)
                elif name in ("drop", "flip", "garbage", "dup", "reorder"):
                    setattr(out, name, _probability(value))
                else:
                    raise KeyError(name)
            except KeyError:
                known = "drop, flip, garbage, dup, reorder, stall, cut, outage, mute"
                raise ValueError(f"unknown fault {name!r} (known: {known})") from None
            except ValueError:
                raise ValueError(
                    f"fault {item!r}: expected a probability 0..1, stall=T+D or cut=T in seconds, outage=P+D, "
                    "or mute=0xTT"
                ) from None
        return out


def _probability(text: str) -> float:
    prob = float(text)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(text)
    return prob


@dataclass
class Direction:
    """One way through the relay: reassembles frames, applies faults, counts what it did."""

    faults: Faults
    rng: np.random.Generator
    pending: bytearray = field(default_factory=bytearray)
    held: bytes | None = None
    outage_until_s: float = -1.0  # an outage drops every frame until then
    intact: list[bytes] = field(default_factory=list)  # every complete frame that came in, as it came
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("frames", "drop", "flip", "garbage", "dup", "reorder", "stalled", "cut", "outages", "outaged", "muted"), 0))  # fmt: skip

    def process(self, data: bytes, t_s: float) -> bytes:
        """Bytes in -> bytes to forward (complete frames only; a partial one waits for its 0x00)."""
        self.pending += data
        out = bytearray()
        while (end := self.pending.find(0)) >= 0:
            frame = bytes(self.pending[: end + 1])
            del self.pending[: end + 1]
            self.intact.append(frame)
            out += self._frame(frame, t_s)
        return bytes(out)

    def _frame(self, frame: bytes, t_s: float) -> bytes:
        f, c, rng = self.faults, self.counts, self.rng
        c["frames"] += 1
        if f.stall_at_s is not None and f.stall_at_s <= t_s < f.stall_at_s + f.stall_s:
            c["stalled"] += 1
            return b""
        if f.cut_at_s is not None and t_s >= f.cut_at_s:
            c["cut"] += 1
            return b""
        if t_s < self.outage_until_s or (f.outage and rng.random() < f.outage):
            if t_s >= self.outage_until_s:  # this frame starts a new outage
                self.outage_until_s = t_s + f.outage_s
                c["outages"] += 1
            c["outaged"] += 1
            return b""
        if f.mute_type is not None and _msg_type(frame) == f.mute_type:
            c["muted"] += 1
            return b""
        body = bytearray(frame)
        if f.drop and len(body) > 1 and rng.random() < f.drop:
            del body[int(rng.integers(0, len(body) - 1))]  # never the delimiter: the frame stays separate
            c["drop"] += 1
        if f.flip and rng.random() < f.flip:
            i = int(rng.integers(0, len(body)))
            body[i] ^= 1 << int(rng.integers(0, 8))
            c["flip"] += 1
        out = bytearray()
        if f.garbage and rng.random() < f.garbage:
            out += rng.integers(0, 256, int(rng.integers(1, 41)), dtype=np.uint8).tobytes()
            c["garbage"] += 1
        out += body
        if f.dup and rng.random() < f.dup:
            out += body
            c["dup"] += 1
        if self.held is not None:  # the frame held back goes out after this one
            out += self.held
            self.held = None
        elif f.reorder and rng.random() < f.reorder:
            self.held = bytes(out)
            c["reorder"] += 1
            return b""
        return bytes(out)


def _msg_type(frame: bytes) -> int | None:
    """The message type byte of an encoded frame (None if it does not decode)."""
    try:
        body = cobs_decode(frame[:-1])
    except FramingError:
        return None
    return body[1] if len(body) > 1 else None


class Relay:
    """Host pty <-> device port, with faults per direction; runs in a thread or a process."""

    def __init__(self, device_port: str, to_host: Faults | None = None, to_device: Faults | None = None,
                 seed: int = 0, link: Path | None = None) -> None:  # fmt: skip
        self.device_fd = os.open(device_port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.device_fd)
        self.master, self.slave, self.port = open_pty()
        self.link = link  # a stable path to the host's pty: a new relay on the same link is the device "replugged"
        if link is not None:
            tmp = link.with_name(link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self.port)
            tmp.replace(link)
        rng = np.random.default_rng(seed)
        self.to_host = Direction(to_host or Faults(), np.random.default_rng(rng.integers(1 << 63)))
        self.to_device = Direction(to_device or Faults(), np.random.default_rng(rng.integers(1 << 63)))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.t0: float | None = None  # first byte seen: stall times count from here

    def start(self) -> Relay:
        self._thread = threading.Thread(target=self.run, name="relay", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Stop relaying (join the thread) and close every port."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for fd in (self.master, self.slave, self.device_fd):  # closing the master is the host's "unplug"
            with contextlib.suppress(OSError):
                os.close(fd)

    def run(self) -> None:
        routes = {self.device_fd: (self.to_host, self.master), self.master: (self.to_device, self.device_fd)}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(routes), [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    continue
                if not data:
                    continue
                now = time.monotonic()
                self.t0 = self.t0 if self.t0 is not None else now
                direction, dst = routes[fd]
                out = direction.process(data, now - self.t0)
                while out:
                    try:
                        n = os.write(dst, out)
                    except BlockingIOError:
                        select.select([], [dst], [], 0.05)
                        continue
                    except OSError:  # the other side went away: keep draining this one
                        break
                    out = out[n:]
