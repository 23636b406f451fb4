"""A stable-baselines3 ``VecEnv`` over the compiled core (same-step autoreset, SB3's convention).

The observation returned for an env whose episode ended is the first of its next
episode; the last one is in ``infos[i]["terminal_observation"]``. Seeding as
:class:`~sensorimotor.sim.vector.FurutaVectorEnv`: sub-env i of seed s = single env of seed s + i.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn

from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.envs import observe
from sensorimotor.sim.task import TaskConfig
from sensorimotor.sim.vector import FurutaBatch


class OneBatchVecEnv(VecEnv):
    """An SB3 ``VecEnv`` whose N envs are one batched object: no sub-env objects exist, so attribute access and
    method calls go to :meth:`target` (the env itself unless a subclass says otherwise) and nothing is wrapped."""

    def target(self) -> Any:
        return self

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.target(), attr_name)] * len(self._indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.target(), attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self.target(), method_name)(*args, **kwargs)] * len(self._indices(indices))

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._indices(indices))

    def _indices(self, indices: Any) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)

    def ended(
        self, obs: np.ndarray, done: np.ndarray, truncated: np.ndarray
    ) -> tuple[list[dict[str, Any]], np.ndarray]:
        """Each env's info (the last observation and whether time ran out, where its episode ended) and the ended envs."""
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        idx = np.flatnonzero(done)
        for i in idx:
            infos[i]["terminal_observation"] = obs[i].copy()
            infos[i]["TimeLimit.truncated"] = bool(truncated[i])
        return infos, idx


class FurutaSB3VecEnv(OneBatchVecEnv):
    """N pendulums as one SB3 ``VecEnv`` (arguments as :class:`~sensorimotor.sim.envs.FurutaBalanceEnv`)."""

    def __init__(
        self, num_envs: int, device: DeviceConfig | None = None, task: TaskConfig | None = None, *,
        config: str | Path | None = None, overrides: Sequence[str] = (), randomize: bool = True,
        obs_mode: str = "raw", max_episode_steps: int | None = None, seed: int = 0,
    ) -> None:  # fmt: skip
        self.batch = FurutaBatch(num_envs, device, task, config, overrides, randomize, obs_mode, max_episode_steps)
        super().__init__(num_envs, self.batch.single_observation_space, self.batch.single_action_space)
        self._seed: int | None = seed
        self._actions = np.zeros((num_envs, 1), np.float32)

    def target(self) -> FurutaBatch:
        return self.batch

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def reset(self) -> VecEnvObs:
        obs = self.batch.reset(self._seed, np.random.default_rng())
        self._seed = None  # later resets continue with the next episodes
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, np.float32).reshape(self.num_envs, 1)

    def step_wait(self) -> VecEnvStepReturn:
        reward, terminated, truncated, _ = self.batch.step(self._actions)
        done = terminated | truncated
        obs = observe(self.batch.sim, self.batch.obs_mode)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        idx = np.flatnonzero(done)
        if len(idx):
            for i in idx:
                infos[i]["terminal_observation"] = _pick(obs, int(i))
                infos[i]["TimeLimit.truncated"] = bool(truncated[i])
            self.batch.reset_envs(idx)
            fresh = observe(self.batch.sim, self.batch.obs_mode)
            if isinstance(obs, dict):
                for k in obs:
                    obs[k][idx] = fresh[k][idx]
            else:
                obs[idx] = fresh[idx]  # type: ignore[index]
        return obs, reward, done, infos

    def close(self) -> None:
        pass


def _pick(obs: Any, i: int) -> Any:
    return {k: v[i].copy() for k, v in obs.items()} if isinstance(obs, dict) else obs[i].copy()
