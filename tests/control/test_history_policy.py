"""A policy with history (rl.history): the same past in training (vec env), in the exported graph and at run time.

Real parts: the simulator's sensor windows, the product's observation model (untrained but
seeded), torch -> ONNX -> onnxruntime, and the hardware runtime's loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sensorimotor.control.checkpoints import ResumeError, find, save
from sensorimotor.control.config import ExperimentConfig, RLConfig
from sensorimotor.control.evaluate import RecurrentPolicy, evaluate, onnx_policy, torch_policy
from sensorimotor.control.export import HISTORY_STATE, PolicyChain, export_onnx, parity_by_output
from sensorimotor.control.train import observation_model
from sensorimotor.control.vec_env import PerceivedFurutaVecEnv
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.perception.filter import STATE_NAME
from sensorimotor.perception.models import ObservationModel, Perception
from sensorimotor.sim.task import TaskConfig

DEV = ExperimentConfig().device
TASK = TaskConfig(name="swingup", episode_s=0.2)
SEEN = ("fused_sin", "fused_cos", "fused_rate", "arm_angle", "arm_rate")  # a subset: the history holds what is seen
K = 3
STEP = len(SEEN) + 1


def _obs_model() -> ObservationModel:
    torch.manual_seed(0)
    return observation_model(ExperimentConfig(), Perception())


def _chain() -> PolicyChain:
    obs_model = _obs_model()
    actor = nn.Sequential(nn.Linear(len(SEEN) + K * STEP, 16), nn.Tanh(), nn.Linear(16, 1))
    return PolicyChain(obs_model, actor, DEV.v_max, SEEN, history=K).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[PolicyChain, Path]:
    chain = _chain()
    path = tmp_path_factory.mktemp("history") / "policy.onnx"
    export_onnx(chain, DEV, path)
    return chain, path


def test_the_vec_env_shows_the_last_k_observations_and_commands_newest_first() -> None:
    env = PerceivedFurutaVecEnv(DEV, TASK, _obs_model(), n_envs=3, seed=4, observations=SEEN, history=K)
    d = len(SEEN)
    obs = env.reset()
    assert obs.shape == (3, d + K * STEP) and not obs[:, d:].any()  # nothing before the first step
    rng = np.random.default_rng(0)
    episode: list[list[tuple[np.ndarray, float]]] = [[], [], []]  # per env: (seen, command), newest first
    ended = 0
    for _ in range(60):
        act = rng.uniform(-1, 1, (3, 1)).astype(np.float32)
        new, _, done, infos = env.step(act)
        for i in range(3):
            episode[i].insert(0, (obs[i, :d].copy(), float(act[i, 0])))
            hist = (infos[i]["terminal_observation"] if done[i] else new[i])[d:].reshape(K, STEP)
            for k, (seen, command) in enumerate(episode[i][:K]):  # k steps back: what the policy saw and did
                np.testing.assert_array_equal(hist[k, :d], seen)
                assert hist[k, d] == command
            assert not hist[len(episode[i]) :].any()  # steps before the episode began are zeros
            if done[i]:  # the next episode starts with an empty past
                assert not new[i, d:].any()
                episode[i], ended = [], ended + 1
        obs = new
    assert ended >= 3  # 0.2 s episodes: several resets crossed


def test_the_chain_carries_the_history_as_a_state_and_onnx_matches_torch(exported) -> None:
    chain, path = exported
    assert chain.states == [(STATE_NAME, chain.obs_model.state_size), (HISTORY_STATE, K * STEP)]
    ev = evaluate(torch_policy(chain), DEV, TASK, episodes=4, episode_s=0.4, seed=3, collect=60)
    hist = ev.samples[HISTORY_STATE]
    assert hist.shape == (60, K * STEP) and 0 < (np.abs(hist).sum(1) > 0).mean() < 1  # fresh and carried
    ort_diff, ref_diff = parity_by_output(chain, path, ev.samples)
    assert len(ort_diff) == 4 and max(ort_diff) <= 1e-5 and max(ref_diff) <= 1e-5, (ort_diff, ref_diff)
    runtime = OnnxPolicy(path)
    assert runtime.state_names == (STATE_NAME, HISTORY_STATE)
    assert runtime.state_values[HISTORY_STATE] == [0.0] * (K * STEP)


def test_the_next_history_is_the_seen_estimates_and_the_command_before_the_older_steps(exported) -> None:
    chain, _ = exported
    one = {k: v[:4] for k, v in evaluate(torch_policy(chain), DEV, TASK, 4, 0.3, seed=9, collect=4).samples.items()}
    past = torch.randn(4, K * STEP)
    with torch.no_grad():
        volts, est, _, nxt = chain(*(torch.from_numpy(one[k]) for k in chain.input_names[:3]),
                                   torch.from_numpy(one[STATE_NAME]), past)  # fmt: skip
    seen = est[:, chain.index]
    torch.testing.assert_close(nxt[:, : len(SEEN)], seen)
    torch.testing.assert_close(nxt[:, len(SEEN)], volts[:, 0] / DEV.v_max)
    torch.testing.assert_close(nxt[:, STEP:], past[:, : (K - 1) * STEP])  # the oldest step fell off


def test_onnxruntime_and_torch_drive_alike_and_the_history_changes_the_commands(exported) -> None:
    chain, path = exported
    a = evaluate(torch_policy(chain), DEV, TASK, episodes=3, episode_s=0.6, seed=5)
    b = evaluate(onnx_policy(path), DEV, TASK, episodes=3, episode_s=0.6, seed=5)
    assert b.rms_volts == pytest.approx(a.rms_volts, rel=1e-4)
    policy = torch_policy(chain)

    def no_past(x: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        volts, est, nxt = policy.step({**x, HISTORY_STATE: np.zeros((len(x["imu"]), K * STEP), np.float32)})
        return volts, est, nxt[:1]  # the filter's state carried, the history dropped every step

    c = evaluate(RecurrentPolicy(no_past, policy.states[:1]), DEV, TASK, episodes=3, episode_s=0.6, seed=5)
    assert abs(c.rms_volts - a.rms_volts) > 1e-3


def test_a_checkpoint_resumes_only_with_its_own_history(tmp_path: Path) -> None:
    from stable_baselines3 import PPO

    rl = RLConfig(n_envs=2, history=2, observations=SEEN, ppo=RLConfig().ppo.__class__(n_steps=8, batch_size=16))
    env = PerceivedFurutaVecEnv(DEV, TASK, _obs_model(), n_envs=2, seed=1, observations=SEEN, history=2)
    model = PPO(
        "MlpPolicy", env, n_steps=8, batch_size=16, policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}}
    )
    save(model, rl, tmp_path, None)
    assert find(tmp_path, rl).steps == 0
    with pytest.raises(ResumeError, match="history: checkpoint 2, config 0"):
        find(tmp_path, RLConfig(n_envs=2, observations=SEEN, ppo=rl.ppo))


def test_history_is_refused_for_a_gymnasium_env() -> None:
    with pytest.raises(ValueError, match="history: 4 needs env 'device'"):
        RLConfig(env="Pendulum-v1", history=4)
