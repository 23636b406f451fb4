"""The RL algorithms ``sim train`` offers (stable-baselines3 PPO and SAC), built from the typed config.

* :func:`build_model` — a fresh PPO or SAC from ``rl`` (hyperparameters from ``rl.ppo`` / ``rl.sac``).
* :class:`DeterministicActor` — what ``model.predict(obs, deterministic=True)`` computes, as one
  torch module for export: observation normalization (VecNormalize statistics), the actor MLP,
  SAC's squashed Gaussian mean (tanh) and its scaling to the action bounds, or PPO's clipping.
* :func:`policy_kwargs` — the architecture a config asks for; a checkpoint is refused when its
  own differs (see :mod:`sensorimotor.control.checkpoints`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO, SAC
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

from sensorimotor.control.config import RLConfig

ALGORITHMS: dict[str, type[BaseAlgorithm]] = {"ppo": PPO, "sac": SAC}


def _linear_decay(lr: float) -> Callable[[float], float]:
    """Learning rate falling linearly to 0 (SB3 passes the remaining progress, 1 -> 0)."""
    return lambda progress: lr * progress


def policy_kwargs(rl: RLConfig) -> dict[str, Any]:
    """The policy architecture the config asks for (what SB3 stores in a checkpoint)."""
    if rl.algo == "ppo":
        arch = list(rl.net_arch)
        return {"net_arch": {"pi": arch, "vf": arch}, "log_std_init": rl.ppo.log_std_init}
    return {"net_arch": list(rl.net_arch), "log_std_init": rl.sac.log_std_init}


def build_model(rl: RLConfig, env: VecEnv, seed: int, tensorboard_log: str | None = None) -> BaseAlgorithm:
    """A fresh PPO or SAC on ``env`` (CPU: the networks are small)."""
    common: dict[str, Any] = {
        "gamma": rl.gamma, "seed": seed, "device": "cpu", "verbose": 0, "tensorboard_log": tensorboard_log,
        "policy_kwargs": policy_kwargs(rl),
    }  # fmt: skip
    if rl.algo == "ppo":
        p = rl.ppo
        lr = _linear_decay(p.learning_rate) if p.lr_schedule == "linear" else p.learning_rate
        return PPO(
            "MlpPolicy", env, learning_rate=lr, n_steps=p.n_steps, batch_size=p.batch_size, n_epochs=p.n_epochs,
            gae_lambda=p.gae_lambda, clip_range=p.clip_range, ent_coef=p.ent_coef, vf_coef=p.vf_coef,
            max_grad_norm=p.max_grad_norm, use_sde=p.use_sde, sde_sample_freq=p.sde_sample_freq, **common,
        )  # fmt: skip
    s = rl.sac
    return SAC(
        "MlpPolicy", env, learning_rate=s.learning_rate, buffer_size=s.buffer_size, learning_starts=s.learning_starts,
        batch_size=s.batch_size, tau=s.tau, train_freq=s.train_freq, gradient_steps=s.gradient_steps,
        ent_coef="auto" if s.ent_coef == 0 else s.ent_coef, **common,
    )  # fmt: skip


def find_vecnormalize(env: VecEnv | None) -> VecNormalize | None:
    """The VecNormalize wrapper in ``env``'s wrapper chain, if any."""
    while env is not None:
        if isinstance(env, VecNormalize):
            return env
        env = getattr(env, "venv", None)
    return None


class DeterministicActor(nn.Module):
    """Observation (B, n) in env units -> action (B, m) in env units: SB3's deterministic predict as a graph.

    Observation normalization (when trained with VecNormalize) is ``clip((obs - mean) / sqrt(var + eps))``
    with the statistics frozen as buffers. SAC's actor outputs the mean of a Gaussian squashed by
    tanh into [-1, 1], then rescaled to ``[low, high]``; PPO's mean is clipped to ``[low, high]``
    (or, for a Discrete action space, its most probable action).
    """

    mean: torch.Tensor
    inv_std: torch.Tensor
    low: torch.Tensor
    high: torch.Tensor

    def __init__(self, model: BaseAlgorithm, normalizer: VecNormalize | None = None) -> None:
        super().__init__()
        policy: Any = model.policy
        if isinstance(model, SAC):
            self.net: nn.Module = nn.Sequential(nn.Flatten(), policy.actor.latent_pi, policy.actor.mu)
            self.squash = True
        else:
            self.net = nn.Sequential(nn.Flatten(), policy.mlp_extractor.policy_net, policy.action_net)
            self.squash = bool(policy.squash_output)
        n_obs = int(np.prod(model.observation_space.shape))  # type: ignore[arg-type]
        mean, inv_std, clip = np.zeros(n_obs), np.ones(n_obs), np.inf
        if normalizer is not None and normalizer.norm_obs:
            rms: Any = normalizer.obs_rms  # a RunningMeanStd for a Box observation space
            mean, inv_std, clip = rms.mean, 1.0 / np.sqrt(rms.var + normalizer.epsilon), normalizer.clip_obs
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("inv_std", torch.as_tensor(inv_std, dtype=torch.float32))
        self.clip_obs = float(clip)
        space: Any = model.action_space
        self.discrete = not hasattr(space, "low")  # Discrete (PPO only): the most probable action
        low, high = (0.0, 0.0) if self.discrete else (space.low, space.high)
        self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(high, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = (obs - self.mean) * self.inv_std
        if np.isfinite(self.clip_obs):
            x = torch.clamp(x, -self.clip_obs, self.clip_obs)
        a = self.net(x)
        if self.discrete:
            return torch.argmax(a, dim=-1)
        if self.squash:
            return self.low + 0.5 * (torch.tanh(a) + 1.0) * (self.high - self.low)
        return torch.maximum(torch.minimum(a, self.high), self.low)
