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

import json
import os
import pty
import select
import signal
import sys
import time
import tty
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.configs.schema import ConfigError
from sensorimotor.hardware.children import exit_text
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
from sensorimotor.sim.config import DeviceConfig, DeviceSection, load_device
from sensorimotor.sim.firmware_twin import FirmwareError, FirmwareTwin
from sensorimotor.sim.mjcf_twin import MjcfTwinPhysics
from sensorimotor.sim.twin_physics import TwinPhysics
from sensorimotor.sim.verdict import twin_verdict

MAX_OUTBOX = 256 * 1024  # bytes queued for a host that is not reading before we drop


def twin_physics(cfg: DeviceSection, task: Any, seed: int, randomize: bool) -> TwinPhysics | MjcfTwinPhysics:
    """What the twin plays for ``cfg``: the Furuta on its numba core, a MuJoCo-described device on MuJoCo."""
    if isinstance(cfg, DeviceConfig):
        return TwinPhysics(cfg, task, seed, randomize)
    if hasattr(cfg, "mjcf_device"):
        return MjcfTwinPhysics(cfg, task, seed, randomize)
    raise ConfigError(f"device.type: {cfg.type_name!r} has no twin (a device twins through mjcf_device(): "
                      "docs/adding-a-device.md)")  # fmt: skip


class Twin:
    """The simulated device; bytes in through :meth:`feed`, out through :meth:`take_output`."""

    def __init__(
        self, cfg: DeviceSection, task: Any, seed: int = 0, randomize: bool = True,
        garbage_prob: float = 0.0, lockstep: bool = False,
    ) -> None:  # fmt: skip
        self.cfg, self.lockstep = cfg, lockstep
        self.garbage_prob = garbage_prob  # fault injection: random bytes between frames
        self.fault_rng = np.random.default_rng(seed + 7919)
        self.physics = twin_physics(cfg, task, seed, randomize)
        self.sim: Any = self.physics.sim  # FurutaSim or MujocoDeviceSim: images only where the spec has a camera
        self.truth = self.physics.truth
        self.spec = cfg.spec()  # what DESCRIBE says, encoded from the same config the physics uses
        self.reference = bool(getattr(cfg, "reference", False))  # REFERENCE frames: a device that offers them
        self.layout = SensorLayout.of(self.spec)
        self.decoder = StreamDecoder(self.spec.protocol_version)
        self.streaming = False
        self.watchdog_tripped = False
        self.seq = 0
        self.outbox = bytearray()
        self.stream_start = 0  # sim tick at which streaming began (control periods count from it)
        self.last_command_s = 0.0
        self.dt = 1.0 / self.spec.imu_rate_hz

    # ------------------------------------------------------------------ output

    def _stamp_us(self) -> int:
        return int(self.physics.substeps * self.dt * 1e6)

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
                self.physics.zero()
                self._send(MsgType.STATUS, self._status())
            elif isinstance(msg, Command) and self.streaming and len(msg.volts) == self.spec.n_actuators:
                self.physics.command(msg.volts)  # clamped to +-v_max; lands after the actuator delay
                self.truth.commands_applied += 1
                self.last_command_s = now_s
                if self.watchdog_tripped:
                    self.watchdog_tripped = False
                    self._send(MsgType.STATUS, self._status())  # flag cleared
                if self.lockstep:  # one control period, in one call where the device allows (sim/mjcf_twin.py)
                    n = self.spec.samples_per_frame
                    for count in [n] if self.physics.whole_periods else [1] * n:
                        self._substep(now_s, count)
        self.truth.bad_frames_received = self.decoder.stats.frames_bad

    def _start(self, now_s: float) -> None:
        self.physics.start(real_time=not self.lockstep)  # near upright, or hanging; sensor buffers warmed up
        self.streaming = True
        self.watchdog_tripped = False
        self.stream_start = int(self.sim.tick[0])
        self._send(MsgType.STATUS, self._status())  # START acknowledged: STREAMING set, counters as of now
        # Send the warm-up window at once so the host can act from its first cycle,
        # exactly as the training env's first observation is the warm-up window.
        window, sample_us = self.spec.imu_window, self.dt * 1e6
        imu, enc = self.sim.latest_samples(window)
        for k in range(0, window, MAX_SAMPLES):  # a window longer than a frame holds: several
            last = min(k + MAX_SAMPLES, window) - 1  # stamped with its last sample's time, as the stream is
            stamp = self._stamp_us() - round((window - 1 - last) * sample_us)
            self._send(MsgType.SENSOR, SensorBatch(imu[0, k : last + 1], enc[0, k : last + 1], self.layout), stamp)
        self._send_sensor_reference(self._stamp_us())  # the window's newest sample: still now (held still)
        if self.spec.camera is not None:
            self._send(MsgType.IMAGE, ImageFrame(self.sim.received(1)["image"][0, 0]))
            self._send_frame_reference()
        self.last_command_s = now_s
        self.watchdog_tripped = False

    # ------------------------------------------------------------------ physics

    def _send_sensor_reference(self, stamp_us: int) -> None:
        """REFERENCE with the true state at the newest IMU sample the host has (``device.reference`` only)."""
        if self.reference:
            theta, alpha, theta_dot, alpha_dot = (float(v) for v in self.sim.received(1)["imu_state"][0])
            values = (("alpha", alpha), ("alpha_d", alpha_dot), ("theta", theta), ("theta_d", theta_dot))
            self._send(MsgType.REFERENCE, Reference(values), stamp_us)

    def _send_frame_reference(self) -> None:
        """REFERENCE for the IMAGE frame just sent: its pose at capture and its fault class."""
        if self.reference:
            r = self.sim.received(1)
            values = (("f_alpha", float(r["image_state"][0, 1])), ("f_class", float(r["camera_class"][0])))
            self._send(MsgType.REFERENCE, Reference(values))

    def _substep(self, now_s: float, count: int = 1) -> None:
        new_frame = self.physics.substep(track=self.streaming, count=count)
        if not self.streaming:
            return
        if new_frame:  # a frame reached the host side of the link
            self._send(MsgType.IMAGE, ImageFrame(self.sim.image[0]))
            self._send_frame_reference()
        since = int(self.sim.tick[0]) - self.stream_start
        if since % self.spec.samples_per_frame == 0:  # continues the last frame, sample for sample
            imu, enc = self.sim.latest_samples(self.spec.samples_per_frame)
            stamp = self._stamp_us()
            self._send(MsgType.SENSOR, SensorBatch(imu[0], enc[0], self.layout), stamp)
            self._send_sensor_reference(stamp)
        if since % self.spec.imu_rate_hz == 0:  # STATUS at least once a second while streaming
            self._send(MsgType.STATUS, self._status())
        if (
            not self.lockstep
            and not self.watchdog_tripped
            and now_s - self.last_command_s > self.spec.watchdog_ms / 1000.0
        ):
            self.physics.zero()
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

    # ------------------------------------------------------------------ main loop (pty)

    def run(self, fd: int, should_stop: Callable[[], bool]) -> None:
        """Serve on file descriptor ``fd`` (a pty master) until ``should_stop()`` is true."""
        t0 = time.monotonic()
        while not should_stop():
            now = time.monotonic()
            self._read(fd, now)
            if not self.lockstep:
                due = int((now - t0) / self.dt)
                while self.physics.substeps < due:
                    self._substep(now)
            self._flush(fd)
            timeout = 0.05 if self.lockstep else max(0.0, t0 + (self.physics.substeps + 1) * self.dt - time.monotonic())
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
    parent_pid: int | None = None, firmware: Path | None = None,
) -> int:  # fmt: skip
    """``sim twin``: serve on a pty, print the port path, run until SIGINT/SIGTERM (with ``firmware``: the
    firmware in the loop, sim/firmware_twin.py)."""
    try:
        cfg, task = load_device(config, overrides)
    except ConfigError as exc:
        print(f"sim twin: config error: {exc}", file=sys.stderr)
        return 2
    if firmware is not None and (lockstep or garbage_prob):
        print("sim twin: --firmware runs in real time on the firmware's own code: no --lockstep or --inject-garbage",
              file=sys.stderr)  # fmt: skip
        return 2
    if firmware is not None and not isinstance(cfg, DeviceConfig):
        print(f"sim twin: --firmware plays the furuta's hardware only (firmware/), not device.type {cfg.type_name!r}",
              file=sys.stderr)  # fmt: skip
        return 2
    # Built (and its kernels compiled or loaded) before the port is announced: a host that
    # connects at once must get an answer within its handshake timeout.
    master, slave, path = open_pty()
    served: Twin | FirmwareTwin
    if firmware is None:
        try:
            served = Twin(cfg, task, seed=seed, randomize=randomize, garbage_prob=garbage_prob, lockstep=lockstep)
        except ConfigError as exc:
            print(f"sim twin: config error: {exc}", file=sys.stderr)
            return 2
    else:
        assert isinstance(cfg, DeviceConfig)
        try:
            served = FirmwareTwin(firmware, master, cfg, task, seed, randomize)
        except FirmwareError as exc:
            print(f"sim twin: {exc}", file=sys.stderr)
            return 2
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
    said = ""  # what the firmware wrote on stderr
    if isinstance(served, FirmwareTwin):
        served.serve(lambda: stop["flag"] or orphaned())
        said = served.stop()
        if said:
            print(f"sim twin: the firmware said: {said}", file=sys.stderr)
        if served.exit_status is not None:
            print(f"sim twin: the firmware ended during the session: {exit_text(served.exit_status)}", file=sys.stderr)
    else:
        served.run(master, lambda: stop["flag"] or orphaned())
    if truth_path is not None:
        truth = dict(served.truth.__dict__)
        if isinstance(served, FirmwareTwin) and served.exit_status is not None:  # the host names it in its summary
            truth["firmware_exit"] = {"status": served.exit_status, "text": exit_text(served.exit_status),
                                      "said": said[-500:]}  # fmt: skip
        truth["verdict"] = twin_verdict(truth)  # in words, so the host prints it without knowing the task
        truth["details"] = served.physics.details()  # the same, for the figures
        truth_path.write_text(json.dumps(truth, indent=2))
    if link is not None:
        link.unlink(missing_ok=True)
    os.close(master)
    os.close(slave)
    return 0
