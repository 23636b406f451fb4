"""The kinematic angle: gravity's direction once the link's own accelerations are subtracted."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sensorimotor.control.motions import swingup_scenarios
from sensorimotor.perception.data import generate
from sensorimotor.perception.kinematics import kinematic_angle, slope
from sensorimotor.sim.config import DeviceConfig


def test_slope_is_exact_on_a_ramp_including_the_edges() -> None:
    t = torch.arange(64, dtype=torch.float64) * 1e-3
    x = torch.stack([3.0 * t + 1.0, -2.0 * t])
    assert torch.allclose(slope(x, 1e-3), torch.tensor([[3.0], [-2.0]], dtype=torch.float64).expand(2, 64))


def _rmse_deg(est: torch.Tensor, true: torch.Tensor) -> float:
    err = torch.remainder(est.double() - true.double() + np.pi, 2 * np.pi) - np.pi
    return float(torch.rad2deg(err).pow(2).mean().sqrt())


@pytest.fixture(scope="module")
def swinging() -> tuple[DeviceConfig, object]:
    """An ideal IMU (no noise, no bias) through swing-up, pumping and rotations: what is left is the model."""
    device = DeviceConfig()
    device = dataclasses.replace(device, imu=dataclasses.replace(device.imu, noise=False))
    motions = [s for s in swingup_scenarios() if s.name in ("swing-up and balance", "pumping", "rotating")]
    return device, generate(device, 1200, seed=11, seq_len=20, every=5, scenarios=motions, clean=False)


def test_the_kinematic_angle_follows_a_swinging_pendulum_where_gravity_alone_does_not(swinging) -> None:  # type: ignore[no-untyped-def]
    device, data = swinging
    true = data.state[:, 1]
    kin = kinematic_angle(data.imu, device.imu.position_m, device.physics.Lr, 1.0 / device.imu.rate_hz)
    # What a gravity-only reading gives on the same newest sample: tangential and centripetal terms included.
    gravity_only = torch.atan2(-data.imu[:, 4, -1], data.imu[:, 5, -1])
    assert _rmse_deg(kin, true) < 1.5
    assert _rmse_deg(gravity_only, true) > 5 * _rmse_deg(kin, true)


def test_the_kinematic_angle_needs_the_right_geometry(swinging) -> None:  # type: ignore[no-untyped-def]
    """With the IMU placed at the pivot, the centripetal and tangential terms go uncorrected: the error grows."""
    device, data = swinging
    dt = 1.0 / device.imu.rate_hz
    right = _rmse_deg(kinematic_angle(data.imu, device.imu.position_m, device.physics.Lr, dt), data.state[:, 1])
    wrong = _rmse_deg(kinematic_angle(data.imu, 0.0, device.physics.Lr, dt), data.state[:, 1])
    assert wrong > 3 * right
