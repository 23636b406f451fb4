"""Tasks (sim/task.py): reset distributions, the cable limit in every task, success as the task defines it."""

from __future__ import annotations

import numpy as np
import pytest

from sensorimotor.configs.schema import ConfigError
from sensorimotor.control.config import load_experiment
from sensorimotor.sim.envs import make_env
from sensorimotor.sim.task import SuccessTracker, TaskConfig, make_task

DEVICE = load_experiment().device


@pytest.mark.parametrize("name", ["balance", "swingup"])
def test_every_task_fails_an_episode_past_the_cable_limit_with_the_penalty(name: str) -> None:
    task = make_task(TaskConfig(name=name))
    limit = task.cfg.arm_limit_rad
    inside = np.array([[limit - 0.01, 0.0, 0.0, 0.0], [-(limit - 0.01), 0.0, 0.0, 0.0]])
    past = np.array([[limit + 0.01, 0.0, 0.0, 0.0], [-(limit + 0.01), 0.0, 0.0, 0.0]])
    assert not task.failed(inside).any() and task.failed(past).all()
    assert (task.reward(past, np.zeros(2)) == task.cfg.limit_penalty).all()
    assert (task.reward(inside, np.zeros(2)) > task.cfg.limit_penalty).all()


def test_swingup_starts_hanging_with_the_arm_anywhere_within_its_start_range() -> None:
    cfg = TaskConfig(name="swingup", hang_deg=5.0, start_arm_rad=1.0)
    sim = make_task(cfg).sim(DEVICE, 512, seed=0, randomize=True, imu=False, camera=False)
    sim.reset()
    from_hanging = np.abs(np.rad2deg(np.pi - np.mod(sim.state[:, 1], 2 * np.pi)))
    assert from_hanging.max() <= 5.0 + 1.0  # released from still: a control step of motion at most
    assert np.abs(sim.state[:, 0]).max() <= 1.0 + 0.05
    assert np.abs(sim.state[:, 0]).max() > 0.8  # spread over the range, not all centred


def test_swingup_reward_climbs_from_hanging_to_upright_and_falling_is_not_a_failure() -> None:
    task = make_task(TaskConfig(name="swingup"))
    alphas = np.deg2rad([180, 135, 90, 45, 0])
    states = np.stack([np.zeros(5), alphas, np.zeros(5), np.zeros(5)], axis=-1)
    r = task.reward(states, np.zeros(5))
    assert np.all(np.diff(r) > 0) and r[0] == pytest.approx(0.0) and r[-1] == pytest.approx(1.0)
    assert not task.failed(states).any()  # hanging, or fallen from the top: the episode goes on
    assert make_task(TaskConfig(name="balance")).failed(states[:1]).all()  # in balance, fallen is failed


def test_swingup_arm_penalty_fades_away_from_upright_with_its_power() -> None:
    """``arm_upright_power`` frees a wide arm while pumping, and asks the same at the top."""
    plain, focused = make_task(TaskConfig(name="swingup")), make_task(TaskConfig(name="swingup", arm_upright_power=4))
    wide_arm = np.array([[2.0, np.pi / 2, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0]])  # pendulum horizontal; upright
    r_plain, r_focused = plain.reward(wide_arm, np.zeros(2)), focused.reward(wide_arm, np.zeros(2))
    assert r_plain[0] < 0 < r_focused[0]  # u = 0.5: 0.5 (1 - 2) against 0.5 - 0.5^4 * 2
    assert r_focused[1] == pytest.approx(r_plain[1])  # upright, u = 1: the same penalty


def _track(task_cfg: TaskConfig, alphas_deg: list[float], thetas: list[float] | None = None, dt: float = 1.0):
    tracker = SuccessTracker(make_task(task_cfg), 1, dt)
    for k, a in enumerate(alphas_deg):
        theta = 0.0 if thetas is None else thetas[k]
        tracker.update(np.array([[theta, np.deg2rad(a), 0.0, 0.0]]), np.zeros(1))
    return tracker


def test_swingup_success_needs_upright_by_reach_and_held_for_hold() -> None:
    cfg = TaskConfig(name="swingup", reach_s=3.0, hold_s=2.0)
    ok = _track(cfg, [180, 90, 5, 5, 5, 90])  # up at t=2 (<= 3), held 3 steps (>= 2)
    assert ok.success[0] and ok.time_to_upright[0] == pytest.approx(2.0)
    late = _track(cfg, [180, 180, 180, 180, 5, 5, 5])  # up at t=4 > reach_s
    assert not late.success[0]
    short = _track(cfg, [5, 90, 5, 90, 5, 90])  # never two upright steps in a row
    assert not short.success[0]
    wound = _track(cfg, [180, 5, 5, 5, 5], thetas=[0, 0, 0, 2.6, 0])  # the cable limit, even after holding
    assert not wound.success[0] and wound.failed_arm[0]


def test_balance_success_is_upright_from_first_step_to_last() -> None:
    cfg = TaskConfig(name="balance")
    assert _track(cfg, [5, 10, 5, 0]).success[0]
    assert not _track(cfg, [5, 10, 25, 0]).success[0]  # left upright once (fall_deg 30: not failed, not held)


def test_the_gymnasium_env_plays_the_configured_task() -> None:
    env = make_env(overrides=["task.name=swingup"], obs_mode="state", randomize=False)
    _, info = env.reset(seed=0)
    assert abs(abs(float(np.mod(info["state"][1], 2 * np.pi))) - np.pi) < np.deg2rad(10)  # hanging
    # Drive the arm one way at full voltage: the cable limit ends the episode as a failure.
    for _ in range(500):
        _, reward, terminated, truncated, info = env.step(np.array([1.0], np.float32))
        if terminated or truncated:
            break
    assert terminated and abs(info["state"][0]) > 2.5 and reward == TaskConfig().limit_penalty


def test_config_refuses_an_unknown_task_listing_the_valid_ones_and_a_start_past_the_limit() -> None:
    with pytest.raises(ConfigError, match=r"task\.name: expected one of 'balance', 'swingup', got 'cartwheel'"):
        load_experiment(overrides=["task.name=cartwheel"])
    with pytest.raises(ConfigError, match=r"start_arm_rad.*arm_limit_rad"):
        load_experiment(overrides=["task.start_arm_rad=3.0"])
