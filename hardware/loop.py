"""The fixed-rate control loop: sensor frames in, ONNX model, clamped command out, all logged.

Timing (the ros2_control way): cycles run on absolute monotonic deadlines ``t0 + k * period``,
with ``t0`` just after the first SENSOR frame's arrival so that, at matching rates, each
cycle acts on a fresh frame;
an overrun skips the missed cycles instead of catching up, and is counted. Between
deadlines the loop waits on the port, so frames are timestamped as they arrive and the
reported latency is from the arrival of the newest SENSOR frame to the command write.

Sizes come from the device's handshake (:class:`~sensorimotor.hardware.spec.DeviceSpec`):
window length, image shape, number of actuators and their limits.

Safety: every command passes :func:`sensorimotor.hardware.safety.clamp_commands`; if sensor
frames stop for ``sensor_timeout_s`` the loop sends 0 V and stops with SensorTimeoutError.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from sensorimotor.hardware.device import DeviceClient, Received
from sensorimotor.hardware.errors import SensorTimeoutError
from sensorimotor.hardware.mcaplog import TOPIC_COMMAND, TOPIC_ESTIMATE, TOPIC_EVENT, LogWriter
from sensorimotor.hardware.messages import ImageFrame, SensorBatch, Status, StatusFlags
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.hardware.safety import clamp_commands
from sensorimotor.hardware.windows import SensorWindows

PHASE_NS = 300_000  # cycle deadlines sit this long after the sensor stream's arrivals


@dataclass
class LoopStats:
    cycles: int = 0
    commands: int = 0
    overruns: int = 0  # cycles skipped because the loop fell behind
    clamped: int = 0
    warmup_cycles: int = 0  # cycles before a full sensor window had arrived
    latency_ns: list[int] = field(default_factory=list)  # newest SENSOR arrival -> command written
    compute_ns: list[int] = field(default_factory=list)  # model + clamp + encode + write
    elapsed_s: float = 0.0
    watchdog_trips: int = 0

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latency_ns or [0]) / 1e3
        comp = np.array(self.compute_ns or [0]) / 1e3
        return {
            "cycles": self.cycles,
            "commands": self.commands,
            "achieved_rate_hz": self.cycles / self.elapsed_s if self.elapsed_s else 0.0,
            "overruns": self.overruns,
            "clamped": self.clamped,
            "latency_us_p50": float(np.percentile(lat, 50)),
            "latency_us_p99": float(np.percentile(lat, 99)),
            "compute_us_p50": float(np.percentile(comp, 50)),
            "compute_us_p99": float(np.percentile(comp, 99)),
            "device_watchdog_trips": self.watchdog_trips,
        }


class ControlLoop:
    """Runs ``policy`` against ``client`` at ``rate_hz`` for a duration."""

    def __init__(
        self, client: DeviceClient, policy: OnnxPolicy, rate_hz: float, limits: Sequence[tuple[float, float]],
        sensor_timeout_s: float, recorder: LogWriter | None = None,
    ) -> None:  # fmt: skip
        if client.spec is None:
            raise RuntimeError("connect() the client before building the loop")
        self.client, self.policy, self.recorder = client, policy, recorder
        self.period_ns = round(1e9 / rate_hz)
        self.limits = list(limits)  # one (lo, hi) per actuator the device described
        self.sensor_timeout_ns = int(sensor_timeout_s * 1e9)
        self.windows = SensorWindows.for_device(client.spec)
        self.stats = LoopStats()
        self.last_sensor_ns: int | None = None
        self.last_sensor_seq = -1
        self.last_image_seq = -1
        self.device_tripped = False

    # ------------------------------------------------------------------ frames

    def _absorb(self, frames: list[Received]) -> None:
        for rx in frames:
            msg = rx.message
            if isinstance(msg, SensorBatch):
                self.windows.add_sensor(msg)
                self.last_sensor_ns, self.last_sensor_seq = rx.t_ns, rx.frame.seq
            elif isinstance(msg, ImageFrame):
                self.windows.add_image(msg)
                self.last_image_seq = rx.frame.seq
            elif isinstance(msg, Status):
                tripped = bool(msg.flags & StatusFlags.WATCHDOG_TRIPPED)
                if tripped and not self.device_tripped:  # count rising edges: STATUS repeats
                    self.stats.watchdog_trips += 1
                    self._event(rx.t_ns, "device_watchdog", "device reports its command watchdog tripped")
                self.device_tripped = tripped

    def _wait_until(self, deadline_ns: int) -> None:
        """Absorb frames as they arrive until the deadline (monotonic ns since connect)."""
        while True:
            self._absorb(self.client.poll())
            remaining = deadline_ns - self.client.now_ns()
            if remaining <= 0:
                return
            self.client.transport.wait_readable(remaining / 1e9)

    # ------------------------------------------------------------------ cycle

    def _cycle(self, cycle: int) -> None:
        now = self.client.now_ns()
        if self.last_sensor_ns is not None and now - self.last_sensor_ns > self.sensor_timeout_ns:
            self.client.zero_command()
            gap = (now - self.last_sensor_ns) / 1e9
            self._event(now, "sensor_timeout", f"no sensor frame for {gap:.3f} s; sent 0 V and stopped")
            raise SensorTimeoutError(
                f"no sensor frame from {self.client.transport.name} for {gap:.2f} s: sent 0 V and stopped. "
                "Check the cable and the device's power."
            )
        if not self.windows.ready:
            self.stats.warmup_cycles += 1
            return
        t_start = time.perf_counter_ns()
        requested, estimates = self.policy.run(self.windows.inputs())
        sent, clamped = clamp_commands(requested.tolist(), self.limits)
        self.client.send_command(sent)
        t_sent = self.client.now_ns()
        self.stats.compute_ns.append(time.perf_counter_ns() - t_start)
        if self.last_sensor_ns is not None:
            self.stats.latency_ns.append(t_sent - self.last_sensor_ns)
        self.stats.commands += 1
        self.stats.clamped += int(clamped)
        if self.recorder is not None:
            self.recorder.write_json(
                TOPIC_COMMAND,
                {"cycle": cycle, "t_host_ns": t_sent, "volts": list(sent), "requested_volts": requested.tolist(),
                 "clamped": clamped, "sensor_seq": self.last_sensor_seq, "image_seq": self.last_image_seq},
                log_time_ns=t_sent, seq=cycle,
            )  # fmt: skip
            names = self.policy.estimate_names or [f"e{i}" for i in range(len(estimates))]
            self.recorder.write_json(
                TOPIC_ESTIMATE, {"cycle": cycle, "estimates": dict(zip(names, map(float, estimates), strict=False))},
                log_time_ns=t_sent, seq=cycle,
            )  # fmt: skip

    def _event(self, t_ns: int, kind: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.write_json(TOPIC_EVENT, {"kind": kind, "message": message}, log_time_ns=t_ns)

    def _align(self, timeout_s: float) -> int:
        """Wait for the first SENSOR frame; cycles start just after sensor arrivals (low latency)."""
        start = self.client.now_ns()
        self.last_sensor_ns = start  # the sensor timeout counts from the start of streaming
        while self.windows.samples == 0:
            if self.client.now_ns() - start > timeout_s * 1e9:
                return self.client.now_ns()  # let the first cycle report the sensor timeout
            self.client.transport.wait_readable(0.001)
            self._absorb(self.client.poll())
        return self.last_sensor_ns + PHASE_NS

    def run_lockstep(self, duration_s: float) -> LoopStats:
        """Against a lockstep twin: one cycle per fresh SENSOR frame, no wall-clock pacing.

        The twin advances one control period per command, so ``duration_s`` is device
        time (``duration_s * rate`` cycles) and the run takes as long as the host needs.
        """
        cycles = round(duration_s * 1e9 / self.period_ns)
        t0 = self.client.now_ns()
        self.last_sensor_ns = t0
        acted_on = -1
        for k in range(cycles):
            while self.last_sensor_seq == acted_on or not self.windows.ready:
                if self.client.now_ns() - self.last_sensor_ns > self.sensor_timeout_ns:
                    break  # the cycle reports the sensor timeout
                self.client.transport.wait_readable(0.01)
                self._absorb(self.client.poll())
            acted_on = self.last_sensor_seq
            self._cycle(k)
            self.stats.cycles += 1
        self.stats.elapsed_s = (self.client.now_ns() - t0) / 1e9
        return self.stats

    def run(self, duration_s: float) -> LoopStats:
        """Run cycles on absolute deadlines for ``duration_s`` seconds."""
        t0 = self._align(self.sensor_timeout_ns / 1e9)
        end = t0 + int(duration_s * 1e9)
        k = 0
        while True:
            deadline = t0 + k * self.period_ns
            if deadline >= end:
                break
            self._wait_until(deadline)
            self._cycle(k)
            self.stats.cycles += 1
            k += 1
            behind = self.client.now_ns() - (t0 + k * self.period_ns)
            if behind > 0:  # overran: skip the missed cycles, do not catch up
                skipped = behind // self.period_ns + 1
                self.stats.overruns += int(skipped)
                k += int(skipped)
        self.stats.elapsed_s = (self.client.now_ns() - t0) / 1e9
        return self.stats
