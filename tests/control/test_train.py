"""`sim train` end to end: a tiny budget in the default run; the quick preset's acceptance numbers in `make test-slow`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPORT_KEYS = {
    "imu_angle_rmse_deg", "image_angle_rmse_deg", "classification_accuracy", "eval_success_rate",
    "onnx_parity_max_abs_diff", "latency_batch1",
}  # fmt: skip


def _sim(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.sim", "train", *args], capture_output=True, text=True, timeout=3600
    )


def _train(config: Path, preset: str, out: Path, *extra: str) -> dict:
    proc = _sim("--config", str(config), "--preset", preset, "--out", str(out), *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "report.json").read_text())


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_run(config_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny PPO run shared by the tests below that only read it (or copy it before changing it)."""
    out = tmp_path_factory.mktemp("tiny") / "run"
    _train(config_path, "tiny", out)
    return out


def _assert_every_artifact(run: Path, algo: str) -> None:
    report = json.loads((run / "report.json").read_text())
    assert set(report) >= REPORT_KEYS and report["algo"] == algo
    assert report["onnx_parity_max_abs_diff"] <= 1e-5 and report["onnx_reference_max_abs_diff"] <= 1e-5
    assert report["onnx_parity_inputs"] >= 100
    # every run is scored on the held-out zoo: a row per device, the figure over the counted ones
    assert len(report["heldout"]) == report["heldout_devices"] >= 20
    assert report["heldout_counted"] == sum(r["feasible"] and r["outside"] > 0 for r in report["heldout"])
    assert 0.0 <= report["heldout_success"] <= 1.0
    for name in ("policy.onnx", "config.yaml", "training.png", "perception.png", "perception.pt",
                 "checkpoints/latest.json", "checkpoints/rl_512.zip"):  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    assert any((run / "tensorboard").rglob("events.out.tfevents.*"))


def test_tiny_ppo_training_writes_every_artifact(tiny_run: Path) -> None:
    _assert_every_artifact(tiny_run, "ppo")


def test_tiny_sac_training_writes_every_artifact(config_path: Path, tmp_path: Path) -> None:
    _train(config_path, "tiny", tmp_path, "--algo", "sac")
    _assert_every_artifact(tmp_path, "sac")


def test_same_seed_same_model(config_path: Path, tiny_run: Path, tmp_path: Path) -> None:
    """Two runs of one config and seed export byte-identical models; another seed does not."""
    a = json.loads((tiny_run / "report.json").read_text())
    b = _train(config_path, "tiny", tmp_path / "b")
    c = _train(config_path, "tiny", tmp_path / "c", "--seed", "1")
    assert (tiny_run / "policy.onnx").read_bytes() == (tmp_path / "b" / "policy.onnx").read_bytes()
    assert json.dumps(a["evaluation"]) == json.dumps(b["evaluation"])  # NaN-safe comparison
    assert (tiny_run / "policy.onnx").read_bytes() != (tmp_path / "c" / "policy.onnx").read_bytes()
    assert a["perception"]["imu_angle_rmse_deg"] != c["perception"]["imu_angle_rmse_deg"]


def test_resume_continues_and_a_run_that_cannot_be_resumed_touches_nothing(
    config_path: Path, tiny_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)  # a run folder is self-contained: its copy resumes like the original
    before = _snapshot(run)

    again = _sim("--config", str(config_path), "--preset", "tiny", "--out", str(run))
    assert again.returncode == 2 and "already holds a training run" in again.stderr and "--resume" in again.stderr

    other_algo = _sim("--resume", str(run), "--set", "rl.algo=sac")
    assert other_algo.returncode == 2, other_algo.stderr
    assert "algo: checkpoint 'ppo', config 'sac'" in other_algo.stderr
    other_arch = _sim("--resume", str(run), "--set", "rl.net_arch=[32]")
    assert other_arch.returncode == 2 and "net_arch: checkpoint" in other_arch.stderr, other_arch.stderr
    assert _snapshot(run) == before  # refused before anything was written

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_bytes((run / "config.yaml").read_bytes())
    missing = _sim("--resume", str(broken))
    assert missing.returncode == 2 and "has no checkpoint" in missing.stderr, missing.stderr
    assert sorted(p.name for p in broken.iterdir()) == ["config.yaml"]

    resumed = _sim("--resume", str(run), "--set", "rl.total_timesteps=1024")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert report["resumed_from_steps"] == 512 and report["rl_timesteps"] == 1024
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["steps"] == 1024 and (run / "checkpoints" / "rl_1024.zip").is_file()
    assert (run / "perception.pt").read_bytes() == before["perception.pt"]  # perception is reused, not retrained


def test_gymnasium_env_trains_through_the_same_command(tmp_path: Path) -> None:
    proc = _sim("--env", "Pendulum-v1", "--preset", "pendulum-sac", "--out", str(tmp_path),
                "--set", "rl.total_timesteps=300", "--set", "evaluation.episodes=2", "--set", "rl.eval_every=200",
                "--set", "rl.eval_episodes=1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["env"] == "Pendulum-v1" and report["algo"] == "sac" and report["episodes"] == 2
    assert report["onnx_parity_max_abs_diff"] <= 1e-5 and report["onnx_reference_max_abs_diff"] <= 1e-5
    assert report["sb3_predict_max_abs_diff"] <= 1e-5
    assert [e["timesteps"] for e in report["rl_curve"]["eval"]] == [200]
    assert (tmp_path / "training.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--env", "Pendulm-v1"], "did you mean 'Pendulum-v1'"),
        (["--env", "CartPole-v1", "--algo", "sac"], "needs continuous actions"),
        (["--set", "rl.observations=[imu_sin, wheel]"], "unknown 'wheel' (valid: imu_sin"),
        (["--set", "task.name=juggle"], "task.name: expected one of 'balance', 'swingup'"),
        (["--set", "rl.widen.groups=[dampin]"], "rl.widen.groups: unknown 'dampin' (valid: mass"),
        (["--set", "rl.widen.groups=[damping]"], "rl.widen.spread: 0.0 widens nothing"),
    ],
)
def test_bad_training_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    proc = _sim(*args, "--out", str(tmp_path / "run"))
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


def test_a_curriculum_widens_training_midway_and_the_zoo_counts_what_it_drew(
    config_path: Path, tiny_run: Path, tmp_path: Path
) -> None:
    out = tmp_path / "widened"
    proc = _sim("--config", str(config_path), "--preset", "tiny", "--out", str(out), "--set", "rl.widen.at=0.5",
                "--set", "rl.widen.groups=[damping]", "--set", "rl.widen.spread=7.0")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "from step 256 on, training draws damping 1/8-8x (rl.widen)" in proc.stdout + proc.stderr
    # damping x4 was held out of the plain run and is inside what the widened one trained on
    plain = {r["name"]: r for r in json.loads((tiny_run / "report.json").read_text())["heldout"]}
    widened = {r["name"]: r for r in json.loads((out / "report.json").read_text())["heldout"]}
    assert plain["damping-x4"]["outside"] > 0 and widened["damping-x4"]["outside"] == 0


@pytest.mark.slow
def test_quick_preset_swings_up_in_sim_and_on_the_twin(
    config_path: Path, tmp_path: Path, native_firmware: Path
) -> None:
    """...and through the C firmware in the loop (its native build on the pty, the twin's physics its hardware)."""
    report = _train(config_path, "quick", tmp_path)
    assert report["task"] == "swingup" and report["evaluation"]["episodes"] == 100
    assert report["eval_success_rate"] >= 0.8, report["evaluation"]
    # float32 rounding in the CNNs differs between torch and onnxruntime by ~1e-6 in the estimates; the trained
    # policy's gain turns that into ~2e-5 V (docs/results.md). The policy's own output must agree within 1e-5.
    assert report["onnx_parity_action_max_abs_diff"] <= 1e-5 and report["onnx_parity_inputs"] >= 1000
    assert report["onnx_parity_max_abs_diff"] <= 1e-4
    for extra in ([], ["--firmware", str(native_firmware)]):
        summary = tmp_path / "run.json"
        proc = subprocess.run(
            [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--config",
             str(tmp_path / "config.yaml"), "--model", str(tmp_path / "policy.onnx"), "--duration", "16",
             "--json", str(summary), *extra],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        # 0 healthy, 1 finished but unhealthy: health includes latency thresholds, which a loaded machine can breach
        # (tests do not assert on wall-clock time); what must hold is the twin's verdict.
        assert proc.returncode in (0, 1), proc.stderr
        twin = json.loads(summary.read_text())["twin"]
        assert twin["task"] == "swingup" and twin["success"] and not twin["arm_past_limit"], (extra, twin)


def test_pretrain_then_train_from_its_encoders_and_refuse_another_architecture(
    config_path: Path, tmp_path: Path
) -> None:
    """`sim pretrain` writes encoders `sim train --init` starts from; a file for another architecture is refused."""
    import torch

    cli = [sys.executable, "-m", "sensorimotor.cli.sim"]
    pre = subprocess.run([*cli, "pretrain", "--config", str(config_path), "--preset", "tiny", "--out", str(tmp_path / "pre")],
                         capture_output=True, text=True, timeout=600)  # fmt: skip
    assert pre.returncode == 0, pre.stderr[-2000:]
    summary = json.loads((tmp_path / "pre" / "pretrain.json").read_text())
    assert summary["objective"] == {"imu": "kinematic", "image": "denoise"} and summary["bytes"] < 10e6
    again = subprocess.run([*cli, "pretrain", "--config", str(config_path), "--preset", "tiny", "--out", str(tmp_path / "again")],
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    a, b = (torch.load(tmp_path / d / "encoders.pt", weights_only=True) for d in ("pre", "again"))
    assert all(torch.equal(a["imu_encoder"][k], b["imu_encoder"][k]) for k in a["imu_encoder"]), (
        "same seed, same weights"
    )
    shipped_heads = sum(t.numel() for head in a["heads"].values() for t in head.values())
    assert summary["heads"] == ["imu_head", "fused_head"] and summary["head_parameters"] == shipped_heads > 0

    report = _train(config_path, "tiny", tmp_path / "run", "--init", str(tmp_path / "pre" / "encoders.pt"))
    assert report["perception"]["encoders"]["sha256"] == summary["sha256"]

    small = subprocess.run([*cli, "pretrain", "--config", str(config_path), "--preset", "tiny", "--set", "perception.dim=32",
                            "--out", str(tmp_path / "small")], capture_output=True, text=True, timeout=600)  # fmt: skip
    assert small.returncode == 0, small.stderr[-2000:]
    refused = _sim("--config", str(config_path), "--preset", "tiny", "--out", str(tmp_path / "refused"),
                   "--init", str(tmp_path / "small" / "encoders.pt"))  # fmt: skip
    assert refused.returncode == 2
    assert (
        "another architecture" in refused.stderr
        and "imu_encoder.proj.1.weight: file [32, 512], model [128, 512]" in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "refused").exists(), "a refused run writes nothing"
