"""``hw calibrate``: measure the camera's mount roll on a rig, store it, and take it out of the image angle.

A camera mounted with a roll r sees every pendulum angle as alpha + r, and one frame holds
nothing level to measure r against (docs/perception.md, "What limits a single frame"). A
pendulum hanging at rest does: gravity puts it at alpha = pi, so the model's image angle on
such frames, minus pi, is the roll (plus what the image head gets wrong about this rig at that
pose). ``hw calibrate`` streams from the device without commanding it (the watchdog holds
0 V), runs the model on every new camera frame, and :func:`judge` turns those angles into a
roll, or refuses: a pendulum that moves, one that does not hang, too few frames the camera
head calls ok.

The result is a small JSON file that belongs to the rig (:class:`Calibration`). ``hw run
--calibration FILE`` wraps the model in :class:`CalibratedPolicy`, which rotates the image
estimate (``img_sin``, ``img_cos``) by -roll: the logged image angle and the safety check's
use of it are then the calibrated ones, and the log's metadata carries the file so replay
applies the same rotation. The commands are untouched: the fused filter inside the model
estimates the roll itself, online, against the IMU.

numpy and the standard library only: this is the light runtime path.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.hardware.errors import HardwareError, ModelError
from sensorimotor.hardware.messages import ImageFrame, SensorBatch
from sensorimotor.hardware.model import OnnxPolicy, Policy
from sensorimotor.hardware.spec import DeviceSpec, SpecError, compare
from sensorimotor.hardware.windows import SensorWindows

FORMAT = "sensorimotor.calibration.v1"
HANGING = math.pi  # alpha of the pendulum hanging at rest (upright is 0)
IMAGE_ESTIMATES = ("img_sin", "img_cos", "camera_ok")
MIN_FRAMES = 20  # frames the camera head calls ok, at least (a median of fewer is one bad frame away from wrong)
MAX_SPREAD_DEG = 1.0  # robust spread of the image angle; a still pendulum gives ~0.1 deg (frame noise)
MAX_OFFSET_DEG = 10.0  # a roll beyond this is a pendulum that is not hanging, or a camera that needs remounting


class CalibrationError(HardwareError):
    """The frames cannot give a roll (moving, not hanging, camera not ok), or a calibration file is unusable."""


def wrap(x: np.ndarray | float) -> np.ndarray:
    """Angles wrapped to [-pi, pi)."""
    return np.mod(np.asarray(x, np.float64) + math.pi, 2 * math.pi) - math.pi


def mount_roll(image_angles: np.ndarray, camera_ok: np.ndarray, hanging: float = HANGING) -> np.ndarray:
    """The roll (rad) per rig from its frames at rest: image_angles, camera_ok (..., K) -> (...).

    ``camera_ok`` is the camera head's probability that a frame is fine; frames at or below
    0.5 are left out, and the median of the rest keeps a misread frame from moving the
    estimate. A rig with no usable frame gets NaN (calibrate again, with the view clear).
    """
    offset = wrap(np.asarray(image_angles, np.float64) - hanging)
    masked = np.where(np.asarray(camera_ok) > 0.5, offset, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": that rig's roll is NaN, as documented
        return np.asarray(np.nanmedian(masked, axis=-1))


def subtract_roll(image_angles: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Image angles with the rig's roll taken out: (..., T) and (...) -> (..., T), wrapped."""
    return wrap(np.asarray(image_angles, np.float64) - np.asarray(roll, np.float64)[..., None])


def robust_spread(x: np.ndarray) -> float:
    """1.4826 x the median absolute deviation: the standard deviation for Gaussian data, blind to outliers."""
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if len(x) else float("nan")


@dataclass(frozen=True)
class Judgement:
    """What the frames say: the roll, or why there is none."""

    roll_deg: float
    spread_deg: float  # robust spread of the per-frame offsets
    frames: int  # camera frames the model saw
    ok_frames: int  # of which the camera head called ok

    def refusal(
        self, min_frames: int = MIN_FRAMES, max_spread_deg: float = MAX_SPREAD_DEG,
        max_offset_deg: float = MAX_OFFSET_DEG,
    ) -> str | None:  # fmt: skip
        """Why this is not a calibration (one sentence naming the fix), or None."""
        if self.ok_frames < max(min_frames, 1):  # no frame at all is never a calibration
            return (
                f"only {self.ok_frames} of {self.frames} camera frames were ok by the model's camera head "
                f"(at least {min_frames} needed): clear the view, check the lighting, or calibrate for longer (--duration)"
            )
        if self.spread_deg > max_spread_deg:
            return (
                f"the pendulum is moving: its image angle spreads {self.spread_deg:.2f} deg (at most "
                f"{max_spread_deg:g}); let it hang still and calibrate again"
            )
        if abs(self.roll_deg) > max_offset_deg:
            return (
                f"the pendulum does not look like it hangs: {self.roll_deg:+.1f} deg from hanging (at most "
                f"+-{max_offset_deg:g}); let it hang at rest, or remount the camera level, and calibrate again"
            )
        return None


def judge(image_angles: np.ndarray, camera_ok: np.ndarray, hanging: float = HANGING) -> Judgement:
    """The roll from the model's image angles (rad) on frames of a pendulum hanging at rest.

    Frames whose ``camera_ok`` is at or below 0.5 are left out; the median of the rest is the
    roll, so a misread frame does not move it. Whether it is a calibration is
    :meth:`Judgement.refusal`'s call.
    """
    angles, ok = np.asarray(image_angles, np.float64), np.asarray(camera_ok, np.float64) > 0.5
    offsets = wrap(angles[ok] - hanging)
    roll = float(np.degrees(mount_roll(angles, camera_ok, hanging)))
    return Judgement(roll, math.degrees(robust_spread(offsets)), len(angles), int(ok.sum()))


def rotate_image_estimate(estimates: np.ndarray, names: list[str], roll_rad: float) -> np.ndarray:
    """A copy of ``estimates`` with the (img_sin, img_cos) pair rotated by -roll_rad: the calibrated angle."""
    i, j = names.index("img_sin"), names.index("img_cos")
    out = np.array(estimates, copy=True)
    c, s = math.cos(roll_rad), math.sin(roll_rad)
    sin_a, cos_a = float(estimates[i]), float(estimates[j])
    out[i], out[j] = sin_a * c - cos_a * s, cos_a * c + sin_a * s  # sin(a - r), cos(a - r)
    return out


@dataclass(frozen=True)
class Calibration:
    """A rig's camera roll, as ``hw calibrate`` writes it (JSON) and ``hw run --calibration`` reads it."""

    roll_deg: float
    spread_deg: float
    frames: int
    ok_frames: int
    device: dict[str, Any]  # the DeviceSpec it was measured on (handshake)
    model: str  # the model whose image head measured it
    model_sha256: str
    port: str
    created_unix_s: float
    twin_roll_deg: float | None = None  # --twin only: the roll the twin's camera really has (its ground truth)
    format: str = FORMAT

    @property
    def roll_rad(self) -> float:
        return math.radians(self.roll_deg)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def load(cls, path: Path) -> Calibration:
        """Read a calibration file; CalibrationError naming the file and what is wrong with it."""
        try:
            raw = json.loads(Path(path).read_text())
        except OSError as exc:
            raise CalibrationError(
                f"cannot read calibration {path}: {exc.strerror}; make one with `hw calibrate`"
            ) from None
        except ValueError:
            raise CalibrationError(f"{path} is not JSON; make a calibration with `hw calibrate`") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
            raise CalibrationError(f"{path}: format {found!r}, expected {FORMAT!r}; make one with `hw calibrate`")
        try:
            cal = cls(**raw)
            DeviceSpec.from_dict(cal.device)
            if not math.isfinite(float(cal.roll_deg)):
                raise ValueError("roll_deg is not finite")
        except (TypeError, ValueError, SpecError) as exc:
            raise CalibrationError(
                f"{path}: malformed calibration ({exc}); make it again with `hw calibrate`"
            ) from None
        return cal

    def check_device(self, device: DeviceSpec, source: str) -> None:
        """CalibrationError naming every field in which ``device`` is not the device this was measured on."""
        problems = compare(DeviceSpec.from_dict(self.device), device, who="calibration")
        if problems:
            raise CalibrationError(
                f"calibration {source} was measured on another device than '{device.name}': " + "; ".join(problems)
                + ". Calibrate this device with `hw calibrate`."
            )  # fmt: skip

    def model_warnings(self, model: Path, source: Path) -> list[str]:
        """A warning when another model measured it: the roll is the camera's, the head's bias at rest is not."""
        if self.model_sha256 == file_sha256(model):
            return []
        return [
            f"calibration {source} was measured with {self.model}, not {model}: each model's image head adds its "
            "own bias at the hanging pose; calibrate again with this model for the best image angle"
        ]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class CalibratedPolicy:
    """A policy whose image estimate has the rig's roll taken out; commands and state are the wrapped policy's."""

    def __init__(self, policy: Policy, calibration: Calibration, source: str = "") -> None:
        missing = [n for n in ("img_sin", "img_cos") if n not in policy.estimate_names]
        if missing:
            raise ModelError(
                f"the model has no image estimate ({', '.join(missing)}): calibration {source} has nothing to act on"
            )
        self.policy, self.calibration, self.source = policy, calibration, source
        self.spec, self.estimate_names = policy.spec, policy.estimate_names
        self.tilt_estimate = policy.tilt_estimate

    @property
    def uses_image(self) -> bool:
        return self.policy.uses_image

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(getattr(self.policy, "state_names", ()))

    @property
    def state_values(self) -> dict[str, list[float]]:
        return self.policy.state_values

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        volts, estimates = self.policy.run(inputs)
        return volts, rotate_image_estimate(estimates, self.estimate_names, self.calibration.roll_rad)

    def check_device(self, device: DeviceSpec, control_rate_hz: float | None = None) -> None:
        self.policy.check_device(device, control_rate_hz)
        self.calibration.check_device(device, self.source)


def collect(client: Any, spec: DeviceSpec, policy: OnnxPolicy, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Stream for ``duration_s`` without commanding; the model's (image angle, camera_ok) on each new camera frame."""
    names = policy.estimate_names
    i_sin, i_cos, i_ok = (names.index(n) for n in IMAGE_ESTIMATES)
    windows = SensorWindows.for_device(spec, needs_image=True)
    angles: list[float] = []
    ok: list[float] = []
    client.start()
    try:
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            client.transport.wait_readable(0.05)
            for rx in client.poll():
                msg = rx.message
                if isinstance(msg, SensorBatch):
                    windows.add_sensor(msg, rx.frame.timestamp_us)
                elif isinstance(msg, ImageFrame) and windows.add_image(msg) and windows.ready:
                    _, est = policy.run(windows.inputs())  # only the image head's outputs are used
                    angles.append(math.atan2(float(est[i_sin]), float(est[i_cos])))
                    ok.append(float(est[i_ok]))
    finally:
        client.stop()
    return np.array(angles), np.array(ok)


def check_image_model(policy: OnnxPolicy) -> None:
    missing = [n for n in IMAGE_ESTIMATES if n not in policy.estimate_names]
    if missing or not policy.uses_image:
        raise ModelError(
            f"{policy.path} has no camera head ({', '.join(missing) or 'no image input'}): calibrate with a model "
            "that takes the camera (sim train's policy.onnx)"
        )
