"""The experiment config: every section of ``configs/furuta.yaml`` as one typed object.

``sim train`` validates the whole file; the runtime commands validate only the
sections they use (see :func:`sensorimotor.hardware.config.load_section`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sensorimotor.hardware.config import LoopConfig, apply_preset, build, doc, nested, read_yaml
from sensorimotor.perception.train import PerceptionConfig
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.task import TaskConfig


@dataclass(frozen=True)
class RLConfig:
    """stable-baselines3 PPO on the vectorized simulator with perception in the loop."""

    algo: Literal["ppo"] = doc("RL algorithm.", "ppo")
    total_timesteps: int = doc("Environment steps of training.", 400_000)
    n_envs: int = doc("Simulated pendulums stepping in parallel.", 32)
    n_steps: int = doc("Rollout length per env between updates.", 64)
    batch_size: int = doc("PPO minibatch size.", 512)
    n_epochs: int = doc("PPO epochs per update.", 5)
    learning_rate: float = doc("Adam learning rate at the start; decays linearly to 0.", 5e-4)
    gamma: float = doc("Discount factor.", 0.98)
    gae_lambda: float = doc("GAE lambda.", 0.95)
    clip_range: float = doc("PPO clip range.", 0.2)
    ent_coef: float = doc("Entropy bonus.", 0.0)
    net_arch: tuple[int, ...] = doc("Hidden layers of policy and value networks.", (64, 64))
    log_std_init: float = doc("Initial log std of the Gaussian policy.", -1.0)
    init_angle_deg: float = doc(
        "Training episodes start within +-this of upright: wider than the evaluation's "
        "device.initial.angle_deg, so the edge of the evaluated range is not the edge of experience.", 15.0
    )

    def __post_init__(self) -> None:
        if self.total_timesteps <= 0 or self.n_envs <= 0 or self.n_steps <= 0:
            raise ValueError("total_timesteps: total_timesteps, n_envs and n_steps must be > 0")
        if (self.n_envs * self.n_steps) % self.batch_size:
            raise ValueError("batch_size: must divide n_envs * n_steps")


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation in simulation."""

    episodes: int = doc("Evaluation episodes (parallel).", 100)
    episode_s: float = doc("Evaluation episode length (s).", 10.0)
    parity_inputs: int = doc("Sensor inputs compared between onnxruntime and torch.", 1000)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything ``sim train`` needs."""

    seed: int = doc("Master seed: same seed, same run.", 0)
    device: DeviceConfig = nested(DeviceConfig, "The (simulated) device.")
    task: TaskConfig = nested(TaskConfig, "The balancing task.")
    perception: PerceptionConfig = nested(PerceptionConfig, "Perception training.")
    rl: RLConfig = nested(RLConfig, "Controller training.")
    evaluation: EvalConfig = nested(EvalConfig, "Evaluation.")
    loop: LoopConfig = nested(LoopConfig, "Host control loop.")


def load_experiment(path: str | Path, preset: str | None = None) -> ExperimentConfig:
    """Load and validate the whole config file (with an optional preset applied)."""
    data = apply_preset(read_yaml(path), preset, str(path))
    return build(ExperimentConfig, data, source=str(path))
