"""`hw run --camera`: the model's image from a camera on the host (here an image folder), logged and replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hil_options import LINK_ONLY

from sensorimotor.hardware.camera import HostCamera
from sensorimotor.hardware.config import HostCameraConfig
from sensorimotor.hardware.log.mcaplog import TOPIC_HOST_CAMERA, summarize_log

pytestmark = pytest.mark.hil
cv2 = pytest.importorskip("cv2")


def _folder(path: Path, n: int, shape: tuple[int, int] = (96, 128)) -> Path:
    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        cv2.imwrite(str(path / f"{i:04d}.png"), (rng.random(shape) * 255).astype(np.uint8))
    return path


def _hw(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensorimotor.cli.hw", *args], capture_output=True, text=True,
                          timeout=120)  # fmt: skip


def test_frames_are_cropped_rotated_clockwise_and_scaled(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    image = np.zeros((40, 60), np.uint8)
    image[10:20, 10:30] = 255  # bright in the crop's top-left quarter
    cv2.imwrite(str(folder / "0.png"), image)
    cfg = HostCameraConfig(crop=(10, 10, 40, 20), rotate_deg=90)
    camera = HostCamera(str(folder), (8, 4), 50.0, cfg)
    camera.start()  # one file: read at once, then the source ends
    camera._thread.join(timeout=5)
    (_, frame), *rest = camera.take()
    camera.close()
    pixels = frame.pixels
    assert not rest
    assert pixels.shape == (8, 4)
    assert pixels[:4, 2:].mean() > 200 and pixels[:, :2].mean() < 50  # turned clockwise: now top-right


def test_a_run_takes_the_host_camera_logs_it_and_replays_bit_exactly(small_model: Path, tmp_path: Path) -> None:
    frames = _folder(tmp_path / "frames", 150)
    log, summary = tmp_path / "run.mcap", tmp_path / "s.json"
    proc = _hw("run", "--twin", "--model", str(small_model), "--duration", "2", "--camera", str(frames),
               "--set", "loop.camera.crop=[16,8,96,80]", "--set", "loop.camera.rotate_deg=90",
               "--record", str(log), "--json", str(summary), *LINK_ONLY)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr
    camera = json.loads(summary.read_text())["camera"]
    assert camera["frames_used"] >= 50 and camera["device_images_ignored"] >= 50, camera  # 50 Hz over ~2 s
    assert summarize_log(log)[TOPIC_HOST_CAMERA] == camera["frames_used"]
    replay = _hw("replay", str(log), "--model", str(small_model), "--plot", str(tmp_path / "r.png"))
    assert replay.returncode == 0 and "reproduced" in replay.stdout, replay.stdout + replay.stderr


def test_a_camera_that_stops_gets_the_safe_command_then_the_run_stops(small_model: Path, tmp_path: Path) -> None:
    frames = _folder(tmp_path / "frames", 25)  # half a second at 50 Hz
    summary = tmp_path / "s.json"
    proc = _hw("run", "--twin", "--model", str(small_model), "--duration", "5", "--camera", str(frames),
               "--json", str(summary), *LINK_ONLY)  # fmt: skip
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert f"no frame from the camera {frames}" in proc.stdout + proc.stderr
    s = json.loads(summary.read_text())
    assert s["failsafe_cycles"] >= 3 and s["commands"] > 10  # ran on the frames, then the safe command, then stop


@pytest.mark.parametrize(
    ("make", "extra", "expected"),
    [
        (lambda p: p / "nothing-here", [], "no such camera, video file or image folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", [], "the folder holds no images"),
        (lambda p: _folder(p / "small", 2, (40, 50)), ["--set", "loop.camera.crop=[0,0,64,64]"],
         "delivers 50x40 frames; the crop loop.camera.crop=[0, 0, 64, 64] does not fit in them"),
        (lambda p: _folder(p / "ok", 2), ["--set", "loop.camera.rotate_deg=45"], "rotate_deg: must be 0, 90, 180 or 270"),
    ],
)  # fmt: skip
def test_a_camera_that_cannot_be_used_is_refused_in_one_line(small_model, tmp_path, make, extra, expected) -> None:
    source = make(tmp_path)
    proc = _hw("run", "--twin", "--model", str(small_model), "--duration", "2", "--camera", str(source), *extra)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "twin:" not in proc.stdout  # refused before the device was touched
