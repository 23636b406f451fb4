"""The control loop: sensor frames in, ONNX model, limited command out, all logged.

Pacing: cycles are triggered by the sensor stream, not by a free-running clock. Every
``frames_per_cycle`` fresh SENSOR frames (stream rate / control rate, normally 1) the loop
runs the model once on the newest window and writes the command, so each fresh frame is
used exactly once, whatever the host clock's drift against the device's. When the loop
falls behind and more frames than one cycle's worth wait, it acts once on the newest and
counts the skipped cycles as missed (never catching up).

Staged failsafe (docs/protocol.md, section 5):

1. no fresh SENSOR frame 1.75 control periods after the last one → the **safe command**
   (0 V) goes out, never a model output computed on a stale window;
2. while no fresh frame arrives, the safe command is repeated every control period
   (it also feeds the device's watchdog with a safe value);
3. frames return → the model resumes once the window holds a whole window of
   contiguous samples again (lost frames leave a hole; the safe command until then);
4. no fresh frame for ``sensor_timeout_s`` → 0 V, STOP, :class:`SensorTimeoutError`.

The device's STATUS is its heartbeat and its view of our command stream. The run ends
(0 V, STOP, :class:`CommandPathLostError`, exit 3) when for ``status_timeout_s`` while
commands were being sent no STATUS arrived, or STATUS showed the applied-command counter
frozen, or the device's watchdog stayed tripped: our commands no longer reach the device.

The loop's thread asks for real-time scheduling (SCHED_FIFO, else a lower nice value)
where the OS permits it, so the failsafe's deadline does not wait behind other work on a
loaded machine; without the permission it runs as before (the summary's ``scheduling``).

Safety on every model command (pure functions in :mod:`sensorimotor.hardware.safety`):
voltage limits, slew-rate limit, and a state-based stop (arm past its cable limit,
pendulum fallen when configured) that sends 0 V and raises :class:`SafetyStopError`.
The command actually sent is what gets logged.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sensorimotor.hardware.camera import HostCamera
from sensorimotor.hardware.config import LoopConfig
from sensorimotor.hardware.device import DeviceClient, Received, frame_body
from sensorimotor.hardware.errors import (
    CommandPathLostError,
    ConfigMismatchError,
    DeviceNotRespondingError,
    LinkLostError,
    PortError,
    SafetyStopError,
    SensorTimeoutError,
)
from sensorimotor.hardware.live import LiveView
from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, TOPIC_ESTIMATE, TOPIC_EVENT, TOPIC_HOST_CAMERA, LogWriter
from sensorimotor.hardware.messages import ImageFrame, MsgType, SensorBatch, Status, StatusFlags, make_frame
from sensorimotor.hardware.model import LoopPolicy
from sensorimotor.hardware.safety import (
    STALL_PERIODS,
    clamp_commands,
    failsafe_window_ok,
    slew_limit,
    stale_deadline_ns,
    state_stop_reason,
    tilt_deg_from_estimates,
)
from sensorimotor.hardware.spec import DeviceSpec, compare
from sensorimotor.hardware.transport import Transport
from sensorimotor.hardware.windows import SensorWindows


@dataclass
class DeviceCounters:
    """The device's STATUS counters at the start of streaming and at the end (its view of the link)."""

    first: Status | None = None
    last: Status | None = None
    stopped_ack: bool = False  # a STATUS without STREAMING arrived after our STOP

    def delta(self, name: str) -> int | None:
        if self.first is None or self.last is None:
            return None
        return (getattr(self.last, name) - getattr(self.first, name)) % (1 << 32)


@dataclass
class LoopStats:
    cycles: int = 0  # cycles run: model commands + safe commands
    commands: int = 0  # model commands sent
    safe_commands: int = 0  # safe commands sent by the failsafe or while the window filled
    missed: int = 0  # cycles skipped because the loop fell behind
    clamped: int = 0
    slewed: int = 0
    warmup_cycles: int = 0  # safe cycles before the first whole window
    failsafe_cycles: int = 0  # safe cycles after a stall or a gap
    failsafe_events: int = 0
    failsafe_latency_ns: list[int] = field(default_factory=list)  # per failsafe start: last fresh frame -> safe command
    max_stale_ms: float = 0.0  # longest time without a fresh frame while streaming
    latency_ns: list[int] = field(default_factory=list)  # newest SENSOR arrival -> model command written
    compute_ns: list[int] = field(default_factory=list)  # model + limits + encode + write
    command_ns: list[int] = field(default_factory=list)  # when each command was written (jitter)
    elapsed_s: float = 0.0
    watchdog_trips: int = 0
    commands_sent_streaming: int = 0  # every COMMAND after START, including the final zero
    device: DeviceCounters = field(default_factory=DeviceCounters)
    stop_reason: str | None = None
    reconnects: int = 0  # the port vanished and came back this many times
    status_timeouts: int = 0  # times the device's STATUS heartbeat went silent for status_timeout_s
    first_command_unix_s: float | None = None
    scheduling: str = "normal"  # what the loop's thread obtained from the OS (see raise_priority)

    def summary(self, period_s: float) -> dict[str, float | int | str | None]:
        lat = np.array(self.latency_ns or [0]) / 1e3
        comp = np.array(self.compute_ns or [0]) / 1e3
        gaps = np.diff(np.array(self.command_ns)) / 1e3 if len(self.command_ns) > 2 else np.zeros(1)
        applied = self.device.delta("commands_applied")
        failsafe = np.array(self.failsafe_latency_ns or [0]) / 1e3
        return {
            "cycles": self.cycles,
            "commands": self.commands,
            "safe_commands": self.safe_commands,
            "achieved_rate_hz": self.cycles / self.elapsed_s if self.elapsed_s else 0.0,
            "missed_cycles": self.missed,
            "clamped": self.clamped,
            "slew_limited": self.slewed,
            "warmup_cycles": self.warmup_cycles,
            "failsafe_cycles": self.failsafe_cycles,
            "failsafe_events": self.failsafe_events,
            "max_stale_ms": self.max_stale_ms,
            "failsafe_latency_us_p50": float(np.percentile(failsafe, 50)),
            "failsafe_latency_us_p99": float(np.percentile(failsafe, 99)),
            "failsafe_latency_us_max": float(failsafe.max()),
            # failsafe starts later than the promised 2 control periods after the last fresh frame
            "failsafe_late": sum(t > 2 * period_s * 1e9 for t in self.failsafe_latency_ns),
            "latency_us_p50": float(np.percentile(lat, 50)),
            "latency_us_p99": float(np.percentile(lat, 99)),
            "latency_us_max": float(lat.max()),
            "jitter_us_p99": float(np.percentile(np.abs(gaps - period_s * 1e6), 99)),
            "compute_us_p50": float(np.percentile(comp, 50)),
            "compute_us_p99": float(np.percentile(comp, 99)),
            "device_watchdog_trips": self.watchdog_trips,
            "commands_sent": self.commands_sent_streaming,
            "device_commands_applied": applied,
            "device_frames_bad": self.device.delta("frames_bad"),
            "device_acknowledged_stop": self.device.stopped_ack,
            "stop_reason": self.stop_reason,
            "reconnects": self.reconnects,
            "device_status_timeouts": self.status_timeouts,
            "first_command_unix_s": self.first_command_unix_s,
            "scheduling": self.scheduling,
        }


RT_PRIORITY = 10  # SCHED_FIFO priority: above every normal process, below the kernel's threaded interrupts (50)
NICE_BOOST = -10  # the fallback where real-time scheduling is refused but a lower nice value is not


def raise_priority() -> tuple[str, Callable[[], None]]:
    """Ask the OS to run the calling thread first; (what was obtained, how to undo it).

    SCHED_FIFO where permitted (root, CAP_SYS_NICE or an rtprio limit), else nice
    ``NICE_BOOST``, else nothing. Children forked meanwhile do not inherit it.
    """
    try:
        policy, param = os.sched_getscheduler(0), os.sched_getparam(0)
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(RT_PRIORITY))
        return f"SCHED_FIFO {RT_PRIORITY}", lambda: os.sched_setscheduler(0, policy, param)
    except (OSError, AttributeError):  # not permitted, or not Linux
        pass
    try:
        nice = os.getpriority(os.PRIO_PROCESS, 0)  # on Linux: this thread's
        os.setpriority(os.PRIO_PROCESS, 0, nice + NICE_BOOST)
        return f"nice {nice + NICE_BOOST}", lambda: os.setpriority(os.PRIO_PROCESS, 0, nice)
    except (OSError, AttributeError):
        return "normal", lambda: None


class ControlLoop:
    """Runs ``policy`` against ``client``, paced by the device's sensor stream."""

    def __init__(
        self, client: DeviceClient, policy: LoopPolicy, rate_hz: float, limits: Sequence[tuple[float, float]],
        cfg: LoopConfig | None = None, recorder: LogWriter | None = None,
    ) -> None:  # fmt: skip
        if client.spec is None:
            raise RuntimeError("connect() the client before building the loop")
        spec = client.spec
        self.client, self.policy, self.recorder = client, policy, recorder
        self.cfg = cfg or LoopConfig()
        self.period_ns = round(1e9 / rate_hz)
        ratio = spec.stream_rate_hz / rate_hz
        if ratio < 1 or abs(ratio - round(ratio)) > 1e-9:
            raise ConfigMismatchError(
                f"control rate {rate_hz:g} Hz must divide the device's stream rate {spec.stream_rate_hz} Hz "
                "(one cycle per whole number of SENSOR frames)"
            )
        if not failsafe_window_ok(1.0 / rate_hz, spec.watchdog_ms / 1000.0):
            raise ConfigMismatchError(
                f"at {rate_hz:g} Hz the host would notice a sensor stall after {STALL_PERIODS * 1e3 / rate_hz:.0f} ms, later than "
                f"the device's {spec.watchdog_ms} ms watchdog; run faster or raise the device's watchdog_ms"
            )
        self.frames_per_cycle = round(ratio)
        self.limits = list(limits)  # one (lo, hi) per actuator the device described
        self.max_step = self.cfg.slew_v_per_s / rate_hz
        self.sensor_timeout_ns = int(self.cfg.sensor_timeout_s * 1e9)
        # (index, name, limit, rad per count) of each encoder the device declares bounded; the host's own limit
        # applies (it may be set inside the device's, or past it to test a run to the end stop); a wheel is free
        self.bounded = [
            (i, e.name, self.cfg.arm_limit_rad, 2.0 * math.pi / e.cpr) for i, e in enumerate(spec.encoders) if e.bounded
        ]
        self.windows = SensorWindows.for_device(spec, policy.uses_image)
        self.stats = LoopStats()
        self.previous: tuple[float, ...] = tuple(0.0 for _ in self.limits)  # last command sent
        self.fresh = 0  # fresh SENSOR frames since the last cycle
        self.last_fresh_ns = 0  # arrival of the newest fresh SENSOR frame
        self.safe_due_ns = 0  # without a fresh frame by then, the next cycle sends the safe command
        self.last_sensor_seq = -1
        self.last_image_seq = -1
        self.device_tripped = False
        self.in_failsafe = False
        self.started = False  # a whole window has been seen: later safe cycles are failsafe, not warm-up
        self.status_timeout_ns = int(self.cfg.status_timeout_s * 1e9)
        self.last_status_ns = 0  # arrival of the device's latest STATUS (its heartbeat)
        self.applied: int | None = None  # the device's applied-command counter by its latest STATUS
        self.applied_since_ns = 0  # arrival of the first STATUS that showed that count
        self.applied_frozen_ns = 0  # > 0: STATUS showed the count frozen this long while we sent commands
        self.tripped_since_ns = 0  # arrival of the STATUS that reported the watchdog tripped
        self.progress: Callable[[LoopStats, float, float], None] | None = None  # (stats, elapsed, duration), 1/s
        self.reopen: Callable[[], Transport] | None = None  # opens the port again after it vanished
        self.spec: DeviceSpec = spec
        self.live: LiveView | None = None  # hw run --live: the loop's data to Foxglove (hardware/live.py)
        self._live_latencies = 0  # latencies already summarized on /health
        self.camera: HostCamera | None = None  # hw run --camera: the image from the host, not the device
        self.camera_seq = 0
        self.last_camera_ns = 0  # when the host camera's newest frame was taken in
        self.device_images_ignored = 0  # IMAGE frames the device sent while the host camera was the model's

    # ------------------------------------------------------------------ frames

    def _absorb(self, frames: list[Received]) -> None:
        for rx in frames:
            msg = rx.message
            if isinstance(msg, SensorBatch):
                if self.live is not None:
                    self.live.sensor(msg)
                if self.windows.add_sensor(msg, rx.frame.timestamp_us):
                    self.fresh += 1
                    self.stats.max_stale_ms = max(self.stats.max_stale_ms, (rx.t_ns - self.last_fresh_ns) / 1e6)
                    self.last_fresh_ns, self.last_sensor_seq = rx.t_ns, rx.frame.seq
                    self.safe_due_ns = stale_deadline_ns(rx.t_ns, self.period_ns, in_failsafe=False)
            elif isinstance(msg, ImageFrame):
                if self.camera is not None:  # the host's camera is the model's: the device's is not
                    self.device_images_ignored += 1
                    continue
                if self.live is not None:
                    self.live.image(msg)
                self.windows.add_image(msg)
                self.last_image_seq = rx.frame.seq
            elif isinstance(msg, Status):
                self._status(rx, msg)

    def _status(self, rx: Received, msg: Status) -> None:
        self.last_status_ns = rx.t_ns
        self._track_applied(rx.t_ns, msg.commands_applied)
        dev = self.stats.device
        streaming = bool(msg.flags & StatusFlags.STREAMING)
        if streaming and dev.first is None:
            dev.first = msg
        if dev.first is not None:
            dev.last = msg
            dev.stopped_ack = dev.stopped_ack or not streaming
        tripped = bool(msg.flags & StatusFlags.WATCHDOG_TRIPPED)
        if tripped and not self.device_tripped:  # count rising edges: STATUS repeats
            self.stats.watchdog_trips += 1
            self._event(rx.t_ns, "device_watchdog", "device reports its command watchdog tripped")
            self.tripped_since_ns = rx.t_ns
        self.device_tripped = tripped

    def _track_applied(self, t_ns: int, applied: int) -> None:
        """Note when the device's applied-command counter last moved, and whether it is frozen."""
        if applied != self.applied:
            self.applied, self.applied_since_ns, self.applied_frozen_ns = applied, t_ns, 0
        elif self._unheard_since(self.applied_since_ns, t_ns):
            self.applied_frozen_ns = t_ns - self.applied_since_ns

    def _unheard_since(self, since_ns: int, now_ns: int) -> bool:
        """Commands went out from ``since_ns`` on and the device has shown none of them by ``now_ns``.

        True after ``status_timeout_s`` if a command was written no later than half of it
        before ``now_ns``: that one had over a second to reach the device and show in its
        STATUS, so neither a command in flight nor a STATUS in flight can make it true, nor
        can a slow STATUS rate (it needs two STATUS frames, or a tripped watchdog, that far
        apart). A host that sent nothing meanwhile (a pause) proves nothing either way.
        """
        if now_ns - since_ns < self.status_timeout_ns:
            return False
        sent = self.stats.command_ns  # written in order, on the same clock as arrivals
        i = bisect.bisect_left(sent, since_ns)
        return i < len(sent) and sent[i] <= now_ns - self.status_timeout_ns // 2

    def _poll(self) -> None:
        self._absorb(self.client.poll())
        if self.camera is not None:
            self._take_camera()

    def _take_camera(self) -> None:
        """The host camera's new frames into the window, logged as IMAGE frame bodies when taken in (replay's order)."""
        assert self.camera is not None
        for t_read, frame in self.camera.take():
            self.windows.add_image(frame)
            now = self.client.now_ns()
            self.last_camera_ns = now
            if self.recorder is not None:
                body = frame_body(make_frame(MsgType.IMAGE, self.camera_seq, t_read // 1000, frame))
                self.recorder.write_frame(TOPIC_HOST_CAMERA, body, log_time_ns=now, seq=self.camera_seq)
            self.camera_seq = (self.camera_seq + 1) & 0xFFFF
            if self.live is not None:
                self.live.image(frame)

    def _wait(self, timeout_s: float) -> None:
        """Hand the log what this cycle wrote, then wait for the port: the hand-over is off the latency path."""
        self._deliver_log()
        self.client.transport.wait_readable(timeout_s)

    def _deliver_log(self) -> None:
        if self.recorder is not None:
            self.recorder.deliver()

    # ------------------------------------------------------------------ commands

    def _send(self, volts: Sequence[float]) -> int:
        self.client.send_command(volts)
        if self.stats.first_command_unix_s is None:
            self.stats.first_command_unix_s = time.time()  # start-up time, measured by benchmarks/bench_loop.py
        self.stats.commands_sent_streaming += 1
        self.previous = tuple(volts)
        t = self.client.now_ns()
        self.stats.command_ns.append(t)
        return t

    def _safe(self, cycle: int, why: str) -> int:
        """One safe cycle: 0 V on every actuator (never slew-limited), logged as such; when it was written."""
        volts = tuple(0.0 for _ in self.limits)
        t = self._send(volts)
        self.stats.safe_commands += 1
        if self.started:
            self.stats.failsafe_cycles += 1
        else:
            self.stats.warmup_cycles += 1
        self._log_command(cycle, t, volts, None, why)
        if self.live is not None:
            self.live.command(volts, None, why)
        return t

    def _act(self, cycle: int) -> None:
        """One model cycle on the current (whole, fresh) window."""
        t_start = time.perf_counter_ns()
        requested, estimates = self.policy.run(self.windows.inputs())
        clamped_v, clamped = clamp_commands(requested.tolist(), self.limits)
        sent, slewed = slew_limit(clamped_v, self.previous, self.max_step)
        names = self.policy.estimate_names or [f"e{i}" for i in range(len(estimates))]
        named = dict(zip(names, estimates.tolist(), strict=False))
        newest = self.windows.encoders[-1].tolist() if self.bounded else []
        angles = [(name, newest[i] * per_count, limit) for i, name, limit, per_count in self.bounded]
        fall = self.cfg.fall_stop_deg  # 0: off, and the tilt is not needed
        tilt = tilt_deg_from_estimates(named, self.policy.tilt_estimate) if fall > 0 else None
        reason = state_stop_reason(angles, tilt, fall)
        if reason is not None:
            self._safe(cycle, "safety_stop")
            self.stats.stop_reason = reason
            self._event(self.client.now_ns(), "safety_stop", f"{reason}; sent 0 V and stopped")
            raise SafetyStopError(f"safety stop: {reason}. Sent 0 V and STOP.")
        t_sent = self._send(sent)
        self.stats.compute_ns.append(time.perf_counter_ns() - t_start)
        self.stats.latency_ns.append(t_sent - self.last_fresh_ns)
        self.stats.commands += 1
        self.stats.clamped += int(clamped)
        self.stats.slewed += int(slewed)
        self._log_command(cycle, t_sent, sent, requested.tolist(), None, clamped or slewed)
        if self.live is not None:
            self.live.command(sent, requested.tolist(), None)
            self.live.estimates(named)
        if self.recorder is not None:
            record: dict[str, object] = {"cycle": cycle, "estimates": named}
            state = self.policy.state_values
            if state:  # a stateful model: the state it carries into the next cycle, so replay can check it
                record["state"] = [{"name": name, "values": values} for name, values in state.items()]
            self.recorder.write_json(TOPIC_ESTIMATE, record, log_time_ns=t_sent, seq=cycle)

    def _log_command(
        self, cycle: int, t: int, volts: Sequence[float], requested: list[float] | None, safe: str | None,
        limited: bool = False,
    ) -> None:  # fmt: skip
        if self.recorder is None:
            return
        self.recorder.write_json(
            TOPIC_COMMAND,
            {"cycle": cycle, "t_host_ns": t, "volts": list(volts),
             "requested_volts": requested if requested is not None else list(volts), "clamped": limited,
             "safe": safe or "", "sensor_seq": self.last_sensor_seq, "image_seq": self.last_image_seq},
            log_time_ns=t, seq=cycle,
        )  # fmt: skip

    def use_camera(self, camera: HostCamera, stall_s: float) -> None:
        """Take the model's image from ``camera`` (started with streaming); ``stall_s`` without a frame is a stall."""
        self.camera, self.camera_stall_ns = camera, int(stall_s * 1e9)
        camera.now_ns = self.client.now_ns

    def _camera_stalled(self, now: int) -> bool:
        if self.camera is None or not self.started:  # the first frames come with the first window
            return False
        return now - self.last_camera_ns > self.camera_stall_ns

    def _camera_failsafe(self, cycle: int, now: int) -> None:
        """The host camera stopped: the safe command, as for a sensor stall; stop after the sensor timeout."""
        assert self.camera is not None
        stale = now - self.last_camera_ns
        if stale > self.sensor_timeout_ns:
            self._safe(cycle, "camera_timeout")
            self.stats.stop_reason = f"no frame from the camera {self.camera.source} for {stale / 1e9:.2f} s"
            self._event(now, "camera_timeout", f"{self.stats.stop_reason}; sent 0 V and stopped")
            raise SensorTimeoutError(
                f"no frame from the camera {self.camera.source} for {stale / 1e9:.2f} s: sent 0 V and stopped. "
                "Check the camera's cable and that nothing else holds it."
            )
        if not self.in_failsafe:
            self.in_failsafe = True
            self.stats.failsafe_events += 1
            self._event(now, "failsafe", f"no camera frame for {stale / 1e6:.1f} ms: safe command")
        self._safe(cycle, "camera_stall")

    def _live_health(self, elapsed_ns: int) -> None:
        assert self.live is not None
        s = self.stats
        since = self._live_latencies
        self._live_latencies = len(s.latency_ns)
        self.live.health(
            {"elapsed_s": elapsed_ns / 1e9, "cycles": s.cycles, "commands": s.commands, "safe_commands": s.safe_commands,
             "missed": s.missed, "failsafe_events": s.failsafe_events, "frames_lost": self.client.stats.frames_lost,
             "device_watchdog_trips": s.watchdog_trips,
             "device_commands_applied": -1 if self.applied is None else self.applied},
            s.latency_ns[since:],
        )  # fmt: skip

    def _event(self, t_ns: int, kind: str, message: str) -> None:
        if self.recorder is not None:
            self.recorder.write_json(TOPIC_EVENT, {"kind": kind, "message": message}, log_time_ns=t_ns)

    # ------------------------------------------------------------------ one cycle

    def _check_heartbeat(self, cycle: int, now: int) -> None:
        """End the run (0 V, STOP, exit 3) when the device's STATUS says our commands no longer reach it."""
        silent = now - self.last_status_ns
        if silent > self.status_timeout_ns:
            self.stats.status_timeouts += 1
            why = f"no STATUS from the device for {silent / 1e9:.1f} s (its heartbeat)"
        elif self.applied_frozen_ns:
            why = (
                f"the device applied none of the commands sent for {self.applied_frozen_ns / 1e9:.1f} s "
                f"(its STATUS counter stayed at {self.applied})"
            )
        elif self.device_tripped and self._unheard_since(self.tripped_since_ns, now):
            why = f"the device's watchdog has stayed tripped for {(now - self.tripped_since_ns) / 1e9:.1f} s"
        else:
            return
        self._safe(cycle, "link_lost")
        self.stats.stop_reason = why
        self._event(now, "link_lost", f"{why} while commands were sent; sent 0 V and stopped")
        raise CommandPathLostError(
            f"{why}: the command path to {self.client.transport.name} is lost. Sent 0 V and STOP. "
            "Check the cable (both directions) and the device."
        )

    def _cycle(self, cycle: int, now: int) -> bool:
        """Act if a cycle is due at ``now``; True if a command went out."""
        if self.fresh >= self.frames_per_cycle:
            due = self.fresh // self.frames_per_cycle
            self.fresh %= self.frames_per_cycle
            if self.started:
                self.stats.missed += due - 1  # acted once on the newest window, never catching up
            if self.windows.ready and self._camera_stalled(now):
                self._camera_failsafe(cycle, now)
            elif self.windows.ready:
                if self.in_failsafe:
                    self.in_failsafe = False
                    self._event(now, "failsafe_end", "a whole window of fresh sensor samples again: model resumed")
                self.started = True
                self._act(cycle)
            else:
                self._safe(cycle, "window_filling")
            return True
        if now < self.safe_due_ns:
            return False
        stale = now - self.last_fresh_ns
        if stale > self.sensor_timeout_ns:
            self._safe(cycle, "sensor_timeout")
            gap = stale / 1e9
            self.stats.stop_reason = f"no sensor frame for {gap:.2f} s"
            self._event(now, "sensor_timeout", f"no sensor frame for {gap:.3f} s; sent 0 V and stopped")
            raise SensorTimeoutError(
                f"no sensor frame from {self.client.transport.name} for {gap:.2f} s: sent 0 V and stopped. "
                "Check the cable and the device's power."
            )
        start = not self.in_failsafe and self.started
        if start:
            self.in_failsafe = True
            self.stats.failsafe_events += 1
            self._event(now, "failsafe", f"no fresh sensor frame for {stale / 1e6:.1f} ms: safe command")
        t_sent = self._safe(cycle, "sensor_stall")
        if start:  # the failsafe's promise: within 2 control periods of the last fresh frame
            self.stats.failsafe_latency_ns.append(t_sent - self.last_fresh_ns)
        self.safe_due_ns = stale_deadline_ns(now, self.period_ns, in_failsafe=True)  # repeat every period
        return True

    # ------------------------------------------------------------------ runs

    def run(self, duration_s: float) -> LoopStats:
        """Run for ``duration_s`` seconds of wall time, paced by the sensor stream."""
        t0 = self.client.now_ns()
        self.last_fresh_ns = t0  # stall timing counts from the start of streaming
        self.safe_due_ns = stale_deadline_ns(t0, self.period_ns, in_failsafe=False)
        self.last_status_ns = max(self.last_status_ns, t0)
        end = t0 + int(duration_s * 1e9)
        cycle = 0
        next_progress = t0 + 1_000_000_000
        self.stats.scheduling, restore_priority = raise_priority()
        try:
            while True:
                now = self.client.now_ns()
                if now >= end:
                    break
                if now >= next_progress:
                    if self.progress is not None:
                        self.progress(self.stats, (now - t0) / 1e9, duration_s)
                    if self.live is not None:
                        self._live_health(now - t0)
                    next_progress += 1_000_000_000
                try:
                    self._check_heartbeat(cycle, now)
                    if self._cycle(cycle, now):
                        self.stats.cycles += 1
                        cycle += 1
                        continue
                    wake = min(end, self.safe_due_ns)
                    self._wait(max(0.0, (wake - self.client.now_ns()) / 1e9))
                    self._poll()
                except PortError as exc:
                    self._reconnect(exc, end)
        finally:
            restore_priority()
            self.stats.elapsed_s = (self.client.now_ns() - t0) / 1e9
        return self.stats

    def run_lockstep(self, duration_s: float) -> LoopStats:
        """Against a lockstep twin: ``duration_s`` of device time, as fast as the host answers.

        The twin advances one control period per command and only then sends the next
        frame, so every cycle waits for its frame; the failsafe still guards a twin that
        stops answering (its stall counts in wall time).
        """
        cycles = round(duration_s * 1e9 / self.period_ns)
        t0 = self.client.now_ns()
        self.last_fresh_ns = (
            t0  # only the sensor timeout acts without a fresh frame: a safe COMMAND would advance the twin
        )
        try:
            while self.stats.cycles < cycles:
                now = self.client.now_ns()
                # Wait for a whole window (the START burst's image may come in a later read):
                # any command, even a safe one, advances a lockstep twin.
                fresh = self.fresh >= self.frames_per_cycle and self.windows.ready
                if fresh or now - self.last_fresh_ns > self.sensor_timeout_ns:
                    self._cycle(self.stats.cycles, now)
                    self.stats.cycles += 1
                    continue
                self._wait(0.01)
                self._poll()
        finally:
            self.stats.elapsed_s = (self.client.now_ns() - t0) / 1e9
        return self.stats

    def _reconnect(self, lost: PortError, end_ns: int) -> None:
        """The port vanished: retry with backoff, handshake again, check it is the same device, restart streaming.

        Nothing can be sent meanwhile; the device's own watchdog zeroes its actuators.
        """
        t_lost = self.client.now_ns()
        self._event(t_lost, "port_lost", f"{lost}; reconnecting for up to {self.cfg.reconnect_s:g} s")
        if self.reopen is None or self.cfg.reconnect_s <= 0:
            raise LinkLostError(f"{lost} (reconnecting is off: loop.reconnect_s = 0)") from None
        deadline = min(end_ns, t_lost + int(self.cfg.reconnect_s * 1e9))
        delay, tries = 0.1, 0
        while True:
            self.client.transport.close()
            tries += 1
            try:
                self.client.reattach(self.reopen())
                spec = self.client.connect(self.cfg.handshake_timeout_s)
                if self.camera is not None:  # the model's camera is the host's, whatever the device has
                    spec = self.client.spec = dataclasses.replace(spec, camera=self.spec.camera)
                problems = compare(self.spec, spec)
                if problems:
                    raise LinkLostError(f"a different device answered after reconnecting: {'; '.join(problems)}")
                self.client.start()
                break
            except (PortError, DeviceNotRespondingError):
                if self.client.now_ns() + delay * 1e9 > deadline:
                    raise LinkLostError(
                        f"{lost}; it did not come back within {(deadline - t_lost) / 1e9:.1f} s ({tries} tries). "
                        "Check the cable and the device's power."
                    ) from None
                self._deliver_log()
                time.sleep(delay)
                delay = min(2 * delay, 2.0)
        now = self.client.now_ns()
        self.stats.reconnects += 1
        self.windows = self.windows.restarted()  # the old window ends before the outage
        self.fresh, self.in_failsafe = 0, False
        self.last_fresh_ns = self.last_status_ns = now
        self.applied, self.applied_frozen_ns, self.device_tripped = None, 0, False  # a new START: counted afresh
        self.safe_due_ns = stale_deadline_ns(now, self.period_ns, in_failsafe=False)
        self._event(now, "reconnected", f"port back after {(now - t_lost) / 1e9:.2f} s ({tries} tries); streaming")

    def finish(self, timeout_s: float = 0.3) -> None:
        """0 V and STOP, then collect the device's final STATUS (its counters) for the summary."""
        self.client.stop()
        self.stats.commands_sent_streaming += 1  # stop() sends a zero COMMAND before STOP
        deadline = time.monotonic() + timeout_s
        while not self.stats.device.stopped_ack and time.monotonic() < deadline:
            self._wait(0.02)
            try:
                self._poll()
            except Exception:  # the link is going away: what we have is the summary
                break
