"""Evaluation's closed-loop estimate error: measured against the simulator's truth at the step the estimate was made."""

from __future__ import annotations

import numpy as np
import pytest

from sensorimotor.control.compare import perfect_estimates
from sensorimotor.control.evaluate import RecurrentPolicy, evaluate
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.task import TaskConfig


def _policy(offset_deg: float) -> RecurrentPolicy:
    """Zero volts; estimates from the true state, the IMU's angle turned by ``offset_deg``."""

    def step(x: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray]]:
        state = x["state"].copy()
        est = perfect_estimates(state)
        state[:, 1] += np.radians(offset_deg)
        turned = perfect_estimates(state)
        for name in ("imu_sin", "imu_cos"):
            est[:, OBS_NAMES.index(name)] = turned[:, OBS_NAMES.index(name)]
        return np.zeros(len(state)), est, []

    return RecurrentPolicy(step, [], OBS_NAMES)


@pytest.mark.parametrize("offset_deg", [0.0, 2.0])
def test_the_estimate_error_is_the_angle_error_of_each_estimate(offset_deg: float) -> None:
    ev = evaluate(_policy(offset_deg), DeviceConfig(), TaskConfig(name="swingup"), 4, 0.5, seed=1)
    assert ev.estimate_rmse_deg["imu"] == pytest.approx(offset_deg, abs=1e-3)
    assert ev.estimate_rmse_deg["image"] == pytest.approx(0.0, abs=1e-3)
    assert ev.estimate_rmse_deg["fused"] == pytest.approx(0.0, abs=1e-3)


def test_a_policy_without_estimates_reports_none() -> None:
    ev = evaluate(lambda raw: np.zeros(len(raw["imu"])), DeviceConfig(), TaskConfig(name="swingup"), 2, 0.2, seed=1)
    assert ev.estimate_rmse_deg == {}
