"""The device-generic pipeline (control/device_train.py) on the balancer through ``sim train --config
configs/balancer.yaml`` with a tiny budget: perception, PPO through it, evaluation and export run; the ONNX model is the torch chain (onnxruntime), takes the
balancer's sensors and commands both motors, and the runtime accepts it for the balancer and refuses it
for the Furuta."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sensorimotor.cli.sim import main as sim_main
from sensorimotor.control.device_train import load_run
from sensorimotor.hardware.errors import ModelMismatchError
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.sim.balancer import BalancerConfig
from sensorimotor.sim.balancer_task import BalancerTaskConfig
from sensorimotor.sim.config import DeviceConfig

pytest.importorskip("mujoco")

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "balancer.yaml"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``sim train --config configs/balancer.yaml --preset tiny``: every stage with a tiny budget."""
    out = tmp_path_factory.mktemp("balancer") / "run"
    assert sim_main(["train", "--config", str(CONFIG), "--preset", "tiny", "--out", str(out)]) == 0
    return out


def test_sim_train_writes_a_config_that_loads_back_as_the_same_run(tiny_run: Path) -> None:
    first = load_run(CONFIG, "tiny", [], tiny_run)
    again = load_run(tiny_run / "config.yaml", None, [], tiny_run)
    assert again.plan.config == first.plan.config and again.rl == first.rl
    assert (again.seed, again.windows, again.perception_steps, again.eval_episodes) == (0, 1024, 20, 8)
    assert again.rl.total_timesteps == 2048 and again.rl.gamma == 0.995 and again.rl.normalize_obs


def test_sim_train_refuses_resume_for_the_balancer(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sim_main(["train", "--resume", str(tiny_run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--resume continues a furuta run" in err, err


def test_the_exported_model_is_the_torch_chain(tiny_run: Path) -> None:
    report = json.loads((tiny_run / "report.json").read_text())
    onnxruntime_worst, reference_worst = report["parity"]
    assert max(onnxruntime_worst) < 1e-5 and max(reference_worst) < 1e-5
    assert report["observations"] == ["pitch", "pitch_rate", "gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y",
                                      "accel_z", "wheel_l_angle", "wheel_r_angle", "wheel_l_rate",
                                      "wheel_r_rate", "distance", "speed", "heading"]  # fmt: skip
    assert report["eval"]["episodes"] == 8 and 0.0 <= report["eval"]["success_rate"] <= 1.0


def test_the_runtime_takes_it_for_the_balancer_and_refuses_it_for_the_furuta(tiny_run: Path) -> None:
    policy = OnnxPolicy(tiny_run / "policy.onnx")
    assert policy.tilt_estimate == "pitch"  # hw run's fall stop watches the pitch estimate
    spec = BalancerConfig().spec()
    policy.check_device(spec)
    volts, estimates = policy.run(
        {"imu": np.zeros((1, 6, 64), np.float32), "encoder": np.zeros((1, 2, 64), np.float32)}
    )
    assert volts.shape == (2,) and estimates.shape == (15,)
    with pytest.raises(ModelMismatchError, match="encoders: model reads 2, device has 1; actuators: model drives 2"):
        policy.check_device(DeviceConfig().spec())


def test_the_same_seed_fine_tunes_the_same_estimator() -> None:
    """The head's initial weights come from the seed too (they did not: two runs of seed 0 differed)."""
    import torch

    from sensorimotor.control.device_train import DevicePlan, train_perception

    plan = DevicePlan.of(BalancerConfig(), BalancerTaskConfig())
    torch.manual_seed(123)  # whatever the global state before, the run's seed decides
    first, _ = train_perception(plan, 0, 512, 5)
    torch.manual_seed(456)
    again, _ = train_perception(plan, 0, 512, 5)
    assert all(torch.equal(p, q) for p, q in zip(first.parameters(), again.parameters(), strict=True))


def test_twin_runs_take_the_balancers_task_and_episode(tiny_run: Path) -> None:
    from sensorimotor.control.twin_runs import window_s

    assert window_s(tiny_run) == ("balance", 6.0)  # its task's 5 s episode and a second for the start
