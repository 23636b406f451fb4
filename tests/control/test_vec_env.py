"""The vectorized env with perception in the loop: SB3 contract and seeding."""

from __future__ import annotations

import numpy as np
import torch

from sensorimotor.control.vec_env import PerceivedFurutaVecEnv
from sensorimotor.perception.models import OBS_NAMES, ObservationModel, Perception
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.task import TaskConfig


def _env(seed: int) -> PerceivedFurutaVecEnv:
    torch.manual_seed(0)
    obs_model = ObservationModel(Perception(), 2048, 1000)
    return PerceivedFurutaVecEnv(DeviceConfig(), TaskConfig(episode_s=0.3), obs_model, n_envs=4, seed=seed)


def test_rollout_is_seeded_and_resets_finished_episodes() -> None:
    def rollout(seed: int) -> tuple[np.ndarray, int]:
        env = _env(seed)
        obs = [env.reset()]
        dones = 0
        for k in range(40):
            o, _r, d, infos = env.step(np.full((4, 1), np.sin(k / 5.0), np.float32))
            obs.append(o)
            dones += int(d.sum())
            for i in np.flatnonzero(d):
                assert infos[i]["terminal_observation"].shape == (len(OBS_NAMES),)
        return np.stack(obs), dones

    a, da = rollout(1)
    b, db = rollout(1)
    assert np.array_equal(a, b) and da == db >= 4  # 0.3 s episodes end within 40 steps
    assert not np.array_equal(a, rollout(2)[0])
