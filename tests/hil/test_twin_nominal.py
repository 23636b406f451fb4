"""`hw run --twin --twin-nominal`: the twin plays exactly the configured device (how a zoo device is run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

pytestmark = pytest.mark.hil


def _run(small_model: Path, tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
         "--duration", "1", "--json", str(tmp_path / "run.json"), *LINK_ONLY, *extra],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_nominal_twin_plays_the_set_values_and_the_default_one_draws_around_them(small_model, tmp_path) -> None:
    nominal = _run(small_model, tmp_path, "--twin-nominal", "--set", "device.physics.Dp=0.0005")
    assert nominal.returncode in (0, 1), nominal.stderr
    physics = json.loads((tmp_path / "run.json").read_text())["twin"]["physics"]
    assert physics["Dp"] == 0.0005 and physics["Dr"] == 0.00027  # the set value and the config's, exactly

    drawn = _run(small_model, tmp_path, "--set", "device.physics.Dp=0.0005")
    assert drawn.returncode in (0, 1), drawn.stderr
    physics = json.loads((tmp_path / "run.json").read_text())["twin"]["physics"]
    assert physics["Dp"] != 0.0005 and 0.00025 <= physics["Dp"] <= 0.00075  # randomized per run, +-50 %


def test_twin_nominal_without_the_twin_is_refused(small_model, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--port", "/dev/ttyNOPE", "--model",
         str(small_model), "--twin-nominal"], capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "--twin-nominal needs --twin" in proc.stderr
