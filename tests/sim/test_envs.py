"""Gymnasium env contract, seeding, and the batched device core."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sensorimotor.sim.envs  # noqa: F401  (registers the env)
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.envs import ENV_ID, FurutaBalanceEnv, make_env


def test_registered_env_passes_gymnasium_and_sb3_checkers() -> None:
    env = gym.make(ENV_ID)
    gym_check_env(env.unwrapped, skip_render_check=True)
    with pytest.warns(UserWarning):  # SB3 warns (only) that the uint8 image is not channel-last
        sb3_check_env(FurutaBalanceEnv(), warn=True)


def test_pendulum_angle_is_not_observed() -> None:
    obs, info = FurutaBalanceEnv().reset(seed=0)
    assert set(obs) == {"imu", "encoder", "image"}
    assert "state" in info  # ground truth only in info, for evaluation


def test_same_seed_same_trajectory_bit_for_bit() -> None:
    def rollout(seed: int) -> list[np.ndarray]:
        env = make_env()
        obs, _ = env.reset(seed=seed)
        out = [obs["imu"].copy()]
        for k in range(20):
            obs, *_ = env.step(np.array([np.sin(k / 3.0)], np.float32))
            out += [obs["imu"].copy(), obs["image"].copy()]
        return out

    a, b, c = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=False))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=False))


def test_episode_starts_near_upright_and_terminates_after_a_fall() -> None:
    env = make_env()
    _, info = env.reset(seed=1)
    assert abs(info["state"][1]) <= np.deg2rad(10)  # held still during the warm-up, then released
    for _ in range(300):
        _, _, terminated, _truncated, info = env.step(np.zeros(1, np.float32))
        if terminated:
            break
    assert terminated and abs(info["state"][1]) > np.deg2rad(30)


def test_command_lands_after_the_configured_delay() -> None:
    cfg = DeviceConfig()
    cfg = dataclasses.replace(cfg, randomization=dataclasses.replace(cfg.randomization, action_delay_substeps=(4, 4)))
    sim = FurutaSim(cfg, 1, seed=0, randomize=False)
    sim.reset()
    sim.command(np.array([3.0]))
    volts = []
    for _ in range(8):
        sim.substep()
        volts.append(sim.volts[0])
    assert volts[:4] == [0.0] * 4 and volts[4:] == [3.0] * 4


def test_registration_time_limit_comes_from_the_config(tmp_path) -> None:
    from sensorimotor.sim.envs import episode_steps, load_env_config

    assert gym.spec(ENV_ID).max_episode_steps == episode_steps(*load_env_config()) == 500
    still = ["device.initial.angle_deg=0", "device.initial.rate_rad_s=0", "device.initial.arm_rad=0"]
    env = make_env(overrides=["task.episode_s=0.5", "device.stream_rate_hz=200", *still], randomize=False)
    env.reset(seed=0)  # balanced exactly upright with no noise in the physics: only the time limit ends it
    steps, truncated, terminated = 0, False, False
    while not (truncated or terminated):
        _, _, terminated, truncated, _ = env.step(np.zeros(1, np.float32))
        steps += 1
    assert truncated and not terminated and steps == 100
