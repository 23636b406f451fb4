"""The device-generic pipeline (control/device_train.py) on the balancer, with a tiny budget: perception,
PPO through it, evaluation and export run; the ONNX model is the torch chain (onnxruntime), takes the
balancer's sensors and commands both motors, and the runtime accepts it for the balancer and refuses it
for the Furuta."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sensorimotor.control.config import PPOConfig, RLConfig
from sensorimotor.control.device_train import DevicePlan, run
from sensorimotor.hardware.errors import ModelMismatchError
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.sim.balancer import BalancerConfig
from sensorimotor.sim.balancer_task import BalancerTaskConfig
from sensorimotor.sim.config import DeviceConfig

pytest.importorskip("mujoco")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("balancer")
    rl = RLConfig(total_timesteps=2048, n_envs=8, gamma=0.995, ppo=PPOConfig(n_steps=128, batch_size=256))
    run(DevicePlan.of(BalancerConfig(), BalancerTaskConfig()), rl, out, perception_windows=1024,
        perception_steps=20, eval_episodes=8)  # fmt: skip
    return out


def test_the_exported_model_is_the_torch_chain(tiny_run: Path) -> None:
    report = json.loads((tiny_run / "report.json").read_text())
    onnxruntime_worst, reference_worst = report["parity"]
    assert max(onnxruntime_worst) < 1e-5 and max(reference_worst) < 1e-5
    assert report["observations"] == ["pitch", "pitch_rate", "gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y",
                                      "accel_z", "wheel_l_angle", "wheel_r_angle", "wheel_l_rate",
                                      "wheel_r_rate"]  # fmt: skip
    assert report["eval"]["episodes"] == 8 and 0.0 <= report["eval"]["success_rate"] <= 1.0


def test_the_runtime_takes_it_for_the_balancer_and_refuses_it_for_the_furuta(tiny_run: Path) -> None:
    policy = OnnxPolicy(tiny_run / "policy.onnx")
    spec = BalancerConfig().spec()
    policy.check_device(spec)
    volts, estimates = policy.run(
        {"imu": np.zeros((1, 6, 64), np.float32), "encoder": np.zeros((1, 2, 64), np.float32)}
    )
    assert volts.shape == (2,) and estimates.shape == (12,)
    with pytest.raises(ModelMismatchError, match="encoders: model reads 2, device has 1; actuators: model drives 2"):
        policy.check_device(DeviceConfig().spec())
