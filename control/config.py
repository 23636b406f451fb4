"""The experiment config: every section of ``configs/furuta.yaml`` as one typed object.

``sim train`` validates the whole file; the runtime commands validate only the
sections they use (see :func:`sensorimotor.configs.schema.load_section`).
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from sensorimotor.configs.schema import Section, build, doc, nested, resolve, to_dict
from sensorimotor.control.algorithms import ALGORITHMS, DEFAULT_ALGO, algorithm, defaults_text, with_defaults
from sensorimotor.control.names import DEVICE_ENV
from sensorimotor.hardware.config import LoopConfig
from sensorimotor.perception.config import OBS_NAMES, PerceptionConfig, PretrainConfig
from sensorimotor.sim.config import RANDOMIZED_GROUPS, DeviceConfig
from sensorimotor.sim.task import TaskConfig


@dataclass(frozen=True)
class PPOConfig(Section):
    """stable-baselines3 PPO hyperparameters (used when rl.algo is ppo)."""

    n_steps: int = doc("Rollout length per env between updates.", 64, gt=0)
    batch_size: int = doc("Minibatch size; must divide rl.n_envs * n_steps.", 512, gt=1)
    n_epochs: int = doc("Epochs over each rollout.", 5, gt=0)
    learning_rate: float = doc("Adam learning rate at the start.", 5e-4, gt=0, le=1)
    lr_schedule: Literal["linear", "constant"] = doc(
        "linear: decay to 0 over training (lets PPO settle instead of ending in a dip); constant.", "linear"
    )
    gae_lambda: float = doc("GAE lambda.", 0.95, ge=0, le=1)
    clip_range: float = doc("PPO clip range.", 0.2, gt=0, le=1)
    ent_coef: float = doc("Entropy bonus.", 0.0, ge=0)
    vf_coef: float = doc("Value-loss weight.", 0.5, gt=0)
    max_grad_norm: float = doc("Gradient clipping norm.", 0.5, gt=0)
    log_std_init: float = doc("Initial log std of the Gaussian policy.", -1.0, ge=-20, le=2)
    use_sde: bool = doc("State-dependent exploration (gSDE) instead of independent Gaussian noise.", False)
    sde_sample_freq: int = doc("Resample the gSDE noise every this many steps (-1: once per rollout).", -1, ge=-1)
    normalize_reward: bool = doc("Scale rewards by a running return std (VecNormalize); training only.", False)


@dataclass(frozen=True)
class SACConfig(Section):
    """stable-baselines3 SAC hyperparameters (used when rl.algo is sac)."""

    learning_rate: float = doc("Adam learning rate (actor, critics, entropy).", 1e-3, gt=0, le=1)
    buffer_size: int = doc("Replay buffer capacity (transitions).", 1_000_000, gt=0)
    batch_size: int = doc("Minibatch size.", 256, gt=0)
    learning_starts: int = doc("Random-action steps before learning begins.", 100, ge=0)
    tau: float = doc("Target-network soft-update rate.", 0.005, gt=0, le=1)
    train_freq: int = doc("Update every this many steps (per env).", 1, gt=0)
    gradient_steps: int = doc("Gradient steps per update (-1: as many as env steps collected).", 1, ge=-1)
    ent_coef: float = doc("Entropy coefficient; 0: learned to reach the target entropy (SB3 'auto').", 0.0, ge=0)
    log_std_init: float = doc("Initial log std of the squashed Gaussian policy.", -3.0, ge=-20, le=2)

    def check(self) -> None:
        if self.gradient_steps == 0:
            raise ValueError("gradient_steps: 0 would never learn (allowed: >= 1, or -1)")


@dataclass(frozen=True)
class WidenConfig(Section):
    """A curriculum over devices: training draws the device's own randomization first, wider groups later.

    A policy that has not yet learnt the task gets nothing from a device it cannot yet do, so
    widening from the start teaches it one compromise (docs/sim-to-real.md); widening once it
    swings up teaches it the heavier devices too.
    """

    at: float = doc(
        "Fraction of rl.total_timesteps after which new training episodes draw `groups` over the wider range "
        "(1: never). Evaluations keep the device's own ranges.", 1.0, ge=0, le=1,
    )  # fmt: skip
    groups: tuple[str, ...] = doc("Groups of device.randomization widened (" + ", ".join(RANDOMIZED_GROUPS) + ").", ())
    spread: float = doc(
        "Their spread from `at` on: multipliers drawn log-uniformly over [1 / (1 + spread), 1 + spread].",
        0.0, ge=0, le=50,
    )  # fmt: skip

    def check(self) -> None:
        unknown = [g for g in self.groups if g not in RANDOMIZED_GROUPS]
        if unknown:
            raise ValueError(f"groups: unknown {', '.join(map(repr, unknown))} (valid: {', '.join(RANDOMIZED_GROUPS)})")
        if self.groups and self.spread <= 0:
            raise ValueError(f"spread: {self.spread} widens nothing (allowed: > 0 when groups are listed)")

    @property
    def active(self) -> bool:
        return bool(self.groups) and self.at < 1.0


@dataclass(frozen=True)
class RLConfig(Section):
    """The controller's training: environment, algorithm and budget; per-algorithm hyperparameters below."""

    algo: str = doc(
        "RL algorithm (stable-baselines3): " + ", ".join(ALGORITHMS) + "; its hyperparameters in the section of "
        "its name. It also sets n_envs, gamma and net_arch where the config leaves them unset.", DEFAULT_ALGO,
    )  # fmt: skip
    env: str = doc(
        f"'{DEVICE_ENV}': the simulated device seen through perception; or any registered Gymnasium id "
        "with vector observations (e.g. Pendulum-v1), to check the trainer against published results.",
        DEVICE_ENV,
    )
    total_timesteps: int = doc("Environment steps of training.", 400_000, gt=0)
    n_envs: int = doc(
        f"Environments stepping in parallel (unset: the algorithm's, {defaults_text('n_envs')}).", 32, gt=0, le=65536
    )
    gamma: float = doc(f"Discount factor (unset: the algorithm's, {defaults_text('gamma')}).", 0.98, gt=0, le=1)
    net_arch: tuple[int, ...] = doc(
        f"Hidden layers of the policy and value (critic) networks (unset: the algorithm's, "
        f"{defaults_text('net_arch')}).", (64, 64), gt=0, le=4096,
    )  # fmt: skip
    normalize_obs: bool = doc(
        "Normalize observations by running mean/std (VecNormalize); the statistics go into the ONNX graph.", False
    )
    observations: tuple[str, ...] = doc(
        "Perception outputs the policy sees (device env), a subset of: " + ", ".join(OBS_NAMES) + ".", OBS_NAMES
    )
    history: int = doc(
        "device env: the policy also sees this many past control steps' observations and commands "
        "(0: the present only). Lets it tell devices apart online; carried in the ONNX graph as a state.",
        0,
        ge=0,
        le=64,
    )
    init_angle_deg: float = doc(
        "balance task: training episodes start within +-this of upright, wider than the evaluation's "
        "device.initial.angle_deg, so the edge of the evaluated range is not the edge of experience.",
        15.0,
        ge=0,
        le=180,
    )
    eval_every: int = doc("Evaluate the deterministic policy every this many steps (0: only at the end).", 0, ge=0)
    eval_episodes: int = doc("Episodes of each periodic evaluation.", 50, gt=0)
    checkpoint_every: int = doc("Save a checkpoint every this many steps (0: only at the end).", 0, ge=0)
    widen: WidenConfig = nested(WidenConfig, "device env: a curriculum that widens the device's randomization late.")
    ppo: PPOConfig = nested(PPOConfig, "PPO hyperparameters.")
    sac: SACConfig = nested(SACConfig, "SAC hyperparameters.")

    def check(self) -> None:
        algorithm(self.algo).check(self)  # an unknown name first, then the algorithm's own rules
        unknown = [o for o in self.observations if o not in OBS_NAMES]
        if unknown:
            raise ValueError(f"observations: unknown {', '.join(map(repr, unknown))} (valid: {', '.join(OBS_NAMES)})")
        if not self.observations or len(set(self.observations)) != len(self.observations):
            raise ValueError(f"observations: {list(self.observations)} must be non-empty without repeats")
        if self.history and self.env != DEVICE_ENV:
            raise ValueError(
                f"history: {self.history} needs env '{DEVICE_ENV}' (a Gymnasium env brings its own observations)"
            )
        if self.widen.active and self.env != DEVICE_ENV:
            raise ValueError(f"widen: needs env '{DEVICE_ENV}' (a Gymnasium env brings its own devices)")
        if self.env != DEVICE_ENV:
            check_gym_env(self.env)


def check_gym_env(env_id: str) -> None:
    """Raise ValueError naming the valid ids unless ``env_id`` is a registered Gymnasium env."""
    from gymnasium.envs.registration import registry  # imported here: only `sim train` validates rl

    if env_id not in registry:
        close = difflib.get_close_matches(env_id, list(registry), n=3)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        valid = ", ".join(sorted(k for k in registry if "/" not in k))
        raise ValueError(
            f"env: unknown env {env_id!r}: {hint}valid: '{DEVICE_ENV}' or a registered Gymnasium id ({valid})"
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
    heldout_episodes: int = doc(
        "Episodes per device of the held-out zoo (configs/zoo.yaml, docs/sim-to-real.md) on which `sim train` "
        "scores the exported model: report.json `heldout_success` and a row per device.", 10, gt=0, le=10000,
    )  # fmt: skip
    oracle_generations: int = doc(
        "CMA-ES generations the oracle spends on each zoo device the model fails, to say whether any controller "
        "can succeed there (docs/sim-to-real.md); fewer is faster and may call a feasible device infeasible.",
        12, gt=0, le=1000,
    )  # fmt: skip


@dataclass(frozen=True)
class ExperimentConfig(Section):
    """Everything ``sim train`` needs."""

    seed: int = doc("Master seed: same seed, same run.", 0, ge=0, lt=2**31)
    device: DeviceConfig = nested(DeviceConfig, "The (simulated) device.")
    task: TaskConfig = nested(TaskConfig, "The task: balance or swingup (docs/tasks.md).")
    perception: PerceptionConfig = nested(PerceptionConfig, "Perception fine-tuning in `sim train`.")
    pretrain: PretrainConfig = nested(PretrainConfig, "Self-supervised encoder pretraining (`sim pretrain`).")
    rl: RLConfig = nested(RLConfig, "Controller training.")
    classical: ClassicalConfig = nested(ClassicalConfig, "The classical baseline: energy swing-up + LQR.")
    evaluation: EvalConfig = nested(EvalConfig, "Evaluation.")
    loop: LoopConfig = nested(LoopConfig, "Host control loop.")

    def trained_device(self) -> DeviceConfig:
        """The widest device training drew from: ``device``, widened when the curriculum widens it."""
        w = self.rl.widen
        if not w.active:
            return self.device
        return dataclasses.replace(self.device, randomization=self.device.randomization.widened(w.groups, w.spread))


def load_experiment(
    path: str | Path | None = None, preset: str | None = None, overrides: Sequence[str] = ()
) -> ExperimentConfig:
    """Load and validate the whole config (``path`` None: the shipped default), preset and ``--set`` applied."""
    data, source = resolve(path, preset, overrides)
    data = {**data, "rl": with_defaults(data.get("rl") or {})}
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


def resolved_run(
    source: str | Path | None, preset: str | None, overrides: Sequence[str], out: Path
) -> tuple[ExperimentConfig, str]:  # fmt: skip
    """A run's config and the config.yaml ``sim train`` writes for it: the resolved values, where they came
    from, and how to reproduce the run (``sim train --config OUT/config.yaml``)."""
    from sensorimotor.configs.schema import DEFAULT_CONFIG, read_yaml

    path = Path(source) if source is not None else DEFAULT_CONFIG
    cfg = load_experiment(path, preset, overrides)
    provenance = (
        f"Resolved by `sim train` from {path}" + (f", preset {preset}" if preset else "")
        + "".join(f", --set {o}" for o in overrides)
        + f".\nLoads back as it is: sim train --config {out / 'config.yaml'} reproduces this run."
    )  # fmt: skip
    return cfg, resolved_yaml(cfg, read_yaml(path).get("presets") or {}, provenance)
