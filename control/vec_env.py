"""A stable-baselines3 VecEnv over the batched simulator, with perception in the loop.

Every step: the N simulated devices advance one control step (stepped, scored and reset by
:class:`~sensorimotor.sim.vector.FurutaBatch`, as the Gymnasium and SB3 vector envs are), their raw sensor windows
go through the (frozen) perception model in one batch, and the policy sees the
resulting observation vector (:data:`sensorimotor.perception.config.OBS_NAMES`). Physics, reward and
termination are the same pure functions the Gymnasium env uses.

A stateful observation model (the IMU filter) gets each pendulum's state every step and
hands back the next; an episode that ends starts its successor from a zero (fresh) state,
exactly as the exported model starts on the device.

With ``history`` > 0 the policy's observation is the current one followed by the last
``history`` steps' observations and commands, newest first, zeros before an episode's
first step: the layout :class:`~sensorimotor.control.export.PolicyChain` carries as a state.

The camera is slower than the control loop, so the image encoder runs only on the frames
that changed since the last step (:class:`~sensorimotor.perception.models.FrameCache`).
"""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn

from sensorimotor.control.export import history_size
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import FrameCache, ObservationModel
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.sb3_vec_env import OneBatchVecEnv
from sensorimotor.sim.task import TaskConfig
from sensorimotor.sim.vector import FurutaBatch


class PerceivedFurutaVecEnv(OneBatchVecEnv):
    """N pendulums seen through the perception model; actions are voltages / v_max in [-1, 1]."""

    def __init__(
        self, device: DeviceConfig, task: TaskConfig, obs_model: ObservationModel, n_envs: int, seed: int,
        episode_s: float | None = None, observations: Sequence[str] = OBS_NAMES, history: int = 0,
    ) -> None:  # fmt: skip
        self.history_size = history_size(len(observations), history)
        obs_space = gym.spaces.Box(-np.inf, np.inf, (len(observations) + self.history_size,), np.float32)
        act_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.render_mode = None  # nothing to render; set before SB3 asks for it
        super().__init__(n_envs, obs_space, act_space)
        max_steps = round(episode_s * device.stream_rate_hz) if episode_s else None  # None: the task's own
        self.batch = FurutaBatch(n_envs, device, task, None, (), True, "raw", max_steps, seed=seed)
        self.obs_model = obs_model.eval()
        self.columns = [OBS_NAMES.index(o) for o in observations]  # what the policy sees (rl.observations)
        self._actions = np.zeros((n_envs, 1), np.float32)
        self.state = torch.zeros(n_envs, obs_model.state_size)  # the observation model's, per pendulum
        self.frames = FrameCache()
        self.past = np.zeros((n_envs, self.history_size), np.float32)  # newest (observations, command) first
        self.seen = np.zeros((n_envs, len(observations)), np.float32)  # the observations the last action met

    @property
    def sim(self) -> FurutaSim:
        """The simulated devices (the batch's core)."""
        return self.batch.sim

    def widen(self, device: DeviceConfig) -> None:
        """Episodes that start from now on draw their physics from ``device``'s randomization (rl.widen)."""
        self.sim.set_randomization(device.randomization)

    @torch.no_grad()
    def perceive(self, idx: np.ndarray | None = None) -> np.ndarray:
        """Policy observations (N, len(observations)) of the current sensor windows; advances their state.

        Call it once per control step (for ``idx``: the pendulums just reset, once more).
        """
        raw = self.sim.observation()
        rows = torch.arange(self.num_envs) if idx is None else torch.from_numpy(idx)
        if idx is not None:
            raw = {k: v[idx] for k, v in raw.items()}
        t = {k: torch.from_numpy(v) for k, v in raw.items()}
        with self.obs_model.perception.cached(self.frames):
            obs, self.state[rows] = self.obs_model(t["imu"], t["encoder"], t["image"], self.state[rows])
        return obs.numpy()[:, self.columns]

    def reset(self) -> VecEnvObs:
        self.sim.reset()
        self.batch.steps[:] = 0
        self.state.zero_()
        self.past[:] = 0.0
        self.seen = self.perceive()
        return self.observe(self.seen)

    def observe(self, seen: np.ndarray, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The policy's input: the current observations, then the history of rows ``idx``."""
        return np.concatenate([seen, self.past[idx]], axis=1) if self.history_size else seen

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.clip(np.asarray(actions, np.float32).reshape(self.num_envs, 1), -1.0, 1.0)

    def step_wait(self) -> VecEnvStepReturn:
        reward, terminated, truncated, _ = self.batch.step(self._actions)
        done = terminated | truncated
        seen = self.perceive()
        if self.history_size:
            step = self.seen.shape[1] + 1
            self.past = np.concatenate([self.seen, self._actions, self.past[:, : self.history_size - step]], axis=1)
        obs = self.observe(seen)
        infos, idx = self.ended(obs, done, truncated)
        if len(idx):
            self.batch.reset_envs(idx)
            self.state[idx] = 0.0  # a fresh filter for the new episode
            self.past[idx] = 0.0
            seen[idx] = self.perceive(idx)
            obs[idx] = self.observe(seen[idx], idx)
        self.seen = seen
        return obs, reward, done, infos
