"""Typed config loading: good files load, bad values name the field and the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sensorimotor.configs.schema import ConfigError, load_section
from sensorimotor.control.config import ExperimentConfig, load_experiment
from sensorimotor.hardware.config import LoopConfig
from sensorimotor.sim.config import DeviceConfig


def test_shipped_config_and_presets_load(config_path: Path) -> None:
    for preset in (None, "quick", "tiny"):
        cfg = load_experiment(config_path, preset)
        assert isinstance(cfg, ExperimentConfig)
    assert (
        load_experiment(config_path, "tiny").rl.total_timesteps
        < load_experiment(config_path, "quick").rl.total_timesteps
    )
    assert load_section(config_path, "device", DeviceConfig).imu.window == 64
    assert load_section(config_path, "loop", LoopConfig).rate_hz == 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("device:\n  imu:\n    rate_hz: fast\n", "device.imu.rate_hz: expected an integer, got 'fast'"),
        ("device:\n  imu:\n    rat_hz: 100\n", "device.imu.rat_hz: unknown field (did you mean 'rate_hz'?)"),
        ("loop:\n  rate_hz: -5\n", "loop.rate_hz: -5.0 is out of range (allowed: > 0"),
        ("rl:\n  algo: dqn\n", "rl.algo: unknown 'dqn' (valid: ppo, sac)"),
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
        (
            ["sensorimotor.cli.sim", "train", "--config", str(bad), "--out", str(tmp_path / "o")],
            "device.encoder_cpr: expected an integer",
        ),
        (
            ["sensorimotor.cli.hw", "run", "--twin", "--model", "x.onnx", "--config", str(bad)],
            "loop.rate_hz: expected a number",
        ),
    ]
    for cmd, expected in cases:
        proc = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert expected in proc.stderr and str(bad) in proc.stderr
        assert "Traceback" not in proc.stderr


# Malformed configs: each is refused by the CLI with one line naming the field and the
# allowed range, exit status 2, no traceback.
MALFORMED = [
    ("device:\n  stream_rate_hz: 0\n", "device.stream_rate_hz: 0 is out of range (allowed: > 0"),
    ("rl:\n  ppo:\n    batch_size: 0\n", "rl.ppo.batch_size: 0 is out of range (allowed: > 1)"),
    (
        "device:\n  randomization:\n    action_delay_substeps: [8, 0]\n",
        "device.randomization.action_delay_substeps: [8, 0] is not an ordered range",
    ),
    (
        "device:\n  camera:\n    occlusion_prob: 1.5\n",
        "device.camera.occlusion_prob: 1.5 is out of range (allowed: >= 0 and <= 1)",
    ),
    ("device:\n  stream_rate_hz: 300\n", "device.stream_rate_hz: 300 does not divide imu.rate_hz 1000"),
    ("device:\n  stream_rate_hz: 10\n", "device.stream_rate_hz: 10 puts 100 IMU samples in a SENSOR frame"),
    (
        "device:\n  camera:\n    height: 100\n    width: 100\n",
        "device.camera.height: 100x100 = 10000 pixels does not fit one IMAGE frame",
    ),
    ("task:\n  fall_deg: -5\n", "task.fall_deg: -5.0 is out of range (allowed: > 0 and <= 180)"),
    ("loop:\n  rate_hz: .nan\n", "loop.rate_hz: must be a finite number"),
    ("rl:\n  gamma: 1.5\n", "rl.gamma: 1.5 is out of range (allowed: > 0 and <= 1)"),
    ("device:\n  imu:\n    window: 4\n", "device.imu.window: 4 is out of range (allowed: >= 8 and <= 4096)"),
    ("perception:\n  batch_size: 128\n  train_samples: 64\n", "perception.batch_size: 128 exceeds train_samples 64"),
    (
        "device:\n  randomization:\n    camera_delay_substeps: [20, 5]\n",
        "device.randomization.camera_delay_substeps: [20, 5] is not an ordered range",
    ),
    (
        "device:\n  camera:\n    exposure_ms: [6.0, 0.5]\n",
        "device.camera.exposure_ms: [6.0, 0.5] is not an ordered range",
    ),
    (
        "device:\n  physics:\n    static_r: 0.0001\n",
        "device.physics.static_r: breakaway friction 0.0001 N*m is below coulomb_r 0.0004",
    ),
    ("device:\n  physics:\n    v_sat: -1\n", "device.physics.v_sat: -1.0 is out of range (allowed: > 0"),
    ("device:\n  physics:\n    Frobnicate: 1\n", "device.physics.Frobnicate: unknown field"),
    ("device:\n  type: furta\n", "device.type: unknown 'furta' (did you mean 'furuta'?"),
    ("device:\n  type: no_such_pkg.devices:Robot\n", "device.type: 'no_such_pkg.devices:Robot': cannot import"),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED, ids=[e.split(":")[0] for _, e in MALFORMED])
def test_malformed_config_is_one_line_naming_field_and_range(tmp_path: Path, text: str, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:  # the library raises it ...
        load_experiment(bad)
    assert expected in str(err.value) and str(bad) in str(err.value)
    proc = subprocess.run(  # ... and the command prints it as one line, exit 2
        [sys.executable, "-m", "sensorimotor.cli.sim", "train", "--config", str(bad), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
    assert not (tmp_path / "o").exists()  # nothing written


def test_set_overrides_are_parsed_as_yaml_and_validated(config_path: Path) -> None:
    cfg = load_experiment(
        config_path, "tiny",
        ["device.randomization.action_delay_substeps=[0, 4]", "rl.total_timesteps=1024", "device.camera.randomize=false"],
    )  # fmt: skip
    assert cfg.device.randomization.action_delay_substeps == (0, 4)
    assert cfg.rl.total_timesteps == 1024 and cfg.device.camera.randomize is False
    assert cfg.rl.n_envs == 4  # the preset still applies underneath
    with pytest.raises(
        ConfigError, match=r"with --set device.stream_rate_hz=0\): device.stream_rate_hz: 0 is out of range"
    ):
        load_experiment(config_path, None, ["device.stream_rate_hz=0"])
    with pytest.raises(ConfigError, match="device.imu.rat_hz: unknown field"):
        load_experiment(config_path, None, ["device.imu.rat_hz=5"])
    with pytest.raises(ConfigError, match="expected a.b.c=VALUE"):
        load_experiment(config_path, None, ["device.stream_rate_hz"])


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (["sensorimotor.cli.twin", "--set", "device.camera.rate_hz=7"], "device.camera.rate_hz: 7 does not divide"),
        (
            ["sensorimotor.cli.hw", "run", "--twin", "--model", "m.onnx", "--set", "loop.rate_hz=-1"],
            "loop.rate_hz: -1.0 is out of range",
        ),
        (["sensorimotor.cli.sim", "train", "--set", "rl.n_envs=0"], "rl.n_envs: 0 is out of range"),
        (
            ["sensorimotor.cli.hw", "run", "--twin", "--model", "m.onnx", "--config", "/no/such.yaml"],
            "/no/such.yaml: no such config file",
        ),
    ],
)
def test_every_command_takes_set_and_reports_bad_values(tmp_path: Path, cmd: list[str], expected: str) -> None:
    proc = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr


def test_resolved_config_loads_back_to_the_same_config(config_path: Path, tmp_path: Path) -> None:
    from sensorimotor.configs.schema import read_yaml
    from sensorimotor.control.config import resolved_yaml

    cfg = load_experiment(config_path, "quick", ["seed=3"])
    out = tmp_path / "config.yaml"
    out.write_text(resolved_yaml(cfg, read_yaml(config_path)["presets"], "from a test"))
    assert load_experiment(out) == cfg
    assert load_experiment(out, "tiny").rl.total_timesteps == load_experiment(config_path, "tiny").rl.total_timesteps


def test_default_config_is_shipped_with_the_package() -> None:
    from sensorimotor.configs.schema import DEFAULT_CONFIG

    assert DEFAULT_CONFIG.is_file()
    assert load_experiment(None) == load_experiment(DEFAULT_CONFIG)


def test_config_reference_doc_is_generated_from_the_code() -> None:
    from sensorimotor.control.config_docs import render

    committed = (Path(__file__).resolve().parents[2] / "docs" / "configs.md").read_text()
    assert committed == render(), "docs/configs.md is stale: run `make docs` and commit it"
