"""An unknown top-level section is refused like an unknown field inside one: a typo never runs on defaults."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from sensorimotor.cli import hw as hw_cli
from sensorimotor.configs.schema import TOP_LEVEL_KEYS, ConfigError, load_section
from sensorimotor.control.config import ExperimentConfig, load_experiment
from sensorimotor.hardware.config import LoopConfig


def test_the_runtime_knows_every_section_of_the_experiment_config() -> None:
    # configs/schema.py cannot import ExperimentConfig (the training stack): the two lists must not drift apart.
    assert set(TOP_LEVEL_KEYS) == {f.name for f in dataclasses.fields(ExperimentConfig)}


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "typo.yaml"
    path.write_text(text)
    return path


def test_hw_run_refuses_a_misspelt_section_instead_of_running_on_the_defaults(
    small_model: Path, tmp_path: Path, capsys
) -> None:  # fmt: skip
    bad = _config(tmp_path, "lop:\n  rate_hz: 50\n")
    assert hw_cli.main(["run", "--twin", "--model", str(small_model), "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err == f"hw run: error: {bad}: lop: unknown section (did you mean 'loop'?)\n"


@pytest.mark.parametrize(
    ("text", "overrides", "expected"),
    [
        ("lop:\n  rate_hz: 50\n", [], "lop: unknown section (did you mean 'loop'?)"),
        ("loop:\n  rate_hz: 50\n", ["lop.rate_hz=50"], "(with --set lop.rate_hz=50): lop: unknown section"),
        ("loop: {}\npresets:\n  fast:\n    lop: {}\n", [], "presets.fast.lop: unknown section (did you mean 'loop'?)"),
        ("gizmo: 1\n", [], "gizmo: unknown section (known: seed, device, task"),
    ],
)
def test_every_loader_refuses_an_unknown_section(
    tmp_path: Path, text: str, overrides: list[str], expected: str
) -> None:
    bad = _config(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_section(bad, "loop", LoopConfig, overrides=overrides)
    assert expected in str(err.value) and str(bad) in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_experiment(bad, None, overrides)
    assert expected in str(err.value)


def test_sim_twin_refuses_a_misspelt_section(tmp_path: Path) -> None:
    bad = _config(tmp_path, "devise:\n  stream_rate_hz: 50\n")
    # In a subprocess: accepted, the twin would serve until stopped.
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.sim", "twin", "--config", str(bad)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == f"sim twin: config error: {bad}: devise: unknown section (did you mean 'device'?)\n"


def test_the_shipped_config_and_its_presets_are_accepted() -> None:
    for preset in (None, "quick", "full", "tiny", "pendulum-ppo", "pendulum-sac"):
        load_experiment(None, preset)
    assert load_section(None, "loop", LoopConfig).rate_hz > 0
