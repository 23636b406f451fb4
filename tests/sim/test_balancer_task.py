"""The balancer's task (sim/balancer_task.py): its reward peaks upright at home, a fall ends the episode with
the penalty, and success needs both upright throughout and home at the end."""

from __future__ import annotations

import numpy as np
import pytest

from sensorimotor.configs.schema import ConfigError, build
from sensorimotor.sim.balancer_task import BalanceInPlace, BalancerTaskConfig

TASK = BalanceInPlace(BalancerTaskConfig())
HOME = np.zeros(7)


def _at(**values: float) -> np.ndarray:
    names = ("x", "y", "pitch", "yaw", "speed", "pitch_rate", "yaw_rate")
    return np.array([values.get(n, 0.0) for n in names])


def test_the_reward_is_highest_upright_and_still_at_home() -> None:
    best = TASK.reward(HOME, np.zeros(2))
    assert best == pytest.approx(1.0)
    for away in (_at(pitch=0.2), _at(x=0.3), _at(y=-0.3), _at(speed=0.5), _at(yaw_rate=2.0), _at(pitch_rate=1.0)):
        assert TASK.reward(away, np.zeros(2)) < best
    assert TASK.reward(HOME, np.array([1.0, -1.0])) < best


def test_falling_past_fall_deg_fails_with_the_penalty() -> None:
    states = np.stack([_at(pitch=np.radians(29)), _at(pitch=np.radians(-31)), _at(pitch=1.6)])
    np.testing.assert_array_equal(TASK.failed(states), [False, True, True])
    assert TASK.reward(states, np.zeros((3, 2)))[1] == TASK.cfg.fall_penalty


def test_success_is_upright_throughout_and_home_at_the_end() -> None:
    final = np.stack([_at(x=0.05), _at(x=0.2), _at(y=0.05)])
    got = TASK.success(np.array([True, True, False]), final)
    np.testing.assert_array_equal(got, [True, False, False])


def test_a_fall_angle_below_upright_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"task.fall_deg: 10.0 is below upright_deg 15.0"):
        build(BalancerTaskConfig, {"fall_deg": 10.0}, prefix="task")
