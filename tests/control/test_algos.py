"""PPO and SAC from the config: the exported actor computes SB3's deterministic action, in ONNX too.

SAC's squashed Gaussian mean and its scaling to the action bounds, PPO's clipping, and the
VecNormalize statistics must all be inside the graph; parity is checked against onnxruntime and
``onnx.reference`` over 1000 observations from real rollouts.
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from sensorimotor.configs.schema import ConfigError, build
from sensorimotor.control.algos import DeterministicActor, build_model, find_vecnormalize
from sensorimotor.control.config import RLConfig
from sensorimotor.control.export import parity
from sensorimotor.control.gym_train import check_spaces, export, rollouts


def _rl(algo: str, **extra: object) -> RLConfig:
    raw: dict = {"algo": algo, "env": "Pendulum-v1", "n_envs": 2, "total_timesteps": 1000, **extra}
    raw.setdefault("ppo", {"n_steps": 64, "batch_size": 64})
    raw.setdefault("sac", {"learning_starts": 50, "batch_size": 32, "buffer_size": 2000})
    return build(RLConfig, raw, prefix="rl")


def _trained(algo: str, normalize: bool) -> tuple[object, DeterministicActor]:
    rl = _rl(algo, normalize_obs=normalize)
    env = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    if normalize:
        env = VecNormalize(env, norm_obs=True, norm_reward=False)
    model = build_model(rl, env, seed=0)
    model.learn(400)  # moves the weights and the normalization statistics off their initial values
    return model, DeterministicActor(model, find_vecnormalize(model.get_env())).eval()


@pytest.mark.parametrize("algo", ["ppo", "sac"])
@pytest.mark.parametrize("normalize", [False, True])
def test_exported_actor_equals_sb3_deterministic_predict(algo: str, normalize: bool) -> None:
    model, actor = _trained(algo, normalize)
    _, obs = rollouts(actor, "Pendulum-v1", episodes=3, seed=1, keep=600)
    norm = find_vecnormalize(model.get_env())
    seen = norm.normalize_obs(obs) if norm is not None else obs
    expected, _ = model.predict(seen, deterministic=True)
    with torch.no_grad():
        ours = actor(torch.from_numpy(obs)).numpy()
    assert np.max(np.abs(ours - expected)) <= 1e-5
    assert np.all(ours >= -2.0) and np.all(ours <= 2.0)  # Pendulum's torque bounds


def test_sac_squashes_and_scales_into_asymmetric_bounds() -> None:
    """A huge actor mean must come out at the bound, not beyond it, and the mid-point maps to the middle."""
    env = make_vec_env("MountainCarContinuous-v0", n_envs=1, seed=0)
    model = build_model(_rl("sac", env="MountainCarContinuous-v0"), env, seed=0)
    actor = DeterministicActor(model).eval()
    with torch.no_grad():
        model.policy.actor.mu.bias.fill_(100.0)
        high = actor(torch.zeros(1, 2))
        model.policy.actor.mu.bias.fill_(-100.0)
        low = actor(torch.zeros(1, 2))
    assert torch.allclose(high, torch.tensor([[1.0]])) and torch.allclose(low, torch.tensor([[-1.0]]))


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_onnx_export_parity_within_1e_5_over_1000_rollout_observations(algo: str, tmp_path) -> None:
    _, actor = _trained(algo, normalize=True)
    _, obs = rollouts(actor, "Pendulum-v1", episodes=6, seed=2, keep=1000)
    assert len(obs) == 1000
    path = tmp_path / "policy.onnx"
    export(actor, 3, path, {"env": "Pendulum-v1", "algo": algo})
    ort_diff, ref_diff = parity(actor, path, {"obs": obs}, names=("obs",))
    assert ort_diff <= 1e-5 and ref_diff <= 1e-5, (ort_diff, ref_diff)


def test_same_seed_same_policy() -> None:
    _, a = _trained("ppo", normalize=True)
    _, b = _trained("ppo", normalize=True)
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"algo": "dqn"}, "rl.algo: unknown 'dqn' (valid: ppo, sac)"),
        ({"env": "Pendulm-v1"}, "did you mean 'Pendulum-v1'"),
        ({"observations": ["imu_sin", "wheel_speed"]}, "unknown 'wheel_speed' (valid: imu_sin, imu_cos"),
        ({"sac": {"gradient_steps": 0}}, "rl.sac.gradient_steps: 0 would never learn"),
        ({"ppo": {"n_steps": 10, "batch_size": 7}}, "rl.ppo.batch_size: 7 does not divide"),
    ],
)
def test_bad_rl_config_is_refused_naming_the_valid_choices(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as exc:
        build(RLConfig, raw, prefix="rl")
    assert message in str(exc.value)


class _CameraEnv(gym.Env):
    observation_space = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def test_an_env_with_image_observations_says_what_to_add() -> None:
    gym.register("SensorimotorTestCamera-v0", entry_point=_CameraEnv)
    try:
        with pytest.raises(ConfigError) as exc:
            check_spaces(_rl("ppo", env="SensorimotorTestCamera-v0"))
    finally:
        gym.registry.pop("SensorimotorTestCamera-v0")
    assert "not a vector" in str(exc.value) and "perception" in str(exc.value)


def test_sac_on_discrete_actions_is_refused() -> None:
    with pytest.raises(ConfigError, match="use --algo ppo"):
        check_spaces(_rl("sac", env="CartPole-v1"))


def test_every_registered_algorithm_has_its_section_and_is_offered() -> None:
    from sensorimotor.cli.sim import build_parser
    from sensorimotor.control.algorithms import ALGORITHMS

    for name in ALGORITHMS:
        assert dataclasses.is_dataclass(getattr(RLConfig(), name)), f"RLConfig has no section {name!r}"
    train = build_parser()._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    algo = next(a for a in train._actions if a.dest == "algo")
    assert tuple(algo.choices) == tuple(ALGORITHMS)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_unset_fields_take_the_algorithms_defaults_and_set_ones_win(algo: str) -> None:
    from sensorimotor.control.algorithms import ALGORITHMS
    from sensorimotor.control.config import load_experiment

    entry = ALGORITHMS[algo]
    rl = load_experiment(overrides=[f"rl.algo={algo}", "rl.env=Pendulum-v1"]).rl
    assert (rl.n_envs, rl.gamma, rl.net_arch) == (entry.n_envs, entry.gamma, entry.net_arch)
    rl = load_experiment(overrides=[f"rl.algo={algo}", "rl.env=Pendulum-v1", "rl.n_envs=8", "rl.gamma=0.9"]).rl
    assert (rl.n_envs, rl.gamma, rl.net_arch) == (8, 0.9, entry.net_arch)


def test_sac_defaults_are_the_published_pendulum_ones() -> None:
    """`--algo sac` alone gets rl-baselines3-zoo's Pendulum-v1 setup, the `pendulum-sac` preset's shape."""
    from sensorimotor.control.config import load_experiment

    default = load_experiment(overrides=["rl.algo=sac", "rl.env=Pendulum-v1"]).rl
    preset = load_experiment(preset="pendulum-sac").rl
    assert (default.n_envs, default.gamma, default.net_arch) == (preset.n_envs, preset.gamma, preset.net_arch)
    assert default.sac.train_freq == default.sac.gradient_steps == 1  # one gradient step per transition
