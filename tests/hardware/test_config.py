"""Typed config loading: good files load, bad values name the field and the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sensorimotor.control.config import ExperimentConfig, load_experiment
from sensorimotor.hardware.config import ConfigError, LoopConfig, load_section
from sensorimotor.sim.config import DeviceConfig


def test_shipped_config_and_presets_load(config_path: Path) -> None:
    for preset in (None, "quick", "tiny"):
        cfg = load_experiment(config_path, preset)
        assert isinstance(cfg, ExperimentConfig)
    assert load_experiment(config_path, "tiny").rl.total_timesteps < load_experiment(config_path, "quick").rl.total_timesteps
    assert load_section(config_path, "device", DeviceConfig).imu.window == 64
    assert load_section(config_path, "loop", LoopConfig).rate_hz == 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device:\n  imu:\n    rate_hz: fast\n", "device.imu.rate_hz: expected an integer, got 'fast'"),
        ("device:\n  imu:\n    rat_hz: 100\n", "device.imu.rat_hz: unknown field (did you mean 'rate_hz'?)"),
        ("loop:\n  rate_hz: -5\n", "loop.rate_hz: -5.0 is out of range (allowed: > 0"),
        ("rl:\n  algo: dqn\n", "rl.algo: expected one of 'ppo', got 'dqn'"),
        ("device:\n  v_max: [1, 2]\n", "device.v_max: expected a number"),
        ("device: [\n", "not valid YAML"),
        ("- just\n- a list\n", "expected a mapping of sections"),
    ],
)
def test_malformed_config_names_the_field(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_experiment(bad)
    assert expected in str(err.value)
    assert str(bad) in str(err.value)


def test_unknown_preset_lists_the_known_ones(config_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown preset 'fast'.*quick"):
        load_experiment(config_path, "fast")


def test_cli_reports_config_errors_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("device:\n  encoder_cpr: many\nloop:\n  rate_hz: fast\n")
    cases = [
        (["sensorimotor.control.cli", "train", "--config", str(bad), "--out", str(tmp_path / "o")], "device.encoder_cpr: expected an integer"),
        (["sensorimotor.hardware.cli", "run", "--twin", "--model", "x.onnx", "--config", str(bad)], "loop.rate_hz: expected a number"),
    ]
    for cmd, expected in cases:
        proc = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and str(bad) in proc.stderr
        assert "Traceback" not in proc.stderr
