"""`sim eval`: every controller meets the same episodes; the perturbation set changes what it names."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sensorimotor.control.compare import PERTURBED_PARAMS, conditions, perfect_estimates
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import RATE_SCALE
from sensorimotor.sim.config import DeviceConfig


def _sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sensorimotor.cli.sim", *args], capture_output=True, text=True,
                          timeout=1800)  # fmt: skip


def test_each_perturbation_changes_only_what_it_names() -> None:
    base = DeviceConfig()
    conds = conditions()
    assert len(conds) == 1 + 2 * len(PERTURBED_PARAMS) + 3
    for name in PERTURBED_PARAMS:
        for factor in (0.7, 1.3):
            dev = conds[f"{name} x{factor}"](base)
            assert getattr(dev.physics, name) == pytest.approx(getattr(base.physics, name) * factor)
            others = {k: v for k, v in dataclasses.asdict(dev.physics).items() if k != name}
            assert others == {k: v for k, v in dataclasses.asdict(base.physics).items() if k != name}
    slow = conds["latency x2"](base).randomization
    assert slow.camera_delay_substeps == tuple(2 * v for v in base.randomization.camera_delay_substeps)
    noisy = conds["sensor noise x2"](base)
    assert noisy.imu.noise_scale == 2 * base.imu.noise_scale
    faulty = conds["camera faults (occl 30 %, blackout 20 %)"](base).camera
    assert faulty.occlusion_prob > base.camera.occlusion_prob and faulty.blackout_prob > base.camera.blackout_prob


def test_perfect_estimates_are_the_true_state_in_the_policy_units() -> None:
    state = np.array([[0.3, -2.0, 1.5, 4.0]])
    est = dict(zip(OBS_NAMES, perfect_estimates(state)[0], strict=True))
    assert est["imu_sin"] == pytest.approx(np.sin(-2.0)) and est["img_cos"] == pytest.approx(np.cos(-2.0))
    assert est["imu_rate"] == pytest.approx(4.0 / RATE_SCALE) and est["arm_rate"] == pytest.approx(1.5 / RATE_SCALE)
    assert est["arm_angle"] == pytest.approx(0.3) and est["camera_ok"] == 1.0


def test_sim_eval_compares_a_run_with_the_classical_baseline(config_path: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = _sim("train", "--config", str(config_path), "--preset", "tiny", "--out", str(run))
    assert trained.returncode == 0, trained.stderr[-2000:]
    proc = _sim("eval", str(run), "--episodes", "6", "--nominal-only", "--out", str(tmp_path / "eval"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((tmp_path / "eval" / "results.json").read_text())
    names = result["controllers"]
    assert names == [
        "run (ppo, perception)",
        "run (ppo, true state)",
        "classical (perception)",
        "classical (true state)",
    ]
    nominal = result["table"]["nominal"]
    assert all(nominal[n]["episodes"] == 6 for n in names)
    assert nominal["classical (true state)"]["success_rate"] == 1.0  # the reference balances every episode
    for name in ("results.md", "comparison.png", "classical.onnx"):
        assert (tmp_path / "eval" / name).stat().st_size > 0
    assert "| nominal |" in (tmp_path / "eval" / "results.md").read_text()


def test_sim_eval_of_a_folder_that_is_not_a_run_is_a_clear_error(tmp_path: Path) -> None:
    proc = _sim("eval", str(tmp_path))
    assert proc.returncode == 2 and "is not a sim train run" in proc.stderr and "Traceback" not in proc.stderr
