"""The filters (IMU and fused) in the product path: the observation model carries its state through training, evaluation and export.

Real parts throughout: the simulator's sensor windows, the perception model (untrained but
seeded: the filter's arithmetic does not care how good the angle it filters is), torch ->
ONNX -> onnxruntime, and the hardware runtime's loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sensorimotor.control.config import ExperimentConfig
from sensorimotor.control.evaluate import RecurrentPolicy, evaluate, onnx_policy, torch_policy
from sensorimotor.control.export import PolicyChain, export_onnx, parity_by_output
from sensorimotor.control.train import observation_model
from sensorimotor.control.vec_env import PerceivedFurutaVecEnv
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.filter import FUSED_STATE_SIZE, STATE_NAME, STATE_SIZE
from sensorimotor.perception.models import ObservationModel, Perception
from sensorimotor.sim.task import TaskConfig

DEV = ExperimentConfig().device
TASK = TaskConfig(name="swingup", episode_s=0.3)


def _obs_model() -> ObservationModel:
    torch.manual_seed(0)
    return observation_model(ExperimentConfig(), Perception())  # the product's: both filters, by default


SIZE = STATE_SIZE + FUSED_STATE_SIZE  # the IMU filter's state, then the fused filter's


def _chain() -> PolicyChain:
    obs_model = _obs_model()
    actor = nn.Sequential(nn.Linear(len(OBS_NAMES), 16), nn.Tanh(), nn.Linear(16, 1))
    return PolicyChain(obs_model, actor, DEV.v_max).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[PolicyChain, Path]:
    chain = _chain()
    path = tmp_path_factory.mktemp("filtered") / "policy.onnx"
    export_onnx(chain, DEV, path)
    return chain, path


def test_the_filtered_chain_exports_its_state_and_matches_torch_on_rollout_states(exported) -> None:
    chain, path = exported
    assert chain.states == [(STATE_NAME, SIZE)]
    ev = evaluate(torch_policy(chain), DEV, TASK, episodes=8, episode_s=1.0, seed=3, collect=300)
    state = ev.samples[STATE_NAME]
    assert state.shape == (300, SIZE)
    assert 0 < (state[:, 0] > 0.5).mean() < 1  # states met mid-episode, and fresh ones at the start
    ort_diff, ref_diff = parity_by_output(chain, path, ev.samples)
    assert len(ort_diff) == 3 and max(ort_diff) <= 1e-5 and max(ref_diff) <= 1e-5, (ort_diff, ref_diff)
    runtime = OnnxPolicy(path)  # what hw run loads: it accepts the model and starts the filter fresh
    assert runtime.state_names == (STATE_NAME,) and runtime.state_values[STATE_NAME] == [0.0] * SIZE


def test_onnxruntime_and_torch_carry_the_state_alike_and_dropping_it_changes_the_commands(exported) -> None:
    chain, path = exported
    a = evaluate(torch_policy(chain), DEV, TASK, episodes=6, episode_s=1.0, seed=5)
    b = evaluate(onnx_policy(path), DEV, TASK, episodes=6, episode_s=1.0, seed=5)
    assert b.rms_volts == pytest.approx(a.rms_volts, rel=1e-4)

    policy = torch_policy(chain)

    def fresh(x: dict[str, np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:  # a zero state every step
        return policy.step({**x, STATE_NAME: np.zeros((len(x["imu"]), SIZE), np.float32)})[0], None, []

    forgetful = RecurrentPolicy(fresh, [])
    c = evaluate(forgetful, DEV, TASK, episodes=6, episode_s=1.0, seed=5)
    assert abs(c.rms_volts - a.rms_volts) > 1e-3


def test_evaluate_starts_every_run_from_a_fresh_state(exported) -> None:
    chain, _ = exported
    policy = torch_policy(chain)
    first = evaluate(policy, DEV, TASK, episodes=4, episode_s=0.5, seed=7)
    assert policy.values[STATE_NAME][:, 0].min() == 1.0  # the filter ran
    again = evaluate(policy, DEV, TASK, episodes=4, episode_s=0.5, seed=7)
    assert again.rms_volts == first.rms_volts


def test_the_vec_env_carries_each_state_and_starts_a_new_episode_fresh() -> None:
    env = PerceivedFurutaVecEnv(DEV, TASK, _obs_model(), n_envs=4, seed=2)
    env.reset()
    assert env.state.shape == (4, SIZE) and bool((env.state[:, 0] == 1.0).all())
    carried = 0
    for k in range(40):
        before = env.state.clone()
        _, _, done, _ = env.step(np.full((4, 1), np.sin(k / 4.0), np.float32))
        if done.any():
            idx = np.flatnonzero(done)
            raw = env.sim.observation()
            t = {key: torch.from_numpy(v[idx]) for key, v in raw.items()}
            with torch.no_grad():
                _, fresh = env.obs_model(t["imu"], t["encoder"], t["image"], torch.zeros(len(idx), SIZE))
            torch.testing.assert_close(env.state[idx], fresh, rtol=0, atol=0)  # nothing of the old episode
        going = ~done
        if going.any():  # a running episode's state is its own previous one, advanced
            with torch.no_grad():
                raw = env.sim.observation()
                t = {key: torch.from_numpy(v[going]) for key, v in raw.items()}
                _, advanced = env.obs_model(t["imu"], t["encoder"], t["image"], before[going])
            torch.testing.assert_close(env.state[going], advanced, rtol=0, atol=1e-5)  # batch size may reorder sums
            carried += int(going.sum())
    assert carried > 100
