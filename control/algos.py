"""The stable-baselines3 side of the algorithm registry (:mod:`sensorimotor.control.algorithms`).

* :func:`build_model` — a fresh model of ``rl.algo`` (hyperparameters from the section of its name).
* :class:`DeterministicActor` — what ``model.predict(obs, deterministic=True)`` computes, as one
  torch module for export: observation normalization (VecNormalize statistics), the actor MLP,
  SAC's squashed Gaussian mean (tanh) and its scaling to the action bounds, or PPO's clipping.
* :func:`policy_kwargs` — the architecture a config asks for; a checkpoint is refused when its
  own differs (see :mod:`sensorimotor.control.checkpoints`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize
from torch import nn

from sensorimotor.control.algorithms import ALGORITHMS, Algorithm, algorithm
from sensorimotor.control.config import RLConfig


def policy_kwargs(rl: RLConfig) -> dict[str, Any]:
    """The policy architecture the config asks for (what SB3 stores in a checkpoint)."""
    return algorithm(rl.algo).policy_kwargs(rl)


def build_model(rl: RLConfig, env: VecEnv, seed: int, tensorboard_log: str | None = None) -> BaseAlgorithm:
    """A fresh model of ``rl.algo`` on ``env`` (CPU: the networks are small)."""
    entry = algorithm(rl.algo)
    return entry.load_class()(
        "MlpPolicy", env, gamma=rl.gamma, seed=seed, device="cpu", verbose=0, tensorboard_log=tensorboard_log,
        policy_kwargs=entry.policy_kwargs(rl), **entry.hyperparameters(getattr(rl, rl.algo)),
    )  # fmt: skip


def registry_entry(model: BaseAlgorithm) -> Algorithm:
    """The registry's entry for a built or loaded model."""
    for entry in ALGORITHMS.values():
        if type(model).__name__ == entry.sb3_class:
            return entry
    raise ValueError(f"{type(model).__name__} is not one of the registered algorithms ({', '.join(ALGORITHMS)})")


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
        entry = registry_entry(model)
        self.net = nn.Sequential(nn.Flatten(), *entry.actor(policy))
        self.squash = entry.squashed(policy)
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
