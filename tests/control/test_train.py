"""`sim train` end to end: a tiny budget in the default run; the quick preset's acceptance numbers in `make test-slow`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPORT_KEYS = {
    "imu_angle_rmse_deg", "image_angle_rmse_deg", "classification_accuracy", "eval_success_rate",
    "onnx_parity_max_abs_diff", "latency_batch1",
}  # fmt: skip


def _train(config: Path, preset: str, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.control.cli", "train", "--config", str(config), "--preset", preset, "--out", str(out)],
        capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


def test_tiny_training_writes_every_artifact(config_path: Path, tmp_path: Path) -> None:
    report = _train(config_path, "tiny", tmp_path)
    assert set(report) >= REPORT_KEYS
    assert report["onnx_parity_max_abs_diff"] <= 1e-4 and report["onnx_parity_inputs"] >= 100
    for name in ("policy.onnx", "config.yaml", "training.png", "perception.png", "perception.pt", "ppo.zip"):
        assert (tmp_path / name).stat().st_size > 0, name


@pytest.mark.slow
def test_quick_preset_balances_in_sim_and_on_the_twin(config_path: Path, tmp_path: Path) -> None:
    report = _train(config_path, "quick", tmp_path)
    assert report["evaluation"]["episodes"] == 100
    assert report["eval_success_rate"] >= 0.8, report["evaluation"]
    assert report["onnx_parity_max_abs_diff"] <= 1e-4 and report["onnx_parity_inputs"] >= 1000
    summary = tmp_path / "run.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.hardware.cli", "run", "--twin", "--config", str(config_path), "--model",
         str(tmp_path / "policy.onnx"), "--duration", "10", "--json", str(summary)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    twin = json.loads(summary.read_text())["twin"]
    assert twin["upright_whole_run"] and twin["streaming_s"] >= 9.9, twin
