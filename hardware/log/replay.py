"""Replay a recorded log through a model: recompute every action from the logged sensor frames.

Messages are processed in file order: each logged received frame updates the same
:class:`SensorWindows` the loop used, and each logged command is recomputed from the
windows as they stood. Divergence = |recomputed - logged| for the model's requested
voltage (before the safety clamp) and for the voltage actually sent, first actuator.

A log whose writer died (no footer, or cut in the middle of a record), or a file cut anywhere,
down to its last byte, is replayed up to its last complete message; the result says so
(``truncated``, ``warning``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sensorimotor.hardware.calibration import rotate_image_estimate
from sensorimotor.hardware.framing import FramingError, decode_body
from sensorimotor.hardware.log.mcaplog import (
    TOPIC_COMMAND,
    TOPIC_DEVICE,
    TOPIC_ESTIMATE,
    TOPIC_HOST_CAMERA,
    TOPIC_META,
    TOPIC_RX,
    LogEnd,
    LogError,
    LogReader,
)
from sensorimotor.hardware.messages import ImageFrame, MessageError, MessageReader, SensorBatch
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.hardware.safety import clamp_commands, slew_limit
from sensorimotor.hardware.spec import DeviceSpec, SpecError
from sensorimotor.hardware.windows import SensorWindows


@dataclass
class ReplayResult:
    cycles: list[int] = field(default_factory=list)
    logged: list[float] = field(default_factory=list)  # requested volts in the log
    replayed: list[float] = field(default_factory=list)
    sent_logged: list[float] = field(default_factory=list)
    sent_replayed: list[float] = field(default_factory=list)
    estimates: list[np.ndarray] = field(default_factory=list)
    newest_imu: list[np.ndarray] = field(default_factory=list)  # (6,) the newest IMU sample at each command
    newest_encoder: list[float] = field(default_factory=list)  # counts, the newest at each command
    frames: int = 0
    bad_frames: int = 0
    state_checked: int = 0  # cycles whose logged model state was compared (stateful models only)
    state_divergence: float = 0.0  # max |recomputed - logged| over those states
    truncated: bool = False  # the log ends without its footer: the recording stopped abnormally
    warning: str | None = None  # for people, when something was lost (truncated)

    @property
    def max_divergence(self) -> float:
        if not self.logged:
            return 0.0
        a = np.abs(np.array(self.logged) - np.array(self.replayed))
        b = np.abs(np.array(self.sent_logged) - np.array(self.sent_replayed))
        return float(max(a.max(), b.max()))


def replay(log_path: str | Path, policy: OnnxPolicy) -> ReplayResult:
    """Recompute every logged command with ``policy``; see the module docstring.

    Windows and limits are sized from the device description the log recorded at the
    handshake; a model that does not fit that device is refused (ModelMismatchError).
    """
    windows = SensorWindows.for_device(policy.spec, policy.uses_image)
    read = MessageReader()  # the log holds the DESCRIBE (handshake) before any SENSOR frame
    policy.reset_state()  # the loop started its model from zeros too
    recomputed_state: dict[int, dict[str, list[float]]] = {}  # cycle -> state after the recomputed run
    limits: list[tuple[float, float]] = [(-np.inf, np.inf)] * policy.spec.n_actuators
    out = ReplayResult()
    previous: tuple[float, ...] = (0.0,) * policy.spec.n_actuators  # the command sent before this one
    slew_step = np.inf
    host_camera = False
    roll_rad = 0.0  # the camera roll `hw run --calibration` took out of the logged image estimate
    log = LogReader(log_path)
    for msg in log:
        if msg.topic == TOPIC_DEVICE:
            info = msg.json()
            spec, limits = _device(log_path, info)
            slew_step = float(info.get("slew_step_v", np.inf))
            previous = (0.0,) * spec.n_actuators
            policy.check_device(spec)
            windows = SensorWindows.for_device(spec, policy.uses_image)
            read = MessageReader(spec)
        elif msg.topic == TOPIC_META:
            host_camera = isinstance(msg.json().get("camera"), dict)  # hw run --camera: the device's images unused
            calibration = msg.json().get("calibration")
            roll_rad = math.radians(float(calibration["roll_deg"])) if isinstance(calibration, dict) else 0.0
        elif msg.topic == TOPIC_RX:
            out.frames += 1
            try:
                frame = decode_body(msg.data)
                parsed = read(frame)
            except (FramingError, MessageError):
                out.bad_frames += 1
                continue
            if isinstance(parsed, SensorBatch):
                windows.add_sensor(parsed, frame.timestamp_us)  # the loop's freshness rule, same frames
            elif isinstance(parsed, ImageFrame) and not host_camera:
                windows.add_image(parsed)
        elif msg.topic == TOPIC_HOST_CAMERA:  # taken into the loop's window when it was logged
            windows.add_image(ImageFrame.unpack(decode_body(msg.data).payload))
        elif msg.topic == TOPIC_COMMAND:
            rec = msg.json()
            if rec.get("safe"):  # a failsafe / warm-up command: no model output to recompute
                previous = tuple(rec["volts"])
                continue
            requested, estimates = policy.run(windows.inputs())
            sent, _ = slew_limit(clamp_commands(requested.tolist(), limits)[0], previous, slew_step)
            previous = sent
            out.cycles.append(int(rec["cycle"]))
            out.logged.append(float(rec["requested_volts"][0]))
            out.replayed.append(float(requested[0]))
            out.sent_logged.append(float(rec["volts"][0]))
            out.sent_replayed.append(sent[0])
            if roll_rad:
                estimates = rotate_image_estimate(estimates, policy.estimate_names, roll_rad)
            out.estimates.append(estimates)
            out.newest_imu.append(windows.imu[-1].copy())
            out.newest_encoder.append(float(windows.encoder[-1]))
            if policy.state_names:
                recomputed_state[int(rec["cycle"])] = policy.state_values
        elif msg.topic == TOPIC_ESTIMATE:
            rec = msg.json()
            mine = recomputed_state.pop(int(rec["cycle"]), None)
            if "state" in rec and mine is not None:
                out.state_checked += 1
                for item in rec["state"]:
                    name, values = item["name"], item["values"]
                    logged, again = np.asarray(values, np.float64), np.asarray(mine.get(name, []), np.float64)
                    same_shape = logged.shape == again.shape and logged.size > 0
                    diff = float(np.abs(logged - again).max()) if same_shape else np.inf
                    out.state_divergence = max(out.state_divergence, diff if np.isfinite(diff) else np.inf)
    assert log.end is not None  # set when the iteration above ran to the end
    if not out.cycles:
        ended = "" if log.end.complete else f"; {log.end.describe()}"
        raise LogError(f"{log_path} holds no commands to replay (was it recorded with `hw run --record`?){ended}")
    out.truncated = not log.end.complete
    out.warning = truncation_warning(log.end, len(out.cycles)) if out.truncated else None
    return out


def truncation_warning(end: LogEnd, commands: int) -> str:
    """What a replay of a truncated log covered and what it lost."""
    last = (end.last_log_time_ns or 0) / 1e9
    if not end.lost_messages:
        return f"{end.describe()}: replayed {commands} commands, every one the log holds (last message at t = {last:.2f} s)"
    return (
        f"{end.describe()}: replayed {commands} commands; the last complete message is at t = {last:.2f} s; "
        "everything after it is lost"
    )


def _device(log_path: str | Path, info: dict) -> tuple[DeviceSpec, list[tuple[float, float]]]:
    """The device description and command limits logged at the handshake."""
    try:
        spec = DeviceSpec.from_dict(info["spec"])
        limits = [(float(lo), float(hi)) for lo, hi in info["limits"]]
    except (KeyError, TypeError, ValueError, SpecError) as exc:
        raise LogError(
            f"{log_path}: its {TOPIC_DEVICE} record is not a device description this version reads ({exc}); "
            "record the log again with this version's `hw run --record`"
        ) from None
    return spec, limits


def plot_replay(result: ReplayResult, names: list[str], path: Path, rate_hz: float, cpr: int | None = None) -> None:
    """Sensors, perception estimates and commands over time, and the replay's divergence (one PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.array(result.cycles) / rate_hz
    fig, axes = plt.subplots(5, 1, figsize=(10, 12), sharex=True)
    imu = np.array(result.newest_imu).reshape(-1, 6)
    for ch, label in ((0, "gyro x (rad/s)"), (1, "gyro y"), (2, "gyro z")):
        axes[0].plot(t, imu[:, ch], label=label, lw=0.8)
    axes[0].set(ylabel="rad/s", title="IMU (newest sample at each command)")
    for ch, label in ((3, "accel x (m/s^2)"), (4, "accel y"), (5, "accel z")):
        axes[1].plot(t, imu[:, ch], label=label, lw=0.8)
    if cpr:
        arm = axes[1].twinx()
        arm.plot(t, np.array(result.newest_encoder) * 2 * np.pi / cpr, "k", lw=1.2, label="arm (rad)")
        arm.set(ylabel="arm angle (rad)")
        arm.legend(loc="lower right")
    axes[1].set(ylabel="m/s^2")
    est = np.array(result.estimates)
    for i, name in enumerate(names[: est.shape[1]] if est.size else []):
        if name in ("imu_sin", "img_sin", "arm_angle", "camera_ok"):
            axes[2].plot(t, est[:, i], label=name)
    axes[2].set(ylabel="estimate", title="perception outputs")
    axes[3].plot(t, result.logged, label="logged", lw=2)
    axes[3].plot(t, result.replayed, "--", label="replayed", lw=1)
    axes[3].plot(t, result.sent_logged, ":", label="sent (after limits)", lw=1)
    axes[3].set(ylabel="motor command (V)", title="commands: logged vs recomputed")
    axes[4].plot(t, np.abs(np.array(result.logged) - np.array(result.replayed)))
    axes[4].set(xlabel="time (s)", ylabel="|difference| (V)")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
