"""The registry of RL algorithms `sim train` offers: one entry per stable-baselines3 algorithm.

An entry says how to build the algorithm from its config section, what it defaults to where
the ``rl`` section leaves a field unset (``n_envs``, ``gamma``, ``net_arch``: an off-policy
learner wants one env and big critics, PPO many envs and small networks), which action
spaces it trains on, and which policy modules compute its deterministic action for export.
The config, the trainer, checkpoints and the export all read it; nothing else names an
algorithm. It imports no torch or SB3 (the command line and the config checks read it).

Adding an algorithm: its hyperparameter section in :mod:`sensorimotor.control.config` (an
``RLConfig`` field named like the entry) and one entry in :data:`ALGORITHMS`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Kwargs = dict[str, Any]


def _no_check(rl: Any) -> None:
    """Most algorithms have no cross-field rule of their own."""


@dataclass(frozen=True)
class Algorithm:
    """One algorithm: its SB3 class, its defaults and how the generic code builds and exports it."""

    sb3_class: str  # attribute of the stable_baselines3 package
    n_envs: int  # defaults where the config's rl section leaves the field unset
    gamma: float
    net_arch: tuple[int, ...]
    discrete: bool  # also trains on Discrete action spaces
    hyperparameters: Callable[[Any], Kwargs]  # the section's values as constructor keywords
    policy_kwargs: Callable[[Any], Kwargs]  # from the whole rl section: what SB3 stores in a checkpoint
    actor: Callable[[Any], tuple[Any, ...]]  # policy -> the modules computing the action mean, in order
    squashed: Callable[[Any], bool]  # policy -> whether that mean goes through tanh to the action bounds
    normalize_reward: Callable[[Any], bool] = lambda section: False
    check: Callable[[Any], None] = _no_check  # cross-field rules on the whole rl section

    def load_class(self) -> Any:
        """The stable-baselines3 class (imported here, not at registry import)."""
        return getattr(importlib.import_module("stable_baselines3"), self.sb3_class)


def _linear_decay(lr: float) -> Callable[[float], float]:
    """Learning rate falling linearly to 0 (SB3 passes the remaining progress, 1 -> 0)."""
    return lambda progress: lr * progress


def _ppo(p: Any) -> Kwargs:
    lr = _linear_decay(p.learning_rate) if p.lr_schedule == "linear" else p.learning_rate
    return {
        "learning_rate": lr, "n_steps": p.n_steps, "batch_size": p.batch_size, "n_epochs": p.n_epochs,
        "gae_lambda": p.gae_lambda, "clip_range": p.clip_range, "ent_coef": p.ent_coef, "vf_coef": p.vf_coef,
        "max_grad_norm": p.max_grad_norm, "use_sde": p.use_sde, "sde_sample_freq": p.sde_sample_freq,
    }  # fmt: skip


def _ppo_check(rl: Any) -> None:
    rollout = rl.n_envs * rl.ppo.n_steps
    if rollout % rl.ppo.batch_size:
        raise ValueError(
            f"ppo.batch_size: {rl.ppo.batch_size} does not divide n_envs * ppo.n_steps = {rollout} "
            "(allowed: a divisor of the rollout size)"
        )


def _sac(s: Any) -> Kwargs:
    return {
        "learning_rate": s.learning_rate, "buffer_size": s.buffer_size, "learning_starts": s.learning_starts,
        "batch_size": s.batch_size, "tau": s.tau, "train_freq": s.train_freq, "gradient_steps": s.gradient_steps,
        "ent_coef": "auto" if s.ent_coef == 0 else s.ent_coef,
    }  # fmt: skip


ALGORITHMS: Mapping[str, Algorithm] = {
    "ppo": Algorithm(
        sb3_class="PPO", n_envs=32, gamma=0.98, net_arch=(64, 64), discrete=True, hyperparameters=_ppo,
        policy_kwargs=lambda rl: {
            "net_arch": {"pi": list(rl.net_arch), "vf": list(rl.net_arch)}, "log_std_init": rl.ppo.log_std_init
        },
        actor=lambda policy: (policy.mlp_extractor.policy_net, policy.action_net),
        squashed=lambda policy: bool(policy.squash_output),  # gSDE's squash_output
        normalize_reward=lambda p: bool(p.normalize_reward), check=_ppo_check,
    ),
    "sac": Algorithm(
        # rl-baselines3-zoo's and SB3's defaults: one env, a gradient step per transition, 256x256 critics
        sb3_class="SAC", n_envs=1, gamma=0.99, net_arch=(256, 256), discrete=False, hyperparameters=_sac,
        policy_kwargs=lambda rl: {"net_arch": list(rl.net_arch), "log_std_init": rl.sac.log_std_init},
        actor=lambda policy: (policy.actor.latent_pi, policy.actor.mu),
        squashed=lambda policy: True,
    ),
}  # fmt: skip

#: The algorithm a config that names none trains with (``rl.algo``'s default).
DEFAULT_ALGO = "ppo"

#: The ``rl`` fields an algorithm supplies when the config leaves them unset.
DEFAULTED_FIELDS = ("n_envs", "gamma", "net_arch")


def algorithm(name: str) -> Algorithm:
    """The registry entry ``name``; ValueError naming the valid ones."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"algo: unknown {name!r} (valid: {', '.join(ALGORITHMS)})") from None


def defaults_text(field: str) -> str:
    """``ppo 32, sac 1``: each algorithm's default for an rl field, for help texts."""
    return ", ".join(f"{name} {list(getattr(a, field)) if field == 'net_arch' else getattr(a, field)}"
                     for name, a in ALGORITHMS.items())  # fmt: skip


def with_defaults(rl: Mapping[str, Any]) -> dict[str, Any]:
    """The raw ``rl`` section with the chosen algorithm's defaults where it leaves a field unset."""
    entry = ALGORITHMS.get(str(rl.get("algo", DEFAULT_ALGO)))
    out = dict(rl)
    if entry is not None:  # an unknown name is refused by RLConfig with the valid ones
        for field in DEFAULTED_FIELDS:
            out.setdefault(field, getattr(entry, field))
    return out
