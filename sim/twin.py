"""The twin: the simulator (the same compiled core, N = 1) playing the device, speaking the real protocol.

It answers HELLO with DESCRIBE, starts a new episode on START (pendulum held near
upright while the sensors warm up, then released) and sends the warm-up window at once;
then it streams SENSOR frames at ``stream_rate_hz``, each continuing the previous one
sample for sample, and an IMAGE frame whenever a camera frame reaches the host (after
the camera latency). Each COMMAND (clamped to +-v_max) enters the actuator FIFO and
reaches the motor after the episode's actuator delay in lockstep, at the next substep
in real time (where the link's own latency is the delay). Sensor data leaves after its
stream's delay. The host therefore sees exactly what the simulator's observation holds.

Two clocks:

* **real time** (default): one physics substep per ``1 / imu.rate_hz`` of wall clock; when
  the process is late it simulates the missed substeps at once (physics does not pause).
  The device zeroes the motor when commands stop for ``watchdog_ms`` (STATUS reports it).
* **lockstep** (``--lockstep``): time advances exactly one control period per COMMAND,
  as PX4's lockstep simulator does, so a run is deterministic — same seed, same frames,
  bit for bit, the same trajectory as the simulator — and as fast as the host answers.
  No watchdog: time stops while the host thinks.

The twin runs behind a pty (:func:`serve_forever`, ``sim twin``) or in-process behind a
loopback transport (:class:`LoopbackTransport`), which needs no subprocess.

Light runtime path: numpy, numba and the hardware protocol only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import pty
import select
import signal
import sys
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorimotor.configs.schema import ConfigError, add_config_arguments, load_section
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
from sensorimotor.sim import core
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.furuta import wrap_angle
from sensorimotor.sim.task import SuccessTracker, TaskConfig, make_task
from sensorimotor.sim.verdict import twin_verdict

MAX_OUTBOX = 256 * 1024  # bytes queued for a host that is not reading before we drop


@dataclass
class Truth:
    """Ground truth the host cannot see, reported when the twin stops."""

    task: str = "balance"
    streaming_s: float = 0.0
    upright_s: float = 0.0
    max_abs_alpha_deg: float = 0.0
    max_abs_theta_rad: float = 0.0
    upright_whole_run: bool = True
    arm_past_limit: bool = False  # wound past the cable limit (task.arm_limit_rad) at some point
    success: bool = False  # by the task's criterion (docs/tasks.md), so far
    time_to_upright_s: float | None = None  # when the successful upright run began
    commands_applied: int = 0
    frames_sent: int = 0
    frames_dropped: int = 0
    watchdog_trips: int = 0
    bad_frames_received: int = 0
    garbage_bytes_injected: int = 0
    # what the camera's mount adds to every image angle this episode (deg): the roll `hw calibrate` measures
    image_roll_deg: float = 0.0
    # the physical parameters this episode played (device.physics names): what identification must recover
    physics: dict[str, float] = field(default_factory=dict)


class Twin:
    """The simulated device; bytes in through :meth:`feed`, out through :meth:`take_output`."""

    def __init__(
        self, cfg: DeviceConfig, task: TaskConfig, seed: int = 0, randomize: bool = True,
        garbage_prob: float = 0.0, lockstep: bool = False,
    ) -> None:  # fmt: skip
        self.cfg, self.task, self.lockstep = cfg, make_task(task), lockstep
        self.garbage_prob = garbage_prob  # fault injection: random bytes between frames
        self.fault_rng = np.random.default_rng(seed + 7919)
        self.sim = self.task.sim(cfg, 1, seed=seed, randomize=randomize)
        _load_kernels(cfg)  # now, not at START: a cold compile would outlast the host's sensor timeout
        self.spec = cfg.spec()  # what DESCRIBE says, encoded from the same config the physics uses
        self.layout = SensorLayout.of(self.spec)
        self.decoder = StreamDecoder(self.spec.protocol_version)
        self.truth = Truth(task=self.task.name)
        self.tracker = SuccessTracker(self.task, 1, 1.0 / cfg.imu.rate_hz)
        self.streaming = False
        self.watchdog_tripped = False
        self.seq = 0
        self.outbox = bytearray()
        self.substeps = 0  # substeps simulated since the twin started (device clock)
        self.stream_start = 0  # sim tick at which streaming began (control periods count from it)
        self.last_frame_tick = -1  # capture tick of the last IMAGE sent
        self.last_command_s = 0.0
        self.dt = 1.0 / cfg.imu.rate_hz

    # ------------------------------------------------------------------ output

    def _stamp_us(self) -> int:
        return int(self.substeps * self.dt * 1e6)

    def _send(
        self, msg_type: MsgType, message: Message, stamp_us: int | None = None, version: int | None = None
    ) -> None:
        stamp = (self._stamp_us() if stamp_us is None else stamp_us) & 0xFFFFFFFF
        frame = make_frame(msg_type, self.seq, stamp, message, version or self.spec.protocol_version)
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

    def take_output(self, limit: int | None = None) -> bytes:
        """Remove and return up to ``limit`` queued output bytes (all by default)."""
        n = len(self.outbox) if limit is None else min(limit, len(self.outbox))
        data = bytes(self.outbox[:n])
        del self.outbox[:n]
        return data

    # ------------------------------------------------------------------ input

    def feed(self, data: bytes, now_s: float = 0.0) -> None:
        """Bytes from the host: decode, act on each message (in lockstep a COMMAND advances the simulation)."""
        for frame in self.decoder.feed(data):
            try:
                msg = parse_message(frame)
            except MessageError:
                self.truth.bad_frames_received += 1
                continue
            if isinstance(msg, Hello):  # answered in the HELLO's framing, which a host of another version reads
                self._send(MsgType.DESCRIBE, Describe(self.spec), version=frame.version)
            elif isinstance(msg, Start):
                self._start(now_s)
            elif isinstance(msg, Stop):
                self.streaming = False
                self.sim.command(np.zeros(1))
                self._send(MsgType.STATUS, self._status())
            elif isinstance(msg, Command) and self.streaming and len(msg.volts) == self.spec.n_actuators:
                self.sim.command(np.array([msg.volts[0]]))  # clamped to +-v_max; lands after the actuator delay
                self.truth.commands_applied += 1
                self.last_command_s = now_s
                if self.watchdog_tripped:
                    self.watchdog_tripped = False
                    self._send(MsgType.STATUS, self._status())  # flag cleared
                if self.lockstep:
                    for _ in range(self.cfg.substeps_per_control):
                        self._substep(now_s)
        self.truth.bad_frames_received = self.decoder.stats.frames_bad

    def _start(self, now_s: float) -> None:
        self.sim.reset()  # a new episode of the task (near upright, or hanging); its warm-up fills the sensor buffers
        # the render turns the view by ROLL, so the image shows alpha - ROLL (bench_calibrate measures it so)
        self.truth.image_roll_deg = -math.degrees(float(self.sim.buffers.cam_ep[0, core.ROLL]))
        self.truth.physics = {name: float(v[0]) for name, v in dataclasses.asdict(self.sim.params).items()}
        self.tracker = SuccessTracker(self.task, 1, self.dt)
        if not self.lockstep:
            # In real time the pty and the host add the real command latency; the simulated
            # one (which models exactly that link in training) would count it twice.
            self.sim.buffers.delay[0, 0] = 0
        self.streaming = True
        self.watchdog_tripped = False
        self.stream_start = int(self.sim.tick[0])
        self._send(MsgType.STATUS, self._status())  # START acknowledged: STREAMING set, counters as of now
        # Send the warm-up window at once so the host can act from its first cycle,
        # exactly as the training env's first observation is the warm-up window.
        imu, enc = self.sim.latest_samples(self.cfg.imu.window)
        window, sample_us = self.cfg.imu.window, self.dt * 1e6
        for k in range(0, window, MAX_SAMPLES):  # a window longer than a frame holds: several
            last = min(k + MAX_SAMPLES, window) - 1  # stamped with its last sample's time, as the stream is
            stamp = self._stamp_us() - round((window - 1 - last) * sample_us)
            self._send(MsgType.SENSOR, SensorBatch(imu[0, k : last + 1], enc[0, k : last + 1], self.layout), stamp)
        self._send_sensor_reference(self._stamp_us())  # the window's newest sample: still now (held still)
        received = self.sim.received(1)
        self.last_frame_tick = self._newest_frame_tick()
        self._send(MsgType.IMAGE, ImageFrame(received["image"][0, 0]))
        self._send_frame_reference()
        self.last_command_s = now_s
        self.watchdog_tripped = False

    # ------------------------------------------------------------------ physics

    def _send_sensor_reference(self, stamp_us: int) -> None:
        """REFERENCE with the true state at the newest IMU sample the host has (``device.reference`` only)."""
        if self.cfg.reference:
            theta, alpha, theta_dot, alpha_dot = (float(v) for v in self.sim.received(1)["imu_state"][0])
            values = (("alpha", alpha), ("alpha_d", alpha_dot), ("theta", theta), ("theta_d", theta_dot))
            self._send(MsgType.REFERENCE, Reference(values), stamp_us)

    def _send_frame_reference(self) -> None:
        """REFERENCE for the IMAGE frame just sent: its pose at capture and its fault class."""
        if self.cfg.reference:
            r = self.sim.received(1)
            values = (("f_alpha", float(r["image_state"][0, 1])), ("f_class", float(r["camera_class"][0])))
            self._send(MsgType.REFERENCE, Reference(values))

    def _newest_frame_tick(self) -> int:
        b = self.sim.buffers
        visible = b.tick[0] - b.delay[0, 2]
        ticks = b.frame_tick[0]
        ok = (ticks >= 0) & (ticks <= visible)
        return int(ticks[ok].max()) if ok.any() else -1

    def _substep(self, now_s: float) -> None:
        self.sim.substep()
        self.substeps += 1
        if not self.streaming:
            return
        self._track_truth()
        newest = self._newest_frame_tick()
        if newest != self.last_frame_tick:  # a frame reached the host side of the link
            self.last_frame_tick = newest
            self._send(MsgType.IMAGE, ImageFrame(self.sim.image[0]))
            self._send_frame_reference()
        since = int(self.sim.tick[0]) - self.stream_start
        if since % self.cfg.substeps_per_control == 0:  # continues the last frame, sample for sample
            imu, enc = self.sim.latest_samples(self.cfg.substeps_per_control)
            stamp = self._stamp_us()
            self._send(MsgType.SENSOR, SensorBatch(imu[0], enc[0], self.layout), stamp)
            self._send_sensor_reference(stamp)
        if since % self.cfg.imu.rate_hz == 0:  # STATUS at least once a second while streaming
            self._send(MsgType.STATUS, self._status())
        if (
            not self.lockstep
            and not self.watchdog_tripped
            and now_s - self.last_command_s > self.cfg.watchdog_ms / 1000.0
        ):
            self.sim.command(np.zeros(1))
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
        state = self.sim.state
        alpha = abs(float(wrap_angle(state[0, 1])))
        t = self.truth
        t.streaming_s += self.dt
        t.max_abs_alpha_deg = max(t.max_abs_alpha_deg, float(np.rad2deg(alpha)))
        t.max_abs_theta_rad = max(t.max_abs_theta_rad, abs(float(state[0, 0])))
        if alpha < np.deg2rad(self.task.cfg.upright_deg):
            t.upright_s += self.dt
        else:
            t.upright_whole_run = False
        self.tracker.update(state, self.sim.volts / self.cfg.v_max)
        t.arm_past_limit = bool(self.tracker.failed_arm[0])
        t.success = bool(self.tracker.success[0])
        ttu = float(self.tracker.time_to_upright[0])
        t.time_to_upright_s = None if np.isnan(ttu) else ttu

    # ------------------------------------------------------------------ main loop (pty)

    def run(self, fd: int, should_stop: Callable[[], bool]) -> None:
        """Serve on file descriptor ``fd`` (a pty master) until ``should_stop()`` is true."""
        t0 = time.monotonic()
        while not should_stop():
            now = time.monotonic()
            self._read(fd, now)
            if not self.lockstep:
                due = int((now - t0) / self.dt)
                while self.substeps < due:
                    self._substep(now)
            self._flush(fd)
            timeout = 0.05 if self.lockstep else max(0.0, t0 + (self.substeps + 1) * self.dt - time.monotonic())
            select.select([fd], [], [], timeout)
        self._read(fd, time.monotonic())  # whatever the host sent before stopping us

    def _read(self, fd: int, now_s: float) -> None:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            return
        self.feed(data, now_s)

    def _flush(self, fd: int) -> None:
        while self.outbox:
            try:
                n = os.write(fd, self.outbox)
            except BlockingIOError:
                return
            except OSError:  # host side closed: keep simulating, drop output
                self.outbox.clear()
                return
            del self.outbox[:n]


def _load_kernels(cfg: DeviceConfig) -> None:
    """Run every core kernel once on a throwaway sim (numba compiles or loads them on first call)."""
    sim = FurutaSim(cfg, 1, seed=0)
    sim.reset()
    sim.step(np.zeros(1))
    sim.command(np.zeros(1))
    sim.substep()
    sim.received(1)


class LoopbackTransport:
    """The host's side of an in-process link to a lockstep twin (pyserial's ``loop://`` idea).

    Implements :class:`sensorimotor.hardware.transport.Transport`: what the host writes is
    fed to the twin at once; the twin's answers are what the host reads. Single-threaded
    and deterministic, so unit tests need no subprocess and no pty.
    """

    def __init__(self, twin: Twin) -> None:
        if not twin.lockstep:
            raise ValueError("a loopback twin must run in lockstep: nothing else advances its clock")
        self.twin = twin
        self.name = "loop://twin"

    def write(self, data: bytes) -> None:
        self.twin.feed(data)

    def read_available(self) -> bytes:
        return self.twin.take_output()

    def wait_readable(self, timeout_s: float) -> bool:
        return bool(self.twin.outbox)

    def close(self) -> None:
        pass


def open_pty() -> tuple[int, int, str]:
    """(master fd non-blocking, slave fd, slave path) of a raw pseudo-terminal."""
    master, slave = pty.openpty()
    tty.setraw(slave)  # no line discipline: 0x00, 0x0A and 0x11 must pass untouched
    tty.setraw(master)
    os.set_blocking(master, False)
    return master, slave, os.ttyname(slave)


def serve_forever(
    config: str | Path | None, seed: int = 0, link: Path | None = None, truth_path: Path | None = None,
    randomize: bool = True, garbage_prob: float = 0.0, overrides: Sequence[str] = (), lockstep: bool = False,
    parent_pid: int | None = None,
) -> int:  # fmt: skip
    """``sim twin``: serve on a pty, print the port path, run until SIGINT/SIGTERM."""
    try:
        cfg = load_section(config, "device", DeviceConfig, overrides=overrides)
        task = load_section(config, "task", TaskConfig, overrides=overrides)
    except ConfigError as exc:
        print(f"sim twin: config error: {exc}", file=sys.stderr)
        return 2
    # Built (and its kernels compiled or loaded) before the port is announced: a host that
    # connects at once must get an answer within its handshake timeout.
    twin = Twin(cfg, task, seed=seed, randomize=randomize, garbage_prob=garbage_prob, lockstep=lockstep)
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
    # Started by `hw run --twin`: also stop when that parent is gone (it was killed: no SIGTERM reached us).
    orphaned = (lambda: os.getppid() != parent_pid) if parent_pid else (lambda: False)
    twin.run(master, lambda: stop["flag"] or orphaned())
    if truth_path is not None:
        truth = dict(twin.truth.__dict__)
        truth["verdict"] = twin_verdict(truth)  # in words, so the host prints it without knowing the task
        truth_path.write_text(json.dumps(truth, indent=2))
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
    parser.add_argument("--lockstep", action="store_true",
                        help="advance one control period per COMMAND instead of in real time: deterministic, "
                             "as fast as the host")  # fmt: skip
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # stop when it is gone


def run_from_args(args: argparse.Namespace) -> int:
    return serve_forever(
        args.config,
        args.seed,
        args.link,
        args.truth,
        not args.nominal,
        args.inject_garbage,
        args.overrides,
        args.lockstep,
        args.parent_pid,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sensorimotor.sim.twin", description="Serve the simulated device on a pty."
    )
    add_twin_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
