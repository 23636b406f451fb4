"""The vectorized env with perception in the loop: SB3 contract and seeding."""

from __future__ import annotations

import numpy as np
import torch

from sensorimotor.control.vec_env import PerceivedFurutaVecEnv
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import FrameCache, ObservationModel, Perception
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


def test_frame_cache_halves_the_image_encoder_work_and_changes_no_observation() -> None:
    cached, fresh = _env(3), _env(3)
    a, b = [cached.reset()], [fresh.reset()]
    for k in range(40):
        fresh.frames = FrameCache()  # an empty cache each step: every frame through the encoder
        act = np.full((4, 1), np.cos(k / 4.0), np.float32)
        a.append(cached.step(act)[0])
        b.append(fresh.step(act)[0])
    np.testing.assert_allclose(np.stack(a), np.stack(b), rtol=0, atol=1e-5)  # float rounding at most
    # the camera runs at half the control rate: about half the rows hold last step's frame
    assert 0.4 < cached.frames.frames_encoded / cached.frames.frames_seen < 0.65
