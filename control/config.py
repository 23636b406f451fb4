"""The experiment config: every section of ``configs/furuta.yaml`` as one typed object.

``sim train`` validates the whole file; the runtime commands validate only the
sections they use (see :func:`sensorimotor.hardware.config.load_section`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from sensorimotor.hardware.config import LoopConfig, Section, build, doc, nested, resolve, to_dict
from sensorimotor.perception.train import PerceptionConfig
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.task import TaskConfig


@dataclass(frozen=True)
class RLConfig(Section):
    """stable-baselines3 PPO on the vectorized simulator with perception in the loop."""

    algo: Literal["ppo"] = doc("RL algorithm.", "ppo")
    total_timesteps: int = doc("Environment steps of training.", 400_000, gt=0)
    n_envs: int = doc("Simulated pendulums stepping in parallel.", 32, gt=0, le=65536)
    n_steps: int = doc("Rollout length per env between updates.", 64, gt=0)
    batch_size: int = doc("PPO minibatch size; must divide n_envs * n_steps.", 512, gt=1)
    n_epochs: int = doc("PPO epochs per update.", 5, gt=0)
    learning_rate: float = doc("Adam learning rate at the start; decays linearly to 0.", 5e-4, gt=0, le=1)
    gamma: float = doc("Discount factor.", 0.98, gt=0, le=1)
    gae_lambda: float = doc("GAE lambda.", 0.95, ge=0, le=1)
    clip_range: float = doc("PPO clip range.", 0.2, gt=0, le=1)
    ent_coef: float = doc("Entropy bonus.", 0.0, ge=0)
    net_arch: tuple[int, ...] = doc("Hidden layers of policy and value networks.", (64, 64), gt=0, le=4096)
    log_std_init: float = doc("Initial log std of the Gaussian policy.", -1.0, ge=-20, le=2)
    init_angle_deg: float = doc(
        "Training episodes start within +-this of upright: wider than the evaluation's "
        "device.initial.angle_deg, so the edge of the evaluated range is not the edge of experience.",
        15.0,
        ge=0,
        le=180,
    )

    def check(self) -> None:
        if (self.n_envs * self.n_steps) % self.batch_size:
            raise ValueError(
                f"batch_size: {self.batch_size} does not divide n_envs * n_steps = {self.n_envs * self.n_steps} "
                "(allowed: a divisor of the rollout size)"
            )


@dataclass(frozen=True)
class ClassicalConfig(Section):
    """Energy swing-up + LQR (control/classical.py): weights and gains."""

    q_theta: float = doc("LQR state weight on the arm angle (1/rad^2).", 5.0, ge=0)
    q_alpha: float = doc("LQR state weight on the pendulum angle (1/rad^2).", 50.0, gt=0)
    q_theta_dot: float = doc("LQR state weight on the arm rate (s^2/rad^2).", 0.5, ge=0)
    q_alpha_dot: float = doc("LQR state weight on the pendulum rate (s^2/rad^2).", 1.0, ge=0)
    r_volts: float = doc("LQR input weight (1/V^2).", 1.0, gt=0)
    switch_deg: float = doc("Switch to LQR within +-this of upright.", 25.0, gt=0, le=90)
    energy_gain: float = doc("Swing-up gain: full-scale voltage per 2 mgl of missing energy.", 10.0, gt=0)
    energy_target: float = doc(
        "Swing-up energy target, in units of 2 mgl above upright at rest (a little over 0 makes up for friction).",
        0.1,
        ge=-0.5,
        le=1,
    )
    phase_rate: float = doc(
        "Swing-up: |alpha_dot cos alpha| (rad/s) from which the pump acts at full strength (linear below).", 1.0, gt=0
    )
    total_energy: bool = doc("Swing-up on the whole device's energy (arm included), not the pendulum's alone.", True)
    arm_kp: float = doc("Swing-up arm centring, V per rad (keeps the arm off its cable limit).", 3.0, ge=0)
    arm_kd: float = doc("Swing-up arm damping, V per rad/s.", 0.3, ge=0)


@dataclass(frozen=True)
class EvalConfig(Section):
    """Evaluation in simulation."""

    episodes: int = doc("Evaluation episodes (parallel).", 100, gt=0)
    episode_s: float = doc(
        "Evaluation episode length (s); 0: the task's own (balance 10 s, swingup reach_s + hold_s).",
        0.0,
        ge=0,
        le=3600,
    )
    parity_inputs: int = doc("Sensor inputs compared between onnxruntime and torch.", 1000, gt=0)


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """Everything ``sim train`` needs."""

    seed: int = doc("Master seed: same seed, same run.", 0, ge=0, lt=2**31)
    device: DeviceConfig = nested(DeviceConfig, "The (simulated) device.")
    task: TaskConfig = nested(TaskConfig, "The task: balance or swingup (docs/tasks.md).")
    perception: PerceptionConfig = nested(PerceptionConfig, "Perception training.")
    rl: RLConfig = nested(RLConfig, "Controller training.")
    classical: ClassicalConfig = nested(ClassicalConfig, "The classical baseline: energy swing-up + LQR.")
    evaluation: EvalConfig = nested(EvalConfig, "Evaluation.")
    loop: LoopConfig = nested(LoopConfig, "Host control loop.")


def load_experiment(
    path: str | Path | None = None, preset: str | None = None, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Load and validate the whole config (``path`` None: the shipped default), preset and ``--set`` applied."""
    data, source = resolve(path, preset, overrides)
    return build(ExperimentConfig, data, source=source)


def resolved_yaml(cfg: ExperimentConfig, presets: dict[str, Any], provenance: str) -> str:
    """The config as ``sim train`` resolved it, as YAML that loads back to ``cfg``.

    The ``presets`` section is carried over so the file accepts ``--preset`` like the
    original; ``provenance`` (where it came from) goes into a comment.
    """
    body = yaml.safe_dump(to_dict(cfg), sort_keys=False)
    tail = yaml.safe_dump({"presets": presets}, sort_keys=False) if presets else ""
    header = "".join(f"# {line}\n" for line in provenance.splitlines())
    return header + body + tail
