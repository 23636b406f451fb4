"""Gymnasium envs of the rotary pendulum. Importing ``sensorimotor.sim.envs`` registers them.

(``sensorimotor.sim`` itself does not import gymnasium: the twin shares the package and
must stay on the light runtime path.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sensorimotor.configs.schema import load_section
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.task import Task, TaskConfig, make_task

ENV_ID = "sensorimotor/FurutaBalance-v0"
OBS_MODES = ("raw", "sensors", "state")
STATE_NAMES = ("theta", "sin_alpha", "cos_alpha", "theta_dot", "alpha_dot")


def raw_observation_space(cfg: DeviceConfig) -> spaces.Dict:
    """The raw sensor observation space for a device config."""
    return observation_space(cfg, "raw")  # type: ignore[return-value]


def observation_space(cfg: DeviceConfig, obs_mode: str = "raw") -> spaces.Space:
    """One env's observation space in an observation mode (see :class:`FurutaBalanceEnv`)."""
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode: {obs_mode!r} is not one of {', '.join(OBS_MODES)}")
    if obs_mode == "state":
        return spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32)
    w = cfg.imu.window
    keys: dict[str, spaces.Space] = {
        "imu": spaces.Box(-np.inf, np.inf, (6, w), np.float32),
        "encoder": spaces.Box(-np.inf, np.inf, (1, w), np.float32),  # (E, W): the motor's encoder
    }
    if obs_mode == "raw":
        keys["image"] = spaces.Box(0, 255, (1, *cfg.image_shape), np.uint8)
    return spaces.Dict(keys)


def make_sim(cfg: DeviceConfig, n: int, seed: int, randomize: bool, obs_mode: str, task: Task) -> FurutaSim:
    """The core for an observation mode and a task: sensors the mode does not show are not simulated."""
    return task.sim(cfg, n, seed, randomize, imu=obs_mode != "state", camera=obs_mode == "raw")


def observe(sim: FurutaSim, obs_mode: str) -> np.ndarray | dict[str, np.ndarray]:
    """Batched observations (N, ...) of the core in an observation mode."""
    if obs_mode == "state":
        x = sim.state
        return np.stack([x[:, 0], np.sin(x[:, 1]), np.cos(x[:, 1]), x[:, 2], x[:, 3]], axis=-1).astype(np.float32)
    obs = sim.observation()
    if obs_mode == "sensors":
        del obs["image"]
    return obs


class FurutaBalanceEnv(gym.Env):
    """``sensorimotor/FurutaBalance-v0``: balance a rotary (Furuta) pendulum seen only through its sensors.

    A Quanser Qube-Servo 2 model (docs/architecture.md): a motor turns the arm, the
    pendulum swings freely at its tip. The pendulum angle has no encoder; the policy sees
    the raw streams the device sends, exactly what the exported ONNX model consumes.

    **Action space** ``Box(-1, 1, (1,), float32)``

    ===== ====================================== ==========
    index meaning                                unit
    ===== ====================================== ==========
    0     motor voltage as a fraction of v_max   V / v_max
    ===== ====================================== ==========

    The command reaches the motor after a delay drawn each control step from
    ``device.randomization.action_delay_substeps`` (1 substep = 1 / imu.rate_hz).

    **Observation space**, by ``obs_mode``: ``"raw"`` (default) is the ``Dict`` below
    (W = ``device.imu.window``, H x W' = camera height x width); ``"sensors"`` is the same
    without ``image`` (the camera is not simulated); ``"state"`` is the true state
    ``Box(5)`` = [theta, sin alpha, cos alpha, theta_dot, alpha_dot] (rad, rad/s), no
    sensors simulated — for checking algorithms, not for a policy that goes on the device.

    ======= ================ ================ ================================================
    key     shape            dtype            meaning
    ======= ================ ================ ================================================
    imu     (6, W)           float32          gyro x, y, z (rad/s), accel x, y, z (m/s^2), oldest first
    encoder (W,)             float32          motor encoder counts (2 pi / encoder_cpr rad each)
    image   (1, H, W')       uint8            latest camera frame, grayscale 0-255
    ======= ================ ================ ================================================

    **Reward** per control step (:func:`sensorimotor.sim.task.balance_reward`), at most 1::

        r = 1 - 5 (1 - cos alpha) - arm_weight theta^2 - 0.002 alpha_dot^2 - action_weight a^2

    with alpha the pendulum angle from upright (rad), theta the arm angle (rad) and ``a``
    the action. Unbounded below; about 1 per step when upright, centred and still.

    **Starting state**: the pendulum is held still within +-``device.initial.angle_deg`` of
    upright, the arm within +-``initial.arm_rad``, for one IMU window (so the first
    observation is a full window), then released with a rate within +-``initial.rate_rad_s``.
    Physics parameters are randomized per episode (``device.randomization``).

    **Termination**: |alpha| > ``task.fall_deg`` or |theta| > ``task.arm_limit_rad``
    (the cable limit). **Truncation**: after ``task.episode_s`` x ``device.stream_rate_hz``
    steps, by the ``TimeLimit`` wrapper that registration (or :func:`make_env`) adds;
    ``max_episode_steps`` comes from the config, 500 with the shipped one.
    ``info["state"]`` holds the true state ``[theta, alpha, theta_dot, alpha_dot]`` for
    evaluation only.

    **Arguments**: ``device`` and ``task`` configs, or ``config`` (a YAML path; default the
    shipped ``configs/furuta.yaml``) and ``overrides`` (``["a.b=value", ...]`` as ``--set``);
    ``randomize`` (False: nominal physics, shortest delays); ``obs_mode``;
    ``render_mode`` ``"rgb_array"`` (the camera frame, ``raw`` mode only).

    **Seeding**: ``reset(seed=s)`` gives the trajectory of sub-env ``i`` of
    ``gym.make_vec(ENV_ID, num_envs, vectorization_mode="vector_entry_point")`` reset with
    seed ``s - i``, bit for bit (:mod:`sensorimotor.sim.vector`); later resets without a
    seed start the env's next episode.
    Use :func:`make_env` for a config other than the shipped one, so that the time limit
    follows it.

    **Version history**: v0, first version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}  # noqa: RUF012 - gymnasium declares it so

    def __init__(
        self,
        device: DeviceConfig | None = None,
        task: TaskConfig | None = None,
        randomize: bool = True,
        render_mode: str | None = None,
        config: str | Path | None = None,
        overrides: Sequence[str] = (),
        obs_mode: str = "raw",
    ) -> None:
        if device is None or task is None:  # read the file only for what was not given
            loaded_device, loaded_task = load_env_config(config, overrides)
            device, task = device or loaded_device, task or loaded_task
        self.device_cfg, self.task = device, make_task(task)
        self.randomize = randomize
        self.render_mode = render_mode
        self.obs_mode = obs_mode
        self.observation_space = observation_space(self.device_cfg, obs_mode)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.sim: FurutaSim | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        if self.sim is None or seed is not None:
            sim_seed = seed if seed is not None else int(self.np_random.integers(2**31))
            self.sim = make_sim(self.device_cfg, 1, sim_seed, self.randomize, self.obs_mode, self.task)
        state = None if not options or "state" not in options else np.asarray(options["state"], float)[None]
        self.sim.reset(state=state)
        return self._obs(), {"state": self.sim.state[0].copy()}

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict]:
        assert self.sim is not None, "call reset() before step()"
        a = np.asarray(action, np.float64).reshape(1)
        self.sim.step(a * self.device_cfg.v_max)
        state = self.sim.state[0]
        reward = float(self.task.reward(state, a[0]))
        terminated = bool(self.task.failed(state))
        return self._obs(), reward, terminated, False, {"state": state.copy()}

    def render(self) -> np.ndarray | None:
        if self.sim is None or self.obs_mode != "raw":
            return None
        return np.repeat(self.sim.image[0][..., None], 3, axis=-1)

    def _obs(self) -> Any:
        assert self.sim is not None
        obs = observe(self.sim, self.obs_mode)
        return obs[0] if isinstance(obs, np.ndarray) else {k: v[0] for k, v in obs.items()}


def load_env_config(config: str | Path | None = None, overrides: Sequence[str] = ()) -> tuple[DeviceConfig, TaskConfig]:
    """The ``device`` and ``task`` sections of a config (default: the one shipped with the package)."""
    return (
        load_section(config, "device", DeviceConfig, overrides=overrides),
        load_section(config, "task", TaskConfig, overrides=overrides),
    )


def episode_steps(device: DeviceConfig, task: TaskConfig) -> int:
    """Control steps in one episode: the TimeLimit."""
    return round(task.episode_s * device.stream_rate_hz)


def make_env(
    device: DeviceConfig | None = None, task: TaskConfig | None = None, *, config: str | Path | None = None,
    overrides: Sequence[str] = (), **kw: Any,
) -> gym.Env:  # fmt: skip
    """FurutaBalanceEnv with the TimeLimit its config implies (as registered for the shipped config)."""
    if device is None or task is None:
        loaded_device, loaded_task = load_env_config(config, overrides)
        device, task = device or loaded_device, task or loaded_task
    return gym.wrappers.TimeLimit(FurutaBalanceEnv(device, task, **kw), max_episode_steps=episode_steps(device, task))


if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID, entry_point="sensorimotor.sim.envs:FurutaBalanceEnv",
        vector_entry_point="sensorimotor.sim.vector:FurutaVectorEnv",
        max_episode_steps=episode_steps(*load_env_config()),
    )  # fmt: skip
