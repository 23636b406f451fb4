"""The camera-roll calibration's pure parts: the roll from frames at rest, the refusals, the rotation, the file."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sensorimotor.hardware.calibration import (
    FORMAT,
    HANGING,
    Calibration,
    CalibrationError,
    judge,
    mount_roll,
    rotate_image_estimate,
    subtract_roll,
)
from sensorimotor.hardware.spec import DeviceSpec
from sensorimotor.sim.config import DeviceConfig


def test_mount_roll_takes_the_median_over_frames_the_camera_calls_ok() -> None:
    rng = np.random.default_rng(0)
    roll = np.array([0.03, -0.02, 0.0])
    angles = HANGING + roll[:, None] + rng.normal(0, 0.01, (3, 21))
    ok = np.ones((3, 21))
    angles[:, :4] = 1.0  # occluded frames, misread wildly ...
    ok[:, :4] = 0.1  # ... and called faulty by the camera head
    est = mount_roll(angles, ok)
    assert np.abs(est - roll).max() < 0.006
    # wrapped: a roll of -0.02 rad reads as pi - 0.02, but +0.03 as -pi + 0.03 - it must not average to ~pi
    assert np.abs(mount_roll(np.array([[math.pi + 0.03, -math.pi + 0.03]]), np.ones((1, 2))) - 0.03).max() < 1e-9
    assert np.isnan(mount_roll(angles[:1], np.zeros((1, 21))))[0]  # nothing usable: NaN, not a guess


def test_subtract_roll_wraps() -> None:
    out = subtract_roll(np.array([[math.pi - 0.01, 0.5]]), np.array([-0.02]))
    assert np.allclose(out, [[-math.pi + 0.01, 0.52]])


def _frames(roll_deg: float, n: int = 100, noise_deg: float = 0.1, swing_deg: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(1)
    t = np.arange(n) / 50.0
    wobble = swing_deg * np.sin(2 * math.pi * 1.4 * t)  # a pendulum swinging at its natural ~1.4 Hz
    return HANGING + np.radians(roll_deg + wobble + rng.normal(0, noise_deg, n))


def test_a_still_hanging_pendulum_gives_its_roll() -> None:
    verdict = judge(_frames(2.5), np.full(100, 0.9))
    assert verdict.refusal() is None
    assert verdict.roll_deg == pytest.approx(2.5, abs=0.05) and verdict.spread_deg < 0.2
    assert (verdict.frames, verdict.ok_frames) == (100, 100)


@pytest.mark.parametrize(
    ("angles", "ok", "expected"),
    [
        (_frames(1.0, swing_deg=3.0), np.ones(100), "the pendulum is moving"),
        (_frames(25.0), np.ones(100), "does not look like it hangs"),
        (_frames(1.0), np.r_[np.ones(10), np.zeros(90)], "only 10 of 100 camera frames were ok"),
        (np.zeros(0), np.zeros(0), "only 0 of 0 camera frames"),
    ],
    ids=["swinging", "not-hanging", "camera-not-ok", "no-frames"],
)  # fmt: skip
def test_frames_that_cannot_give_a_roll_are_refused_naming_why(angles, ok, expected: str) -> None:
    why = judge(angles, ok).refusal()
    assert why is not None and expected in why


def test_no_frame_is_never_a_calibration_whatever_min_frames_says() -> None:
    verdict = judge(np.zeros(0), np.zeros(0))
    assert math.isnan(verdict.roll_deg) and verdict.refusal(min_frames=0) is not None


def test_rotation_takes_the_roll_out_of_the_image_angle_only() -> None:
    names = ["imu_sin", "imu_cos", "img_sin", "img_cos", "camera_ok"]
    a, r = math.pi - 0.2, 0.05
    est = np.array([0.3, 0.4, math.sin(a), math.cos(a), 0.9], np.float32)
    out = rotate_image_estimate(est, names, r)
    assert math.atan2(out[2], out[3]) == pytest.approx(a - r, abs=1e-6)
    assert np.array_equal(out[[0, 1, 4]], est[[0, 1, 4]]) and np.array_equal(est[2], np.float32(math.sin(a)))


def _calibration(**change: object) -> dict:
    spec = DeviceConfig().spec()
    cal = Calibration(1.5, 0.1, 150, 140, spec.to_dict(), "m.onnx", "0" * 64, "/dev/pts/3", 0.0)
    return {**cal.to_dict(), **change}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{", "is not JSON"),
        (json.dumps([1]), "format 'list'"),
        (json.dumps(_calibration(format="other")), "format 'other'"),
        (json.dumps(_calibration(roll_deg="nan")), "roll_deg is not finite"),
        (json.dumps({k: v for k, v in _calibration().items() if k != "device"}), "malformed calibration"),
    ],
    ids=["truncated", "not-an-object", "format", "nan", "no-device"],
)  # fmt: skip
def test_a_bad_calibration_file_is_refused_naming_the_fix(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "rig.json"
    path.write_text(content)
    with pytest.raises(CalibrationError, match=expected) as err:
        Calibration.load(path)
    assert "hw calibrate" in str(err.value)
    with pytest.raises(CalibrationError, match="cannot read calibration"):
        Calibration.load(tmp_path / "missing.json")


def test_a_calibration_refuses_another_device_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "rig.json"
    path.write_text(json.dumps(_calibration()))
    cal = Calibration.load(path)
    assert cal.format == FORMAT and cal.roll_rad == pytest.approx(math.radians(1.5))
    cal.check_device(DeviceConfig().spec(), str(path))  # its own device: fine
    data = DeviceConfig().spec().to_dict()
    other = DeviceSpec.from_dict({**data, "camera": {**data["camera"], "width": 48}})
    with pytest.raises(CalibrationError, match="camera: calibration expects a 64x64 camera"):
        cal.check_device(other, str(path))
