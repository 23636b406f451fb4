"""Firmware in the loop: the C firmware's native build speaks the protocol on the pty; the simulator is its hardware.

``sim twin --firmware PATH`` starts PATH (``make firmware`` builds firmware/ports/native)
with the pty master as its UART and a socket to this process, which plays the device's
physics: each sample the firmware takes advances the simulation by one IMU period and
returns the IMU channels (SI units) and encoder counts, with a camera frame when one
reached the host side; every actuator value the firmware writes (a COMMAND, the watchdog's
zero, STOP) drives the motor. The messages are listed in firmware/ports/native/main.c and
docs/firmware.md. The host cannot tell this from a board: framing, handshake, streaming
clock, clamping, watchdog and STATUS are the C code's.

Light runtime path: numpy, numba and the hardware protocol only.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from sensorimotor.hardware.children import die_with_parent
from sensorimotor.hardware.messages import Describe
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.task import TaskConfig
from sensorimotor.sim.twin_physics import Truth, TwinPhysics


class FirmwareError(RuntimeError):
    """The firmware could not be started or broke the physics link: one line for the user."""


class FirmwareTwin:
    """The simulated device's physics behind the firmware's HAL; the firmware owns the pty."""

    def __init__(
        self, firmware: Path, uart_fd: int, cfg: DeviceConfig, task: TaskConfig, seed: int = 0, randomize: bool = True
    ) -> None:
        if not (firmware.is_file() and os.access(firmware, os.X_OK)):
            raise FirmwareError(f"--firmware {firmware}: no such executable; `make firmware` builds the native one")
        self.cfg = cfg
        self.physics = TwinPhysics(cfg, task, seed, randomize)
        self.truth: Truth = self.physics.truth
        spec = cfg.spec()
        if any(c.encoding != "f32" for c in spec.imu_channels):
            raise FirmwareError("the firmware in the loop takes float32 IMU channels from the simulator")
        self.n_channels, self.n_encoders = len(spec.imu_channels), len(spec.encoders)
        self.sample = struct.Struct(f"<c{self.n_channels}f{self.n_encoders}i")
        self.streaming = False
        self.exit_status: int | None = None  # set when the firmware ended on its own (-N: signal N)
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [str(firmware), "--uart", str(uart_fd), "--physics", str(theirs.fileno())],
                pass_fds=(uart_fd, theirs.fileno()), preexec_fn=die_with_parent, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
        except OSError as exc:
            raise FirmwareError(f"--firmware {firmware}: cannot run it ({exc.strerror}); `make firmware` builds "
                                "the native one") from None  # fmt: skip
        finally:
            theirs.close()
        try:
            self.sock.sendall(b"D" + Describe(spec).pack())
        except OSError:  # it exited at once: not the native firmware, or it refused its arguments
            code = self.proc.wait(timeout=5)
            said = (self.proc.stderr.read() if self.proc.stderr else "").strip().splitlines()
            raise FirmwareError(f"--firmware {firmware}: exited as it started (exit status {code}"
                                f"{': ' + said[0] if said else ''}); is it the native build (`make firmware`)?") from None  # fmt: skip

    def serve(self, should_stop: Callable[[], bool]) -> None:
        """Answer the firmware until ``should_stop()`` or until it exits (then :attr:`exit_status` says how)."""
        while not should_stop():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            try:
                packet = self.sock.recv(65536)
                if not packet:  # the firmware exited
                    break
                self._handle(packet)
            except (BrokenPipeError, ConnectionResetError):  # it died between asking and our answer
                break
        # Ended on its own, not because we were asked to stop. Ask the process, not should_stop(): the host
        # may stop us (sensor timeout) before this loop saw the firmware's socket close.
        self.exit_status = self.proc.poll()
        if self.exit_status is None and not should_stop():
            try:
                self.exit_status = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:  # closed its socket and lives on: stop() ends it
                self.exit_status = None

    def _handle(self, packet: bytes) -> None:
        kind = packet[:1]
        if kind == b"S":
            new_frame = self.physics.substep(track=self.streaming)
            imu, enc = self.physics.sim.latest_samples(1)
            reply = self.sample.pack(b"R", *imu[0, 0].tolist(), *np.atleast_1d(enc[0, 0]).tolist())
            if new_frame and self.streaming:
                pixels = np.ascontiguousarray(self.physics.sim.image[0], dtype=np.uint8)
                reply += bytes(pixels.shape) + pixels.tobytes()
                self.truth.frames_sent += 1
            self.sock.sendall(reply)
        elif kind == b"A":
            self.physics.command(struct.unpack_from("<f", packet, 1))
            self.truth.commands_applied += 1
        elif kind == b"B":
            self.physics.start(real_time=True)
            self.streaming = True
        elif kind == b"E":
            self.streaming = False
        else:
            raise FirmwareError(f"the firmware sent an unknown physics message {packet[:1]!r}")

    def stop(self) -> str:
        """End the firmware (it exits when its physics socket closes); its stderr, if it said anything."""
        self.sock.close()
        try:
            _, err = self.proc.communicate(timeout=2)
        except subprocess.TimeoutExpired:  # not ours, or hung: ours exits within a millisecond
            self.proc.terminate()
            try:
                _, err = self.proc.communicate(timeout=2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                _, err = self.proc.communicate()
        return (err or "").strip()
