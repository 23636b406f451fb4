"""A stable-baselines3 VecEnv over any batched simulated device, its raw sensors seen through its observation model.

The device-generic counterpart of :class:`~sensorimotor.control.vec_env.PerceivedFurutaVecEnv`:
every step the N devices advance one control step under the normalized commands (N, nu) in
[-1, 1] times ``v_max``, the device's task scores the true state, and the policy sees what
the (frozen) observation model makes of the raw sensor windows — what the exported model
computes on the device. Episodes end when the task says the device failed or at
``max_steps``; an ended episode restarts at once (SB3's convention: the step's observation is
the new episode's first, the last one is in ``terminal_observation``).
"""

from __future__ import annotations

from typing import Protocol

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from torch import nn

from sensorimotor.sim.sb3_vec_env import OneBatchVecEnv

Array = np.ndarray


class BatchedDevice(Protocol):
    """What the env needs of the simulator (sim/mujoco_device.py's MujocoDeviceSim is one)."""

    n: int
    nu: int

    @property
    def state(self) -> Array: ...
    def reset(self, idx: Array | None = None) -> None: ...
    def step(self, volts: Array) -> None: ...
    def observation(self) -> dict[str, Array]: ...


class DeviceTask(Protocol):
    """What the env needs of a task: batched reward and failure of true states."""

    def reward(self, state: Array, action: Array) -> Array: ...
    def failed(self, state: Array) -> Array: ...


class PerceivedDeviceVecEnv(OneBatchVecEnv):
    """N simulated devices seen through ``obs_model(imu, encoder)``; actions are commands / v_max in [-1, 1]."""

    def __init__(self, sim: BatchedDevice, task: DeviceTask, obs_model: nn.Module, n_obs: int, v_max: float,
                 max_steps: int) -> None:  # fmt: skip
        self.render_mode = None  # nothing to render; set before SB3 asks for it
        obs_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        super().__init__(sim.n, obs_space, gym.spaces.Box(-1.0, 1.0, (sim.nu,), np.float32))
        self.sim, self.task, self.obs_model = sim, task, obs_model.eval()
        self.v_max, self.max_steps = v_max, max_steps
        self.steps = np.zeros(sim.n, np.int64)
        self._actions = np.zeros((sim.n, sim.nu), np.float32)

    @torch.no_grad()
    def perceive(self, idx: Array | None = None) -> Array:
        """Observations of every env, or of envs ``idx`` only (those just reset)."""
        raw = self.sim.observation()
        imu, enc = (raw["imu"], raw["encoder"]) if idx is None else (raw["imu"][idx], raw["encoder"][idx])
        return self.obs_model(torch.from_numpy(imu), torch.from_numpy(enc)).numpy()

    def reset(self) -> VecEnvObs:
        self.sim.reset()
        self.steps[:] = 0
        return self.perceive()

    def step_async(self, actions: Array) -> None:
        self._actions = np.clip(np.asarray(actions, np.float32).reshape(self.num_envs, -1), -1.0, 1.0)

    def step_wait(self) -> VecEnvStepReturn:
        self.sim.step(self._actions.astype(np.float64) * self.v_max)
        self.steps += 1
        state = self.sim.state
        reward = self.task.reward(state, self._actions).astype(np.float32)
        terminated = self.task.failed(state)
        truncated = (self.steps >= self.max_steps) & ~terminated
        done = terminated | truncated
        obs = self.perceive()
        infos, idx = self.ended(obs, done, truncated)
        if len(idx):
            self.sim.reset(idx)
            self.steps[idx] = 0
            obs[idx] = self.perceive(idx)
        return obs, reward, done, infos
