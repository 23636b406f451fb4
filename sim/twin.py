"""The twin: the simulator playing the device on a pseudo-terminal, speaking the real protocol.

Real time: one physics substep (and IMU sample) per ``1 / imu.rate_hz`` of wall clock;
when the process is late it simulates the missed substeps at once (physics does not
pause). It answers HELLO with DESCRIBE, starts a new episode on START (pendulum held
near upright for one IMU window, whose samples it sends at once, then released), streams SENSOR frames at ``stream_rate_hz`` and IMAGE frames at
``camera.rate_hz``, applies each COMMAND from the next substep on (clamped to
+-v_max), and zeroes the motor when commands stop for ``watchdog_ms`` (STATUS reports it).

Light runtime path: numpy and the hardware protocol only.
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import select
import signal
import sys
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensorimotor.hardware.config import ConfigError, add_config_arguments, load_section
from sensorimotor.hardware.framing import StreamDecoder, encode_frame
from sensorimotor.hardware.messages import (
    MAX_SAMPLES,
    Command,
    Describe,
    Hello,
    ImageFrame,
    Message,
    MessageError,
    MsgType,
    SensorBatch,
    Start,
    Status,
    StatusFlags,
    Stop,
    make_frame,
    parse_message,
)
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.furuta import wrap_angle
from sensorimotor.sim.task import TaskConfig

MAX_OUTBOX = 256 * 1024  # bytes queued for a host that is not reading before we drop


@dataclass
class Truth:
    """Ground truth the host cannot see, reported when the twin stops."""

    streaming_s: float = 0.0
    upright_s: float = 0.0
    max_abs_alpha_deg: float = 0.0
    upright_whole_run: bool = True
    commands_applied: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    watchdog_trips: int = 0
    bad_frames_received: int = 0
    garbage_bytes_injected: int = 0


class Twin:
    """The simulated device behind a file descriptor (the pty master)."""

    def __init__(
        self, cfg: DeviceConfig, task: TaskConfig, fd: int, seed: int = 0, randomize: bool = True,
        garbage_prob: float = 0.0,
    ) -> None:  # fmt: skip
        self.cfg, self.task, self.fd = cfg, task, fd
        self.garbage_prob = garbage_prob  # fault injection: random bytes between frames
        self.fault_rng = np.random.default_rng(seed + 7919)
        self.sim = FurutaSim(cfg, 1, seed=seed, randomize=randomize)
        self.spec = cfg.spec()  # what DESCRIBE says, encoded from the same config the physics uses
        self.decoder = StreamDecoder(self.spec.protocol_version)
        self.truth = Truth()
        self.streaming = False
        self.watchdog_tripped = False
        self.seq = 0
        self.outbox = bytearray()
        self.t0 = time.monotonic()
        self.substeps = 0  # substeps simulated since the twin started
        self.last_command_s = 0.0
        self.dt = 1.0 / cfg.imu.rate_hz

    # ------------------------------------------------------------------ output

    def _stamp_us(self) -> int:
        return int(self.substeps * self.dt * 1e6)

    def _send(self, msg_type: MsgType, message: Message) -> None:
        frame = make_frame(msg_type, self.seq, self._stamp_us(), message, self.spec.protocol_version)
        self.seq = (self.seq + 1) & 0xFFFF
        data = encode_frame(frame)
        if len(self.outbox) + len(data) > MAX_OUTBOX:
            self.truth.frames_dropped += 1  # host not reading: drop rather than block physics
            return
        if self.garbage_prob and self.fault_rng.random() < self.garbage_prob:
            junk = self.fault_rng.integers(0, 256, int(self.fault_rng.integers(1, 40)), dtype=np.uint8).tobytes()
            self.outbox += junk
            self.truth.garbage_bytes_injected += len(junk)
        self.outbox += data
        self.truth.frames_sent += 1

    def _flush(self) -> None:
        while self.outbox:
            try:
                n = os.write(self.fd, self.outbox)
            except BlockingIOError:
                return
            except OSError:  # host side closed: keep simulating, drop output
                self.outbox.clear()
                return
            del self.outbox[:n]

    # ------------------------------------------------------------------ input

    def _handle(self, now_s: float) -> None:
        try:
            data = os.read(self.fd, 65536)
        except (BlockingIOError, OSError):
            return
        for frame in self.decoder.feed(data):
            try:
                msg = parse_message(frame)
            except MessageError:
                self.truth.bad_frames_received += 1
                continue
            if isinstance(msg, Hello):
                self._send(MsgType.DESCRIBE, Describe(self.spec))
            elif isinstance(msg, Start):
                self._start(now_s)
            elif isinstance(msg, Stop):
                self.streaming = False
                self._set_volts(0.0)
                self._send(MsgType.STATUS, self._status())
            elif isinstance(msg, Command) and self.streaming and len(msg.volts) == self.spec.n_actuators:
                self._set_volts(float(np.clip(msg.volts[0], -self.cfg.v_max, self.cfg.v_max)))
                self.truth.commands_applied += 1
                self.last_command_s = now_s
                if self.watchdog_tripped:
                    self.watchdog_tripped = False
                    self._send(MsgType.STATUS, self._status())  # flag cleared
        self.truth.bad_frames_received = self.decoder.stats.frames_bad

    def _set_volts(self, volts: float) -> None:
        # Applied from the next substep: the real latency is the host's and the link's.
        self.sim.pending[0] = volts
        self.sim.pending_at[0] = self.sim.tick[0]

    def _start(self, now_s: float) -> None:
        self.sim.reset()  # new episode near upright; its warm-up fills the sensor window
        self.streaming = True
        # Send the warm-up window at once so the host can act from its first cycle,
        # exactly as the training env's first observation is the warm-up window.
        imu, enc = self.sim.latest_samples(self.cfg.imu.window)
        for k in range(0, self.cfg.imu.window, MAX_SAMPLES):  # a window longer than a frame holds: several
            self._send(MsgType.SENSOR, SensorBatch(imu[0, k : k + MAX_SAMPLES], enc[0, k : k + MAX_SAMPLES]))
        self._send(MsgType.IMAGE, ImageFrame(self.sim.image[0]))
        self.last_command_s = now_s
        self.watchdog_tripped = False

    # ------------------------------------------------------------------ physics

    def _substep(self, now_s: float) -> None:
        self.sim.substep()
        self.substeps += 1
        if not self.streaming:
            return
        self._track_truth()
        tick = int(self.sim.tick[0])
        if tick % self.cfg.substeps_per_control == 0:
            imu, enc = self.sim.latest_samples(self.cfg.substeps_per_control)
            self._send(MsgType.SENSOR, SensorBatch(imu[0], enc[0]))
        if tick % self.cfg.substeps_per_frame == 0:
            self._send(MsgType.IMAGE, ImageFrame(self.sim.image[0]))
        if tick % self.cfg.imu.rate_hz == 0:  # STATUS at least once a second while streaming
            self._send(MsgType.STATUS, self._status())
        if not self.watchdog_tripped and now_s - self.last_command_s > self.cfg.watchdog_ms / 1000.0:
            self._set_volts(0.0)
            self.watchdog_tripped = True
            self.truth.watchdog_trips += 1
            self._send(MsgType.STATUS, self._status())

    def _status(self) -> Status:
        flags = StatusFlags.NONE
        if self.watchdog_tripped:
            flags |= StatusFlags.WATCHDOG_TRIPPED
        if self.streaming:
            flags |= StatusFlags.STREAMING
        d = self.decoder.stats
        return Status(flags, d.frames_ok, d.frames_bad, self.truth.commands_applied)

    def _track_truth(self) -> None:
        alpha = abs(float(wrap_angle(self.sim.state[0, 1])))
        t = self.truth
        t.streaming_s += self.dt
        t.max_abs_alpha_deg = max(t.max_abs_alpha_deg, float(np.rad2deg(alpha)))
        if alpha < np.deg2rad(self.task.upright_deg):
            t.upright_s += self.dt
        else:
            t.upright_whole_run = False

    # ------------------------------------------------------------------ main loop

    def run(self, should_stop: Callable[[], bool]) -> None:
        """Run in real time until ``should_stop()`` is true."""
        self.t0 = time.monotonic()
        while not should_stop():
            now = time.monotonic()
            self._handle(now)
            due = int((now - self.t0) / self.dt)
            while self.substeps < due:
                self._substep(now)
            self._flush()
            next_t = self.t0 + (self.substeps + 1) * self.dt
            timeout = max(0.0, next_t - time.monotonic())
            select.select([self.fd], [], [], timeout)
        self._handle(time.monotonic())  # whatever the host sent before stopping us


def open_pty() -> tuple[int, int, str]:
    """(master fd non-blocking, slave fd, slave path) of a raw pseudo-terminal."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # no line discipline: 0x00, 0x0A and 0x11 must pass untouched
    tty.setraw(master)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def serve_forever(
    config: str | Path | None, seed: int = 0, link: Path | None = None, truth_path: Path | None = None,
    randomize: bool = True, garbage_prob: float = 0.0, overrides: Sequence[str] = (),
) -> int:  # fmt: skip
    """``sim twin``: serve on a pty, print the port path, run until SIGINT/SIGTERM."""
    try:
        cfg = load_section(config, "device", DeviceConfig, overrides=overrides)
        task = load_section(config, "task", TaskConfig, overrides=overrides)
    except ConfigError as exc:
        print(f"sim twin: config error: {exc}", file=sys.stderr)
        return 2
    master, slave, path = open_pty()
    if link is not None:
        link.unlink(missing_ok=True)
        link.symlink_to(path)
    stop = {"flag": False}

    def _stop(signum: int, frame: object) -> None:
        stop["flag"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(path, flush=True)
    print(f"sim twin: serving '{cfg.name}' on {path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    twin = Twin(cfg, task, master, seed=seed, randomize=randomize, garbage_prob=garbage_prob)
    twin.run(lambda: stop["flag"])
    if truth_path is not None:
        truth_path.write_text(json.dumps(twin.truth.__dict__, indent=2))
    if link is not None:
        link.unlink(missing_ok=True)
    os.close(master)
    os.close(slave)
    return 0


def add_twin_arguments(parser: argparse.ArgumentParser) -> None:
    """The twin's options, shared by ``sim twin`` and ``python -m sensorimotor.sim.twin``."""
    add_config_arguments(parser, "`device` and `task` sections")
    parser.add_argument("--seed", type=int, default=0, help="seed for physics randomization and sensor noise")
    parser.add_argument("--link", type=Path, default=None, help="also create a symlink to the port at this path")
    parser.add_argument("--truth", type=Path, default=None, help="write ground-truth statistics (JSON) here on exit")
    parser.add_argument("--nominal", action="store_true", help="nominal physics (no per-run randomization)")
    parser.add_argument("--inject-garbage", type=float, default=0.0, metavar="P",
                        help="fault injection: before each frame, with probability P, send 1-39 random bytes")  # fmt: skip


def run_from_args(args: argparse.Namespace) -> int:
    return serve_forever(
        args.config, args.seed, args.link, args.truth, not args.nominal, args.inject_garbage, args.overrides
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sensorimotor.sim.twin", description="Serve the simulated device on a pty."
    )
    add_twin_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
