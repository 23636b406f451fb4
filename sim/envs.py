"""Gymnasium envs of the rotary pendulum (importing this module registers them).

``sensorimotor/FurutaBalance-v0`` — balance from near upright, observed through the raw
sensors only (the pendulum angle is NOT in the observation):

=========== ======================== ===============================================
key         shape / dtype            meaning
=========== ======================== ===============================================
imu         (6, W) float32           gyro xyz (rad/s), accel xyz (m/s^2), oldest first
encoder     (W,) float32             motor encoder counts, sampled with the IMU
image       (1, 64, 64) uint8        latest camera frame
=========== ======================== ===============================================

Action: ``Box(-1, 1, (1,))``, the motor voltage as a fraction of ``v_max``.
Reward: :func:`sensorimotor.sim.task.balance_reward`, at most 1 per step.
Start: pendulum held still within +-``initial.angle_deg`` of upright for one IMU window (so the
first observation is a full window), then released with a small random rate; physics
randomized per episode.
Termination: |alpha| > ``fall_deg`` or |theta| > ``arm_limit_rad``; truncation after
``episode_s`` (a TimeLimit wrapper). ``info["state"]`` carries the true state for evaluation.

v0: first version.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.task import TaskConfig, balance_reward, fallen

ENV_ID = "sensorimotor/FurutaBalance-v0"


def raw_observation_space(cfg: DeviceConfig) -> spaces.Dict:
    """The raw sensor observation space for a device config."""
    w = cfg.imu.window
    return spaces.Dict(
        {
            "imu": spaces.Box(-np.inf, np.inf, (6, w), np.float32),
            "encoder": spaces.Box(-np.inf, np.inf, (w,), np.float32),
            "image": spaces.Box(0, 255, (1, *cfg.image_shape), np.uint8),
        }
    )


class FurutaBalanceEnv(gym.Env):
    """Single rotary pendulum seen through its sensors; see the module docstring for the spec."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        device: DeviceConfig | None = None,
        task: TaskConfig | None = None,
        randomize: bool = True,
        render_mode: str | None = None,
    ) -> None:
        self.device_cfg = device or DeviceConfig()
        self.task = task or TaskConfig()
        self.randomize = randomize
        self.render_mode = render_mode
        self.observation_space = raw_observation_space(self.device_cfg)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.sim: FurutaSim | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[dict, dict]:
        super().reset(seed=seed)
        if self.sim is None or seed is not None:
            self.sim = FurutaSim(self.device_cfg, 1, int(self.np_random.integers(2**31)), self.randomize)
        state = None if not options or "state" not in options else np.asarray(options["state"], float)[None]
        self.sim.reset(state=state)
        return self._obs(), {"state": self.sim.state[0].copy()}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        assert self.sim is not None, "call reset() before step()"
        a = np.asarray(action, np.float64).reshape(1)
        self.sim.step(a * self.device_cfg.v_max)
        state = self.sim.state[0]
        reward = float(balance_reward(state, a[0], self.task))
        terminated = bool(fallen(state, self.task))
        return self._obs(), reward, terminated, False, {"state": state.copy()}

    def render(self) -> np.ndarray | None:
        if self.sim is None:
            return None
        return np.repeat(self.sim.image[0][..., None], 3, axis=-1)

    def _obs(self) -> dict[str, np.ndarray]:
        assert self.sim is not None
        return {k: v[0] for k, v in self.sim.observation().items()}


def make_env(device: DeviceConfig | None = None, task: TaskConfig | None = None, **kw: Any) -> gym.Env:
    """FurutaBalanceEnv with its TimeLimit, as registered."""
    task = task or TaskConfig()
    device = device or DeviceConfig()
    steps = int(round(task.episode_s * device.stream_rate_hz))
    return gym.wrappers.TimeLimit(FurutaBalanceEnv(device, task, **kw), max_episode_steps=steps)


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="sensorimotor.sim.envs:FurutaBalanceEnv", max_episode_steps=500)
