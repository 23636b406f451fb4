"""Native vector envs over the compiled core: Gymnasium's ``VectorEnv`` (and the SB3 ``VecEnv`` in sb3_vec_env).

One core call steps all N envs; reward and termination are the task's batched pure
functions. Sub-env ``i`` of a vector env reset with seed ``s`` is the single env reset
with seed ``s + i``, bit for bit (:mod:`sensorimotor.sim.rng`).

``gym.make_vec(ENV_ID, num_envs=N, vectorization_mode="vector_entry_point")`` builds
:class:`FurutaVectorEnv`. It follows Gymnasium's default *next-step* autoreset: the step
after an episode ends resets that env (its action is ignored, reward 0) and returns the
first observation of the next episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.envs import episode_steps, load_env_config, make_sim, observation_space, observe
from sensorimotor.sim.task import TaskConfig, make_task


class FurutaBatch:
    """The shared part of every vector env (Gymnasium's, SB3's, and training's with perception in the loop):
    N episodes on one core, stepping, scoring, resetting."""

    render_mode: str | None = None  # no rendering; SB3's VecEnv asks every sub-env for it

    def __init__(
        self, num_envs: int, device: DeviceConfig | None, task: TaskConfig | None, config: str | Path | None,
        overrides: Sequence[str], randomize: bool, obs_mode: str, max_episode_steps: int | None, seed: int = 0,
    ) -> None:  # fmt: skip
        if device is None or task is None:
            loaded_device, loaded_task = load_env_config(config, overrides)
            device, task = device or loaded_device, task or loaded_task
        self.device, self.obs_mode, self.randomize = device, obs_mode, randomize
        self.task = make_task(task)
        self.n = num_envs
        self.single_observation_space = observation_space(device, obs_mode)
        self.single_action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.max_steps = max_episode_steps or episode_steps(device, task)
        self.sim = make_sim(device, num_envs, seed, randomize, obs_mode, self.task)
        self.steps = np.zeros(num_envs, np.int64)

    def reset(self, seed: int | None, rng: np.random.Generator) -> Any:
        """Reset every env; ``seed`` reseeds (sub-env i gets seed + i), otherwise next episodes."""
        if seed is not None:
            self.sim = make_sim(self.device, self.n, seed, self.randomize, self.obs_mode, self.task)
        elif int(self.sim.buffers.episode.max()) == 0:  # first reset without a seed: a random one
            self.sim = make_sim(self.device, self.n, int(rng.integers(2**31)), self.randomize, self.obs_mode, self.task)
        self.sim.reset()
        self.steps[:] = 0
        return observe(self.sim, self.obs_mode)

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Advance every env; returns (reward, terminated, truncated, normalized action used)."""
        a = np.clip(np.asarray(actions, np.float64).reshape(self.n), -1.0, 1.0)
        self.sim.step(a * self.device.v_max)
        self.steps += 1
        state = self.sim.state
        reward = self.task.reward(state, a).astype(np.float32)
        terminated = self.task.failed(state)
        truncated = (self.steps >= self.max_steps) & ~terminated
        return reward, terminated, truncated, a

    def reset_envs(self, idx: np.ndarray) -> None:
        self.sim.reset(idx)
        self.steps[idx] = 0


class FurutaVectorEnv(VectorEnv):
    """N pendulums as one Gymnasium ``VectorEnv`` (arguments as :class:`~sensorimotor.sim.envs.FurutaBalanceEnv`)."""

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}  # noqa: RUF012

    def __init__(
        self, num_envs: int = 1, device: DeviceConfig | None = None, task: TaskConfig | None = None, *,
        config: str | Path | None = None, overrides: Sequence[str] = (), randomize: bool = True,
        obs_mode: str = "raw", max_episode_steps: int | None = None, **_: Any,
    ) -> None:  # fmt: skip
        self.batch = FurutaBatch(num_envs, device, task, config, overrides, randomize, obs_mode, max_episode_steps)
        self.num_envs = num_envs
        self.single_observation_space = self.batch.single_observation_space
        self.single_action_space = self.batch.single_action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._done = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        obs = self.batch.reset(seed, self.np_random)
        self._done[:] = False
        return obs, {"state": self.batch.sim.state.copy()}

    def step(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict]:
        reward, terminated, truncated, _ = self.batch.step(actions)
        restart = np.flatnonzero(self._done)
        if len(restart):  # next-step autoreset: these envs ended last step; their action was not theirs
            self.batch.reset_envs(restart)
            reward[restart] = 0.0
            terminated[restart] = truncated[restart] = False
        self._done = terminated | truncated
        obs = observe(self.batch.sim, self.batch.obs_mode)
        return obs, reward, terminated, truncated, {"state": self.batch.sim.state.copy()}
