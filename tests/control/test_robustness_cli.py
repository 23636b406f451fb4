"""`sim robustness RUN`: the map over a run's exported model, the centre device's verdict, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def _sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.sim", *args], capture_output=True, text=True, timeout=1200
    )


@pytest.fixture(scope="module")
def run(config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    proc = _sim("train", "--config", str(config_path), "--preset", "tiny", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def test_a_map_over_one_axis_with_the_centre_device_named(run: Path, tmp_path: Path) -> None:
    device = tmp_path / "device.yaml"
    device.write_text("device:\n  physics:\n    Dp: 0.0002\n")
    proc = _sim("robustness", str(run), "--device", str(device), "--axis", "device.physics.Rm=0.5,1,2",
                "--episodes", "2", "--out", str(tmp_path / "map"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("this device: ") and "succeeds at balance in" in proc.stdout
    result = json.loads((tmp_path / "map" / "robustness.json").read_text())
    assert result["axes"] == [{"path": "device.physics.Rm", "factors": [0.5, 1.0, 2.0]}]
    assert len(result["success_rate"]) == 3 and all(0 <= s <= 1 for s in result["success_rate"])
    assert (tmp_path / "map" / "robustness.png").stat().st_size > 0
    assert "| physics.Rm" in (tmp_path / "map" / "robustness.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--axis", "device.physics.Dp=0:2"], "expected PATH=LO:HI[:N]"),
        (["--axis", "device.physics.Dq=0.5:2"], "unknown config field 'Dq'"),
        (["--axis", "a.b=1,2", "--axis", "c.d=1,2", "--axis", "e.f=1,2"], "at most two"),
        (["--episodes", "0"], "--episodes: 0 must be > 0"),
        (["--set", "device.physics.Dp=-1"], "device.physics.Dp"),
        (["--device", "{tmp}/nope.yaml"], "no such config file"),
        (["--device", "{tmp}/bad.yaml"], "device.physics.Dp"),
        (["--device", "{tmp}/other.yaml"], "rl: unknown section"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(run: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("device:\n  physics:\n    Dp: -0.1\n")
    (tmp_path / "other.yaml").write_text("rl:\n  n_envs: 4\n")
    out = tmp_path / "map"
    proc = _sim("robustness", str(run), *[a.format(tmp=tmp_path) for a in args], "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_a_folder_that_is_not_a_run_is_refused(tmp_path: Path) -> None:
    proc = _sim("robustness", str(tmp_path))
    assert proc.returncode == 2 and "not a sim train run folder (config.yaml missing)" in proc.stderr


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_adapt_continues_the_run_on_the_identified_device(run: Path, tmp_path: Path) -> None:
    """`sim train --from RUN --device FILE`: the run's checkpoint trained on, the new device in the config."""
    before = _files(run)
    device = tmp_path / "device.yaml"
    device.write_text("device:\n  physics:\n    Dp: 0.0002\nidentification:\n  device: qube-twin\n")
    out = tmp_path / "adapted"
    proc = _sim("train", "--from", str(run), "--device", str(device), "--steps", "512", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["resumed_from_steps"] == 512 and report["rl_timesteps"] == 1024
    assert report["adapted_from"] == str(run) and "heldout_success" in report
    source = {r["name"]: r for r in json.loads((run / "report.json").read_text())["heldout"]}
    assert [r["name"] for r in report["heldout"]] == list(source)  # the source run's zoo
    for row in report["heldout"]:  # the source's feasibility, not the oracle again
        was = source[row["name"]]
        assert row["feasible"] == was["feasible"] or row["passed"], row
        if not row["passed"]:
            assert row["verdict"] == was["verdict"] if not was["passed"] else "succeeds)" in row["verdict"], row
    assert (out / "checkpoints" / "rl_1024.zip").is_file() and (out / "policy.onnx").stat().st_size > 0
    assert (out / "perception.pt").read_bytes() == before["perception.pt"]  # the run's perception, not retrained
    import yaml

    assert yaml.safe_load((out / "config.yaml").read_text())["device"]["physics"]["Dp"] == 0.0002
    assert _files(run) == before  # the source run is untouched


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "{tmp}/other-device.yaml"], "was identified for device 'furuta-9'"),
        (["--device", "{tmp}/bad.yaml"], "device.physics.Dp"),
        (["--set", "task.name=swingup"], "trained for task 'balance', not 'swingup'"),
        (["--set", "device.imu.window=32"], "reports other sensors"),
        (["--set", "rl.net_arch=[32]"], "net_arch: checkpoint"),
        (["--set", "rl.history=2"], "history: checkpoint 0, config 2"),
        (["--steps", "0"], "--steps 0"),
        (["--preset", "quick"], "drop --resume, --config, --preset"),
    ],
)
def test_adapt_bad_input_is_one_line_and_exit_2(run: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("device:\n  physics:\n    Dp: -0.1\n")
    (tmp_path / "other-device.yaml").write_text(
        "device:\n  physics:\n    Dp: 0.0002\nidentification:\n  device: furuta-9\n"
    )
    out = tmp_path / "adapted"
    proc = _sim("train", "--from", str(run), *[a.format(tmp=tmp_path) for a in args], "--out", str(out))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not out.exists()


def test_adapt_needs_a_run_and_keeps_an_existing_output(run: Path, tmp_path: Path) -> None:
    alone = _sim("train", "--device", str(tmp_path / "device.yaml"), "--out", str(tmp_path / "x"))
    assert alone.returncode == 2 and "give the run with --from RUN" in alone.stderr
    not_run = _sim("train", "--from", str(tmp_path), "--out", str(tmp_path / "x"))
    assert not_run.returncode == 2 and "not a sim train run folder" in not_run.stderr
    itself = _sim("train", "--from", str(run), "--out", str(run))
    assert itself.returncode == 2 and "is the run adapted from" in itself.stderr
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "report.json").write_text("{}")
    kept = _sim("train", "--from", str(run), "--out", str(taken))
    assert kept.returncode == 2 and "already holds a training run" in kept.stderr
    assert (taken / "report.json").read_text() == "{}"
