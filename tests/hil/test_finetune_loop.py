"""The loop a user runs on a rig, against the twin over a pty: record with a reference sensor, fine-tune on the logs, run.

    hw run --record (device.reference) -> sim finetune --logs LOGS --from RUN --export -> hw run --model OUT/policy.onnx

Also: the log's labels belong exactly to the window the loop built, and bad logs are refused
with a message that names what is wrong, writing nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sensorimotor.perception.logs import load_logs
from sensorimotor.sim.config import DeviceConfig

REFERENCE = "device.reference=true"


def _run(module: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout)


def _hw(*args: str) -> subprocess.CompletedProcess:
    return _run("sensorimotor.cli.hw", *args)


def _sim(*args: str) -> subprocess.CompletedProcess:
    return _run("sensorimotor.cli.sim", *args)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, config_path: Path) -> Path:
    run = tmp_path_factory.mktemp("finetune") / "run"
    proc = _sim("train", "--config", str(config_path), "--preset", "tiny", "--out", str(run))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return run


def _record(run: Path, log: Path, seconds: float, *sets: str, seed: int = 1) -> None:
    args = ["run", "--twin", "--config", str(run / "config.yaml"), "--model", str(run / "policy.onnx"),
            "--duration", str(seconds), "--seed", str(seed), "--record", str(log)]  # fmt: skip
    for s in sets:
        args += ["--set", s]
    proc = _hw(*args)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1: health verdict under load, not a failure here
    assert log.is_file()


def test_labels_belong_to_the_window_the_loop_built(tiny_run: Path, tmp_path: Path) -> None:
    """Noise off, the newest gyro x sample is -alpha_dot exactly: the label is the window's newest sample's state."""
    log = tmp_path / "clean.mcap"
    _record(tiny_run, log, 3.0, REFERENCE, "device.imu.noise=false")
    data = load_logs([log], DeviceConfig().spec())
    assert len(data) >= 200 and len(data) % data.seq_len == 0
    np.testing.assert_array_equal(data.imu[:, 0, -1].numpy(), -data.state[:, 3].numpy())
    assert float(data.state[:, 3].abs().max()) > 1.0  # the pendulum moved: the check is not trivially true
    assert set(data.camera_class.tolist()) <= {0, 1, 2}  # every frame carried its reference


def test_record_finetune_export_run_against_the_twin(tiny_run: Path, tmp_path: Path) -> None:
    logs = [tmp_path / "a.mcap", tmp_path / "b.mcap"]
    for seed, log in enumerate(logs, start=1):
        _record(tiny_run, log, 4.0, REFERENCE, seed=seed)
    out = tmp_path / "ft"
    ft = _sim("finetune", "--from", str(tiny_run), "--logs", *map(str, logs), "--export", "--out", str(out),
              "--set", "perception.finetune_steps=40", "--set", "perception.batch_size=32")  # fmt: skip
    assert ft.returncode == 0, ft.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == "2 log(s)" and metrics["labelled_samples"] > 0
    assert [phase[0] for phase in metrics["phases"]] == ["linear", "full"]  # lp-ft: the run's heads first
    assert metrics["export"]["parity_volts"] <= 1e-4
    assert metrics["test"]["samples"] > 0 and np.isfinite(metrics["test"]["imu_angle_rmse_deg"])
    run = _hw("run", "--twin", "--config", str(tiny_run / "config.yaml"), "--model", str(out / "policy.onnx"),
              "--duration", "2", "--json", str(tmp_path / "run.json"))  # fmt: skip
    assert run.returncode in (0, 1), run.stderr[-2000:]
    assert json.loads((tmp_path / "run.json").read_text())["commands"] > 100  # the fine-tuned model drove the twin


def test_logs_that_cannot_label_the_model_are_refused_naming_why(tiny_run: Path, tmp_path: Path) -> None:
    plain, short = tmp_path / "plain.mcap", tmp_path / "short.mcap"
    _record(tiny_run, plain, 2.0)  # no reference sensor
    _record(tiny_run, short, 0.1, REFERENCE)
    cases = [
        (
            [str(plain)],
            [],
            ["no label channel 'alpha'", "none: the log has no REFERENCE frames", "device.reference=true"],
        ),
        ([str(short)], [], ["hold no labelled episode"]),
        ([str(short)], ["--label-channel", "pendulum"], ["label channel 'pendulum'", "alpha, alpha_d"]),
        ([str(plain)], ["--set", "device.encoder_cpr=4096"], ["does not match the model's device", "encoder"]),
    ]
    for i, (logs, extra, expected) in enumerate(cases):
        out = tmp_path / f"out{i}"
        proc = _sim("finetune", "--from", str(tiny_run), "--logs", *logs, "--out", str(out), *extra)
        assert proc.returncode == 2, (i, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr
        for text in expected:
            assert text in proc.stderr, (i, text, proc.stderr)
        assert not out.exists(), "a refused fine-tune writes nothing"
