"""``hw excite``: a safe excitation run whose log is for system identification.

The device is driven through the ordinary control loop (:class:`~sensorimotor.hardware.loop.ControlLoop`,
every safeguard of ``hw run``), with :class:`ExcitationPolicy` in the model's place: it
computes the volts from the time since its first cycle and the arm's encoder angle in its
input window. The log is an ordinary ``hw run --record`` log (raw frames, the volts
actually sent on ``/control/command``, ``/events``), plus an ``excite_phase`` event at the
start of each phase and the whole schedule as JSON in the metadata record
(``excite_schedule``), so ``sim identify`` can replay the commands through the simulator.

Phases (:class:`Schedule`):

1. ``rest``: 0 V. From the first :data:`CHECK_S` of IMU samples the pendulum must hang
   still (:func:`hanging_problem`: gyro RMS small, the accelerometer reading gravity along
   the pendulum towards its pivot); otherwise 0 V, STOP and exit 2
   (:class:`NotHangingError`). The arm's rest angle is the centre of what follows.
2. ``arm``: a log chirp (:data:`CHIRP_HZ`) plus a seeded pseudo-random binary sequence, peak
   ``amplitude_v``, faded in and out over :data:`TAPER_S`, plus a PD term on the encoder
   angle that holds the arm around its rest angle.
3. ``kick``: a voltage pulse and the opposite one (:data:`KICK_V`, :data:`KICK_PULSE_S` each),
   which swing the pendulum tens of degrees; cut short once the swing reaches
   :data:`KICK_TARGET_DEG`, so it never goes over the top, and a pulse ends once the arm is
   :data:`KICK_ARM_RAD` from its rest angle its way (a strong motor would carry it to the limit).
4. ``decay``: 0 V to the end: the pendulum swings down freely (its damping).

numpy and the standard library only: this is the light runtime path.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.hardware.errors import HardwareError, SafetyStopError
from sensorimotor.hardware.framing import FramingError, decode_body
from sensorimotor.hardware.log.mcaplog import (
    TOPIC_COMMAND,
    TOPIC_DEVICE,
    TOPIC_EVENT,
    TOPIC_RX,
    LogReader,
    LogWriter,
)
from sensorimotor.hardware.messages import MessageError, MessageReader, SensorBatch
from sensorimotor.hardware.spec import DeviceSpec, SpecError

G = 9.81
PHASES = ("rest", "arm", "kick", "decay")
EVENT_PHASE = "excite_phase"  # /events kind at the start of each phase
EVENT_REFUSED = "excite_refused"  # /events kind when the hanging check refuses
METADATA_KEY = "excite_schedule"  # the log's metadata record: the schedule as JSON

DEFAULT_DURATION_S = 40.0
MAX_DURATION_S = 60.0  # the longest excitation: the arm-phase PD holds drift, not forever
MIN_DURATION_S = 10.0  # shorter leaves too little arm excitation and decay to identify anything
REST_S = 1.5
CHECK_S = 0.5  # the hanging check reads the first this many seconds of IMU samples
ARM_FRACTION = 0.5  # of the duration
KICK_S = 0.8  # the kick phase: two pulses, then the swing builds to its peak
DEFAULT_AMPLITUDE_V = 1.0
MAX_AMPLITUDE_V = 3.0

CHIRP_HZ = (0.3, 6.0)  # log chirp from, to
CHIRP_SHARE = 0.6  # of the amplitude; the PRBS has the rest
PRBS_HOLD_S = 0.05  # the PRBS draws a new sign every this long (power up to ~1 / (2 hold) = 10 Hz)
TAPER_S = 0.5  # raised-cosine fade-in and fade-out of the arm excitation
KP_V_PER_RAD = 2.0  # the arm PD around its rest angle
KD_V_S_PER_RAD = 0.1
RATE_SAMPLES = 16  # encoder samples in the arm rate's least-squares slope

KICK_V = 2.0
KICK_PULSE_S = 0.25
KICK_TARGET_DEG = 60.0  # a swing this large ends the pulses early (the twin swings 36-46 deg without it)
# The arm this far from its rest angle ends the pulse driving it further: how far a pulse carries the arm
# depends on the motor, which is what is unknown (a zoo device with Rm 0.47x went 2.8 rad, past the limit).
KICK_ARM_RAD = 0.9

MAX_GYRO_RMS_RAD_S = 0.2  # hanging still: RMS of the gyro's magnitude over the check
MAX_TILT_DEG = 15.0  # hanging: the accelerometer's gravity this close to the pendulum's axis
ACCEL_G_TOLERANCE = 0.25  # |accel| within this fraction of g
ARM_ROOM_RAD = 1.4  # the arm must rest this far inside loop.arm_limit_rad (the twin: excursions up to ~1.1 rad)
MIN_ARM_RANGE_RAD = 0.2  # the log is usable when the arm spans more than this (sim identify asks as much)
# The gyro-integrated swing angle leaks back to hanging with this time constant: a 1.7 Hz swing keeps 99.8 % of
# its amplitude, and an error in the gyro's rest bias (a pendulum not quite still at rest) adds only bias x 2 s.
SWING_LEAK_S = 2.0


class ExciteError(HardwareError):
    """``hw excite`` cannot run as asked (duration, amplitude, output): exit 2 before anything moves."""


class NotHangingError(SafetyStopError):
    """The pendulum did not hang still during the rest phase: 0 V, STOP, exit 2."""

    exit_code = 2


# ---------------------------------------------------------------------------- schedule


@dataclass(frozen=True)
class Schedule:
    """When each phase runs and what drives it; stored in the log as JSON (``excite_schedule``)."""

    duration_s: float
    amplitude_v: float
    seed: int
    rest_s: float = REST_S
    check_s: float = CHECK_S
    arm_s: float = 0.0  # ARM_FRACTION of the duration (set by :meth:`build`)
    kick_s: float = KICK_S
    chirp_hz: tuple[float, float] = CHIRP_HZ
    chirp_share: float = CHIRP_SHARE
    prbs_hold_s: float = PRBS_HOLD_S
    taper_s: float = TAPER_S
    kp_v_per_rad: float = KP_V_PER_RAD
    kd_v_s_per_rad: float = KD_V_S_PER_RAD
    kick_v: float = KICK_V
    kick_pulse_s: float = KICK_PULSE_S
    kick_target_deg: float = KICK_TARGET_DEG
    kick_arm_rad: float = KICK_ARM_RAD

    @classmethod
    def build(cls, duration_s: float, amplitude_v: float = DEFAULT_AMPLITUDE_V, seed: int = 0) -> Schedule:
        """The schedule for a run of ``duration_s``; ExciteError (exit 2) for a duration or amplitude out of range."""
        if not math.isfinite(duration_s) or duration_s > MAX_DURATION_S:
            raise ExciteError(
                f"--duration {duration_s:g} s is longer than the {MAX_DURATION_S:g} s an excitation may last; "
                f"give at most {MAX_DURATION_S:g}"
            )
        if duration_s < MIN_DURATION_S:
            raise ExciteError(
                f"--duration {duration_s:g} s is too short to identify anything; give at least {MIN_DURATION_S:g} s "
                f"(default {DEFAULT_DURATION_S:g})"
            )
        if not (math.isfinite(amplitude_v) and 0 < amplitude_v <= MAX_AMPLITUDE_V):
            raise ExciteError(
                f"--amplitude {amplitude_v:g} V is out of range; give more than 0 and at most {MAX_AMPLITUDE_V:g} V "
                f"(default {DEFAULT_AMPLITUDE_V:g})"
            )
        return cls(duration_s, amplitude_v, seed, arm_s=ARM_FRACTION * duration_s)

    def phases(self) -> list[tuple[str, float, float]]:
        """(name, start_s, end_s) of each phase, in order; times from the first cycle."""
        edges = np.cumsum([0.0, self.rest_s, self.arm_s, self.kick_s])
        return [(n, float(a), float(b)) for n, a, b in zip(PHASES, edges, [*edges[1:], self.duration_s], strict=True)]

    def phase_at(self, t: float) -> int:
        """Index in :data:`PHASES` of the phase running at ``t`` s (the last one past the end)."""
        for i, (_, _, end) in enumerate(self.phases()):
            if t < end:
                return i
        return len(PHASES) - 1

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["chirp_hz"] = list(self.chirp_hz)
        out["phases"] = [{"name": n, "start_s": a, "end_s": b} for n, a, b in self.phases()]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    # ------------------------------------------------------------------ signals

    def prbs(self) -> np.ndarray:
        """The seeded +-1 sequence, one value per ``prbs_hold_s`` of the arm phase."""
        n = math.ceil(self.arm_s / self.prbs_hold_s) + 1
        return np.where(np.random.default_rng(self.seed).random(n) < 0.5, -1.0, 1.0)

    def arm_signal(self, t: float, prbs: np.ndarray) -> float:
        """The open-loop arm excitation (V) ``t`` s into the arm phase: chirp + PRBS, tapered."""
        if not 0.0 <= t < self.arm_s:
            return 0.0
        f0, f1 = self.chirp_hz
        k = math.log(f1 / f0)
        phase = 2 * math.pi * f0 * self.arm_s / k * (math.exp(k * t / self.arm_s) - 1.0)
        prbs_v = float(prbs[min(int(t / self.prbs_hold_s), len(prbs) - 1)])
        signal = self.chirp_share * math.sin(phase) + (1.0 - self.chirp_share) * prbs_v
        edge = min(t, self.arm_s - t)
        taper = 1.0 if edge >= self.taper_s else 0.5 - 0.5 * math.cos(math.pi * edge / self.taper_s)
        return self.amplitude_v * taper * signal


# ---------------------------------------------------------------------------- the hanging check


def hanging_problem(gyro: np.ndarray, accel: np.ndarray) -> str | None:
    """Why IMU samples (N, 3) each, rad/s and m/s^2, are not a pendulum hanging still; None if they are.

    The IMU sits on the pendulum, z along it from the pivot to the tip (sim/sensors.py): at
    rest it reads gravity's reaction, +g upwards, so hanging accel = (0, 0, -g), upright
    (0, 0, +g); the tilt from hanging is atan2(-accel_y, -accel_z).
    """
    if len(gyro) == 0:
        return "no IMU sample arrived during the rest phase"
    gyro_rms = float(np.sqrt(np.mean(np.sum(np.square(gyro), axis=1))))
    mean = np.mean(accel, axis=0)
    magnitude = float(np.linalg.norm(mean))
    tilt = abs(math.degrees(math.atan2(-float(mean[1]), -float(mean[2]))))
    reading = (
        f"gyro {gyro_rms:.2f} rad/s RMS, {tilt:.0f} deg from hanging by the accelerometer, "
        f"|accel| {magnitude:.1f} m/s^2"
    )
    if not (gyro_rms <= MAX_GYRO_RMS_RAD_S and tilt <= MAX_TILT_DEG and abs(magnitude / G - 1) <= ACCEL_G_TOLERANCE):
        return (
            f"the pendulum is not hanging still at the start ({reading}; allowed at most {MAX_GYRO_RMS_RAD_S:g} "
            f"rad/s and {MAX_TILT_DEG:g} deg): let it hang at rest and run hw excite again"
        )
    return None


# ---------------------------------------------------------------------------- the policy


@dataclass
class _Swing:
    """The pendulum's swing from hanging (rad), integrated from gyro x minus its rest bias, leaking to 0."""

    dt: float
    bias: float = 0.0
    angle: float = 0.0

    def add(self, gyro_x: np.ndarray) -> float:
        """Integrate new gyro x samples; the largest |angle| among them."""
        leak = math.exp(-self.dt / SWING_LEAK_S)
        peak = 0.0
        for w in gyro_x:  # alpha grows by a negative turn about body x (sim/sensors.py)
            self.angle = leak * self.angle - (float(w) - self.bias) * self.dt
            peak = max(peak, abs(self.angle))
        return peak


class ExcitationPolicy:
    """The excitation in the model's place: volts from the time since the first cycle and the arm's angle.

    Satisfies :class:`~sensorimotor.hardware.model.LoopPolicy`. ``clock`` (ns) defaults to
    counting cycles (one control period each); ``hw excite`` gives it the device client's
    clock, so the schedule keeps to wall time like the loop's duration. ``on_event(kind,
    message, extra)`` receives the phase starts and the refusal (``hw excite`` logs them
    on ``/events``).
    """

    def __init__(
        self, schedule: Schedule, rate_hz: float, arm_limit_rad: float,
        clock: Callable[[], int] | None = None,
        on_event: Callable[[str, str, dict[str, Any]], None] | None = None,
    ) -> None:  # fmt: skip
        self.schedule, self.rate_hz, self.arm_limit_rad = schedule, float(rate_hz), float(arm_limit_rad)
        self.clock, self.on_event = clock, on_event
        self.estimate_names = ["phase", "t_s", "excitation_v", "centring_v", "swing_deg"]
        self.tilt_estimate: str | None = None  # no fall stop on a recording or an excitation
        self.uses_image = False  # the loop needs no camera frame to start
        self.spec: DeviceSpec | None = None  # the device, from check_device
        self._prbs = schedule.prbs()
        self._starts = [start for _, start, _ in schedule.phases()]
        self._t0: int | None = None
        self._calls = 0
        self._phase = -1
        self._checked = False
        self._rest_gyro: list[np.ndarray] = []
        self._rest_accel: list[np.ndarray] = []
        self._rest_encoder: list[float] = []
        self._swing: _Swing | None = None
        self.centre_rad = 0.0  # the arm's rest angle: the PD's set point
        self._pulse_s: float | None = None  # how long the kick's first pulse lasted
        self.kick_cut = False  # the swing reached the target during the second pulse: it ended there
        self.max_swing_deg = [0.0] * len(PHASES)  # per phase, from the gyro (what the policy saw)

    @property
    def state_values(self) -> dict[str, list[float]]:
        return {}  # nothing a replay could recompute: the log holds the volts

    @property
    def phase(self) -> str:
        """The phase running now ("" before the first cycle)."""
        return PHASES[self._phase] if self._phase >= 0 else ""

    @property
    def elapsed_s(self) -> float:
        """Seconds since the first cycle (0 before it)."""
        return 0.0 if self._t0 is None else (self._now_ns() - self._t0) / 1e9

    def _now_ns(self) -> int:
        return round(self._calls * 1e9 / self.rate_hz) if self.clock is None else self.clock()

    def check_device(self, device: DeviceSpec, control_rate_hz: float | None = None) -> None:
        """ExciteError naming what this excitation cannot drive or read on ``device``."""
        names = [c.name for c in device.imu_channels]
        problems = []
        missing = [n for n in ("gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z") if n not in names]
        if missing:
            problems.append(f"its IMU has no {', '.join(missing)} channel (the hanging check and the swing read them)")
        if device.actuators[0].unit != "V":
            problems.append(f"its first actuator takes {device.actuators[0].unit!r}, not volts")
        if control_rate_hz is not None and abs(control_rate_hz - device.control_rate_hz) > 1e-6:
            problems.append(
                f"loop.rate_hz is {control_rate_hz:g} Hz, the device expects {device.control_rate_hz} Hz "
                "(identification replays the commands at the device's rate)"
            )
        if problems:
            raise ExciteError(f"cannot excite device '{device.name}': " + "; ".join(problems))
        self.spec = device
        self._channels = [names.index(n) for n in ("gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z")]
        self._new = max(1, round(device.imu_rate_hz / (control_rate_hz or device.control_rate_hz)))
        self._rad_per_count = 2 * math.pi / device.encoders[0].cpr  # the arm's
        self._imu_rate_hz = float(device.imu_rate_hz)
        self._swing = _Swing(1.0 / device.imu_rate_hz)

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(volts per actuator, estimates) for the newest window; NotHangingError when the rest check fails."""
        if self.spec is None or self._swing is None:
            raise RuntimeError("check_device() before run()")
        if self._t0 is None:
            self._t0 = self._now_ns()
        t = self.elapsed_s
        self._calls += 1
        imu = inputs["imu"][0][self._channels]  # (6, W), oldest first
        encoder = inputs["encoder"][0, 0].astype(np.float64) * self._rad_per_count  # the arm's, the first
        new = imu[:, -self._new :] if self._calls > 1 else imu  # the samples since the last cycle
        phase = self.schedule.phase_at(t)
        if phase != self._phase:
            self._enter(phase, t, float(encoder[-1]))
        swing = self._swing.add(new[0]) if self._checked else 0.0
        self.max_swing_deg[phase] = max(self.max_swing_deg[phase], math.degrees(swing))
        excitation = centring = 0.0
        name = PHASES[phase]
        if name == "rest":
            self._rest(t, new, encoder)
        elif name == "arm":
            excitation = self.schedule.arm_signal(t - self._starts[1], self._prbs)
            centring = self._centring(encoder)
        elif name == "kick":
            excitation = self._kick(t - self._starts[2], float(encoder[-1]) - self.centre_rad)
        volts = np.zeros(self.spec.n_actuators)
        volts[0] = excitation + centring
        estimates = np.array([phase, t, excitation, centring, math.degrees(self._swing.angle)], np.float32)
        return volts, estimates

    # ------------------------------------------------------------------ phases

    def _enter(self, phase: int, t: float, arm_rad: float) -> None:
        if phase > 0 and not self._checked:  # a stall swallowed the rest phase's check: do it now
            self._check(arm_rad)
        self._phase = phase
        name, start, end = self.schedule.phases()[phase]
        if self.on_event is not None:
            self.on_event(EVENT_PHASE, f"phase {name} from {t:.2f} s (planned {start:.2f}-{end:.2f} s)",
                          {"phase": name, "t_s": t, "planned_start_s": start, "planned_end_s": end})  # fmt: skip

    def _rest(self, t: float, new: np.ndarray, encoder: np.ndarray) -> None:
        if self._checked:
            return
        self._rest_gyro.append(new[:3].T)
        self._rest_accel.append(new[3:].T)
        self._rest_encoder.append(float(np.mean(encoder)))
        if t >= self.schedule.check_s:
            self._check(float(encoder[-1]))

    def _check(self, arm_rad: float) -> None:
        """The hanging check on the rest samples so far; NotHangingError (exit 2) if it fails."""
        self._checked = True
        gyro = np.concatenate(self._rest_gyro) if self._rest_gyro else np.zeros((0, 3))
        accel = np.concatenate(self._rest_accel) if self._rest_accel else np.zeros((0, 3))
        why = hanging_problem(gyro, accel)
        self.centre_rad = float(np.median(self._rest_encoder)) if self._rest_encoder else arm_rad
        room = self.arm_limit_rad - abs(self.centre_rad)
        if why is None and room < ARM_ROOM_RAD:
            why = (
                f"the arm rests at {self.centre_rad:+.2f} rad, only {room:.2f} rad inside its limit "
                f"+-{self.arm_limit_rad:g} rad (loop.arm_limit_rad; the excitation needs {ARM_ROOM_RAD:g}): "
                "turn it back towards the middle of its travel and run hw excite again"
            )
        if why is not None:
            if self.on_event is not None:
                self.on_event(EVENT_REFUSED, why, {})
            raise NotHangingError(why + ". Sent 0 V and STOP")
        assert self._swing is not None
        self._swing.bias = float(np.mean(gyro[:, 0]))

    def _centring(self, encoder: np.ndarray) -> float:
        """The PD term (V) that holds the arm around its rest angle."""
        k = min(RATE_SAMPLES, len(encoder))
        x = np.arange(k) - (k - 1) / 2
        rate = float(np.dot(x, encoder[-k:]) / np.dot(x, x)) * self._imu_rate_hz  # least squares, rad/s
        s = self.schedule
        return -s.kp_v_per_rad * (float(encoder[-1]) - self.centre_rad) - s.kd_v_s_per_rad * rate

    def _kick(self, t: float, offset: float) -> float:
        """The pulse, then the opposite one as long, so the arm ends near rest; shortened at the target swing.

        A swing that reaches ``kick_target_deg`` during the first pulse turns it into the
        opposite one at once (which brakes the arm); during the second, ends it. The arm
        ``offset`` rad from its rest angle does the same at ``kick_arm_rad`` in the pulse's
        direction.
        """
        s = self.schedule
        assert self._swing is not None
        reached = math.degrees(abs(self._swing.angle)) >= s.kick_target_deg
        towards_middle = -1.0 if self.centre_rad > 0 else 1.0  # the arm ends displaced the first pulse's way
        far = abs(offset) >= s.kick_arm_rad
        if self._pulse_s is None and (reached or t >= s.kick_pulse_s or (far and offset * towards_middle > 0)):
            self._pulse_s = t  # the first pulse ends here
        if self._pulse_s is None:
            return towards_middle * s.kick_v
        if (reached or (far and offset * towards_middle < 0)) and t > self._pulse_s:
            self.kick_cut = True
        if self.kick_cut or t >= 2 * self._pulse_s:
            return 0.0
        return -towards_middle * s.kick_v

    def attach(self, clock: Callable[[], int], recorder: LogWriter | None) -> None:
        """Keep to ``clock`` (the device client's, ns) and log the phase events on ``recorder``'s ``/events``."""
        self.clock = clock

        def event(kind: str, message: str, extra: dict[str, Any]) -> None:
            if recorder is not None:
                recorder.write_json(TOPIC_EVENT, {"kind": kind, "message": message, **extra}, log_time_ns=clock())

        self.on_event = event


# ---------------------------------------------------------------------------- the log afterwards


@dataclass
class PhaseReport:
    """One phase as the log shows it: when it ran, the commands sent, the arm's span, the pendulum's swing."""

    name: str
    start_s: float  # from the first phase's start (log time)
    duration_s: float
    commands: int = 0
    arm_min_rad: float = math.inf
    arm_max_rad: float = -math.inf
    swing_max_deg: float = 0.0  # the largest swing from hanging, integrated from the gyro

    @property
    def arm_range_rad(self) -> float:
        return max(0.0, self.arm_max_rad - self.arm_min_rad)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["arm_range_rad"] = self.arm_range_rad
        for key in ("arm_min_rad", "arm_max_rad"):
            out[key] = out[key] if math.isfinite(out[key]) else None
        return out


@dataclass
class LogReport:
    """What an excitation log holds, and whether identification can use it."""

    phases: list[PhaseReport] = field(default_factory=list)
    arm_range_rad: float = 0.0  # over the whole excitation
    swing_end_deg: float = 0.0  # the largest swing over the log's last second (the decay's end)
    problem: str | None = None  # why the log is not usable (None: it is)

    @property
    def usable(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        return {"phases": [p.to_dict() for p in self.phases], "arm_range_rad": self.arm_range_rad,
                "swing_end_deg": self.swing_end_deg, "usable": self.usable, "problem": self.problem}  # fmt: skip


def _samples(log_path: str | Path) -> Iterator[tuple[str, int, Any]]:
    """(kind, log_time_ns, payload) of what the analysis reads: device spec, phase starts, commands, SENSOR batches."""
    read = MessageReader()  # the handshake's DESCRIBE comes before any SENSOR frame
    for msg in LogReader(log_path):
        if msg.topic == TOPIC_RX:
            try:
                parsed = read(decode_body(msg.data))
            except (FramingError, MessageError):
                continue
            if isinstance(parsed, SensorBatch):
                yield "sensor", msg.log_time_ns, parsed
        elif msg.topic == TOPIC_COMMAND:
            yield "command", msg.log_time_ns, None
        elif msg.topic == TOPIC_EVENT:
            rec = msg.json()
            if rec.get("kind") == EVENT_PHASE and rec.get("phase") in PHASES:
                yield "phase", msg.log_time_ns, rec["phase"]
        elif msg.topic == TOPIC_DEVICE:
            try:
                yield "device", msg.log_time_ns, DeviceSpec.from_dict(msg.json()["spec"])
            except (KeyError, TypeError, ValueError, SpecError):
                continue


def analyse_log(log_path: str | Path) -> LogReport:
    """Per phase: its time, commands, the arm's span (encoder) and the pendulum's largest swing (gyro x).

    The swing is the gyro's x rate (the pendulum's swing axis) minus its mean over the rest
    phase, integrated, with a :data:`SWING_LEAK_S` leak towards hanging. Samples count in the
    phase during which their frame arrived. The log is not usable when the arm's encoder
    spans at most :data:`MIN_ARM_RANGE_RAD` over the excitation.
    """
    spec: DeviceSpec | None = None
    gyro_i = 0  # the gyro_x channel's index in a SENSOR sample
    starts: list[tuple[str, int]] = []
    command_ns: list[int] = []
    sensor_ns: list[int] = []
    gyro_x: list[np.ndarray] = []
    arm: list[np.ndarray] = []
    for kind, t, payload in _samples(log_path):
        if kind == "device":
            names = [c.name for c in payload.imu_channels]
            spec, gyro_i = (payload, names.index("gyro_x")) if "gyro_x" in names else (None, 0)
        elif kind == "phase":
            starts.append((payload, t))
        elif kind == "command":
            command_ns.append(t)
        elif kind == "sensor" and spec is not None and starts:
            sensor_ns.append(t)
            gyro_x.append(np.asarray(payload.imu, np.float64)[:, gyro_i])
            arm.append(np.asarray(payload.encoder[:, 0], np.float64) * (2 * math.pi / spec.encoders[0].cpr))
    report = LogReport()
    if spec is None or not starts:
        report.problem = "the log holds no excitation phase (the run stopped before its first cycle)"
        return report
    t0 = starts[0][1]
    end_ns = max([t0, *command_ns])
    bounds = [t for _, t in starts[1:]] + [end_ns]
    for (name, start), stop in zip(starts, bounds, strict=True):
        report.phases.append(PhaseReport(name, (start - t0) / 1e9, (stop - start) / 1e9))
    which = np.searchsorted(np.array([t for _, t in starts]), np.array(command_ns), side="right") - 1
    for k in which[which >= 0]:
        report.phases[k].commands += 1
    frame_phase = np.searchsorted(np.array([t for _, t in starts]), np.array(sensor_ns, np.int64), side="right") - 1
    rest = [g for g, k in zip(gyro_x, frame_phase, strict=True) if report.phases[k].name == "rest"]
    swing = _Swing(1.0 / spec.imu_rate_hz, bias=float(np.mean(np.concatenate(rest))) if rest else 0.0)
    last_second = end_ns - 1_000_000_000
    for g, a, k, t in zip(gyro_x, arm, frame_phase, sensor_ns, strict=True):
        phase = report.phases[k]
        phase.arm_min_rad, phase.arm_max_rad = min(phase.arm_min_rad, a.min()), max(phase.arm_max_rad, a.max())
        peak = math.degrees(swing.add(g))
        phase.swing_max_deg = max(phase.swing_max_deg, peak)
        if t >= last_second:
            report.swing_end_deg = max(report.swing_end_deg, peak)
    lo = min((p.arm_min_rad for p in report.phases), default=0.0)
    hi = max((p.arm_max_rad for p in report.phases), default=0.0)
    report.arm_range_rad = max(0.0, hi - lo)
    if report.arm_range_rad <= MIN_ARM_RANGE_RAD:
        report.problem = (
            f"the arm never moved during the excitation (range {report.arm_range_rad:.3f} rad): check the motor's "
            "power and wiring"
        )
    return report


def report_lines(report: LogReport) -> list[str]:
    """The per-phase table of the summary."""
    lines = ["  phase   from      for      commands  arm range  pendulum swing (gyro)"]
    for p in report.phases:
        lines.append(f"  {p.name:<6} {p.start_s:6.2f} s {p.duration_s:6.2f} s  {p.commands:8d}  "
                     f"{p.arm_range_rad:5.3f} rad  max {p.swing_max_deg:5.1f} deg")  # fmt: skip
    missing = [name for name in PHASES if name not in {p.name for p in report.phases}]
    if missing:
        lines.append(f"  not reached: {', '.join(missing)}")
    lines.append(f"  arm range over the excitation {report.arm_range_rad:.3f} rad; pendulum swing in the last second "
                 f"{report.swing_end_deg:.1f} deg")  # fmt: skip
    return lines


def twin_overrides(overrides: Sequence[str]) -> list[str]:
    """``--set`` items for a twin to excite: it starts hanging still (``task.swingup`` with ``hang_deg`` 0) unless set.

    The user's items come after, so ``--set task.name=balance`` (upright: the hanging check
    refuses it) or ``--set task.hang_deg=5`` still win. The twin plays one episode from START
    to STOP whatever ``task.episode_s`` says (that is the training episode's length).
    """
    return ["task.name=swingup", "task.hang_deg=0", *overrides]
