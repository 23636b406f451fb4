"""``hw calibrate`` against the twin over a pty, then ``hw run --calibration`` and ``hw replay`` with the result.

The models here have an image head that says exactly one angle (hanging plus a known roll), so
what the commands do with it is known to the bit: the roll measured, the logged image angle with
it taken out, the refusals. How close a trained head gets to the twin's real roll is the
benchmark's job (benchmarks/bench_calibrate.py).
"""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hil_options import LINK_ONLY
from torch import nn

from sensorimotor.control.export import export_onnx
from sensorimotor.hardware.log.mcaplog import TOPIC_ESTIMATE, TOPIC_META, iter_log
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.sim.config import CameraConfig, DeviceConfig

pytestmark = pytest.mark.hil


class FixedImageHead(nn.Module):
    """0 V, and an image head that always sees the pendulum at ``angle_deg`` with camera_ok ``ok``."""

    def __init__(self, angle_deg: float, ok: float) -> None:
        super().__init__()
        est = torch.zeros(len(OBS_NAMES))
        a = math.radians(angle_deg)
        est[OBS_NAMES.index("img_sin")], est[OBS_NAMES.index("img_cos")] = math.sin(a), math.cos(a)
        est[OBS_NAMES.index("camera_ok")] = ok
        est[OBS_NAMES.index("imu_cos")] = -1.0  # the IMU agrees it hangs
        self.register_buffer("est", est)

    def forward(self, imu: torch.Tensor, encoder: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        touch = (imu.sum() + encoder.sum() + image.float().sum()) * 0.0  # every input is a real graph input
        return torch.zeros(imu.shape[0], 1) + touch, self.est.expand(imu.shape[0], -1) + touch


def _model(tmp_path: Path, angle_deg: float, ok: float = 0.9) -> Path:
    path = tmp_path / f"fixed_{angle_deg:g}_{ok:g}.onnx"
    export_onnx(FixedImageHead(angle_deg, ok).eval(), DeviceConfig(), path)
    return path


def _hw(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "sensorimotor.cli.hw", *map(str, args)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _image_angles_deg(log: Path) -> np.ndarray:
    est = [m.json()["estimates"] for m in iter_log(log) if m.topic == TOPIC_ESTIMATE]
    return np.degrees([math.atan2(e["img_sin"], e["img_cos"]) for e in est])


def test_calibrate_then_run_takes_the_roll_out_of_the_logged_image_angle(tmp_path: Path) -> None:
    model, cal = _model(tmp_path, 180.0 + 3.0), tmp_path / "rig.json"
    proc = _hw("calibrate", "--twin", "--model", model, "--out", cal, "--duration", "1.5")
    assert proc.returncode == 0, proc.stderr
    assert "camera roll +3.00 deg" in proc.stdout and "the twin's camera really has" in proc.stdout
    saved = json.loads(cal.read_text())
    assert saved["roll_deg"] == pytest.approx(3.0, abs=1e-4) and saved["spread_deg"] < 1e-3
    assert saved["ok_frames"] == saved["frames"] >= 50  # 50 Hz camera for 1.5 s, less the window's warm-up
    assert saved["device"]["name"] == "qube-twin" and math.isfinite(saved["twin_roll_deg"])

    for calibrated in (False, True):
        log = tmp_path / f"run_{calibrated}.mcap"
        extra = ["--calibration", cal] if calibrated else []
        proc = _hw("run", "--twin", "--model", model, "--duration", "0.6", "--record", log, *extra, *LINK_ONLY)
        assert proc.returncode == 0, proc.stderr
        angles = _image_angles_deg(log)
        assert len(angles) > 20
        expected = 180.0 if calibrated else -177.0  # hanging: the roll taken out, or the head's 183 deg wrapped
        assert np.abs((angles - expected + 180) % 360 - 180).max() < 1e-3, angles[:5]
        meta = next(m.json() for m in iter_log(log) if m.topic == TOPIC_META)
        assert ("calibration" in meta) == calibrated
        replayed = _hw("replay", log, "--model", model, "--json", tmp_path / "replay.json")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr


@pytest.mark.parametrize(
    ("angle_deg", "ok", "expected"),
    [(180.0 + 20.0, 0.9, "does not look like it hangs"), (180.0, 0.1, "camera frames were ok")],
    ids=["not-hanging", "camera-not-ok"],
)  # fmt: skip
def test_frames_that_give_no_roll_are_refused_and_nothing_is_written(tmp_path, angle_deg, ok, expected) -> None:
    cal = tmp_path / "rig.json"
    proc = _hw("calibrate", "--twin", "--model", _model(tmp_path, angle_deg, ok), "--out", cal, "--duration", "1")
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr
    assert not cal.exists()


def test_calibration_mistakes_get_one_line_naming_the_fix(tmp_path: Path, small_model: Path) -> None:
    model, cal = _model(tmp_path, 181.0), tmp_path / "rig.json"
    assert _hw("calibrate", "--twin", "--model", model, "--out", cal, "--duration", "1").returncode == 0
    again = _hw("calibrate", "--twin", "--model", model, "--out", cal, "--duration", "1")
    assert again.returncode == 2 and "--force" in again.stderr  # an existing calibration is not overwritten
    nowhere = _hw("calibrate", "--twin", "--model", model, "--out", tmp_path / "no" / "rig.json")
    assert nowhere.returncode == 2 and "folder" in nowhere.stderr and "does not exist" in nowhere.stderr
    # another device: the twin with a different camera resolution (and a model made for it)
    other = tmp_path / "other.onnx"
    device = dataclasses.replace(DeviceConfig(), camera=dataclasses.replace(CameraConfig(), width=48, height=48))
    export_onnx(FixedImageHead(180.0, 0.9).eval(), device, other)
    proc = _hw("run", "--twin", "--set", "device.camera.width=48", "--set", "device.camera.height=48",
               "--model", other, "--calibration", cal, "--duration", "0.5")  # fmt: skip
    assert proc.returncode == 2 and "measured on another device" in proc.stderr
    assert "camera: calibration expects a 64x64 camera at 50 Hz, device has a 48x48 camera" in proc.stderr
    # another model: a warning (the roll is the camera's; the head's bias at rest is the model's)
    proc = _hw("run", "--twin", "--model", small_model, "--calibration", cal, "--duration", "0.5")
    assert "calibrate again with this model" in proc.stderr and "Traceback" not in proc.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("not json")
    proc = _hw("run", "--twin", "--model", model, "--calibration", garbage, "--duration", "0.5")
    assert proc.returncode == 2 and "is not JSON" in proc.stderr and "Traceback" not in proc.stderr
