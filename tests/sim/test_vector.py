"""Vector envs (Gymnasium's VectorEnv, SB3's VecEnv) over the core: API, checkers, determinism across APIs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from sensorimotor.sim.envs import ENV_ID, OBS_MODES, FurutaBalanceEnv
from sensorimotor.sim.sb3_vec_env import FurutaSB3VecEnv
from sensorimotor.sim.vector import FurutaVectorEnv


def _action(k: int, n: int) -> np.ndarray:
    return np.full((n, 1), np.sin(k / 3.0), np.float32)


def _flat(obs: object, i: int | None = None) -> list[np.ndarray]:
    if isinstance(obs, dict):
        return [np.asarray(v if i is None else v[i]) for _, v in sorted(obs.items())]
    return [np.asarray(obs if i is None else obs[i])]  # type: ignore[index]


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_every_observation_mode_passes_gymnasium_and_sb3_checkers(obs_mode: str) -> None:
    gym_check_env(gym.make(ENV_ID, obs_mode=obs_mode).unwrapped, skip_render_check=True)
    if obs_mode == "raw":
        with pytest.warns(UserWarning):  # SB3 warns (only) that the uint8 image is not channel-last
            sb3_check_env(FurutaBalanceEnv(obs_mode=obs_mode), warn=True)
    else:
        sb3_check_env(FurutaBalanceEnv(obs_mode=obs_mode), warn=True)


@pytest.mark.parametrize("obs_mode", OBS_MODES)
def test_vector_env_keeps_gymnasiums_contract(obs_mode: str) -> None:
    env = gym.make_vec(ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", obs_mode=obs_mode)
    assert isinstance(env.unwrapped, FurutaVectorEnv)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    done_before = np.zeros(3, bool)
    for k in range(120):
        obs, reward, terminated, truncated, _ = env.step(_action(k, 3))
        assert env.observation_space.contains(obs) and reward.shape == (3,) and reward.dtype == np.float32
        assert not (terminated & done_before).any()  # next-step autoreset: the step after an end is a reset
        assert (reward[done_before] == 0).all()
        done_before = terminated | truncated
    assert done_before.any() or k == 119


def _singles(n: int, seed: int) -> tuple[list[gym.Env], list[object]]:
    envs = [gym.make(ENV_ID) for _ in range(n)]
    return envs, [e.reset(seed=seed + i)[0] for i, e in enumerate(envs)]


def _same(a: object, b: object) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(_flat(a), _flat(b), strict=True))


def test_gymnasium_vector_sub_env_i_of_seed_s_is_the_single_env_of_seed_s_plus_i() -> None:
    """Bit for bit, through episode ends and next-step resets."""
    n, seed = 4, 11
    vec = FurutaVectorEnv(n)
    obs, _ = vec.reset(seed=seed)
    singles, one = _singles(n, seed)
    resetting, episodes = np.zeros(n, bool), 0
    for k in range(150):
        assert all(_same({key: v[i] for key, v in obs.items()}, one[i]) for i in range(n))
        action = _action(k, n)
        obs, _, terminated, truncated, _ = vec.step(action)
        for i, env in enumerate(singles):
            if resetting[i]:  # the vector env reset it on this step; the action was not used
                one[i], resetting[i] = env.reset()[0], False
                continue
            one[i], _, term, trunc, _ = env.step(action[i])
            assert term == terminated[i] and trunc == truncated[i]
            resetting[i] = term or trunc
            episodes += int(term or trunc)
    assert episodes > 0, "the rollout should cross episode ends"


def test_sb3_vec_env_sub_env_i_of_seed_s_is_the_single_env_of_seed_s_plus_i() -> None:
    """Bit for bit, through episode ends (same-step resets; the last observation in the info)."""
    n, seed = 4, 11
    vec = FurutaSB3VecEnv(n, seed=seed)
    obs = vec.reset()
    singles, one = _singles(n, seed)
    episodes = 0
    for k in range(150):
        assert all(_same({key: v[i] for key, v in obs.items()}, one[i]) for i in range(n))
        action = _action(k, n)
        obs, _, done, infos = vec.step(action)
        for i, env in enumerate(singles):
            one[i], _, term, trunc, _ = env.step(action[i])
            assert (term or trunc) == done[i]
            if done[i]:
                assert _same(infos[i]["terminal_observation"], one[i])
                one[i] = env.reset()[0]
                episodes += 1
    assert episodes > 0, "the rollout should cross episode ends"


def test_same_seed_same_rollout_across_runs_and_different_seeds_differ() -> None:
    def rollout(seed: int) -> list[np.ndarray]:
        env = FurutaVectorEnv(8)
        obs, _ = env.reset(seed=seed)
        out = _flat(obs)
        for k in range(40):
            obs, *_ = env.step(_action(k, 8))
            out += _flat(obs)
        return out

    a, b, c = rollout(1), rollout(1), rollout(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
