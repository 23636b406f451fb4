"""The device observation's derived values (perception/device_observation.py) for the balancer: with the true
pitch in place of the estimate, its distance, speed and heading are where the robot is, how fast it goes and
where it points — so the coefficients the device gives (sim/balancer.py) have the right signs and scales."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from sensorimotor.perception.device_observation import DeviceObservation
from sensorimotor.perception.imu_targets import ImuEstimator, Target
from sensorimotor.sim.balancer import PERCEPTION_TARGETS, STATE_NAMES, BalancerConfig
from sensorimotor.sim.mujoco_device import MujocoDeviceSim

pytest.importorskip("mujoco")


def _observation(cfg: BalancerConfig, derived: bool) -> DeviceObservation:
    spec = cfg.spec()
    est = ImuEstimator(tuple(Target(*t) for t in PERCEPTION_TARGETS), window=cfg.imu.window)
    return DeviceObservation(
        est, [c.name for c in spec.imu_channels], [e.name for e in spec.encoders], [e.cpr for e in spec.encoders],
        cfg.imu.rate_hz, derived=cfg.derived_observations() if derived else (),
    ).eval()  # fmt: skip


@pytest.mark.parametrize(("common", "differential"), [(0.7, 0.0), (0.0, 1.5)], ids=["straight", "turning"])
def test_derived_distance_speed_and_heading_follow_the_robot(common: float, differential: float) -> None:
    cfg = BalancerConfig()
    cfg = dataclasses.replace(cfg, imu=dataclasses.replace(cfg.imu, noise=False))
    sim = MujocoDeviceSim(cfg.mjcf_device(), 4, seed=0, randomize=False)
    sim.reset()
    for _ in range(15):  # driven open loop for 0.15 s: it rolls (and turns) while it tips, not yet past 20 deg
        sim.step(np.tile([common - differential, common + differential], (4, 1)))
    raw, truth = sim.observation(), sim.received()["imu_state"]  # the true state at the newest sample
    full, base = _observation(cfg, derived=True), _observation(cfg, derived=False)
    with torch.no_grad():
        values = base(torch.from_numpy(raw["imu"]), torch.from_numpy(raw["encoder"])).numpy()
    values[:, base.names.index("pitch")] = truth[:, STATE_NAMES.index("pitch")]
    derived = values @ full.mix.numpy()
    got = dict(zip(full.derived, derived.T, strict=True))
    x, yaw, pitch = (truth[:, STATE_NAMES.index(n)] for n in ("x", "yaw", "pitch"))
    assert np.abs(pitch).max() < np.radians(20)  # still on its wheels: rolling, not lying on the floor
    assert np.abs(got["heading"] - yaw).max() < 0.01 + 0.05 * np.abs(yaw).max()
    if differential:
        assert np.abs(yaw).min() > 0.05  # it did turn
        return
    # the start's tilt (within 5 deg: 3.5 mm at the wheel) and the tyres' rest penetration (1 %) are the error
    assert np.abs(x).min() > 0.005 and np.abs(got["distance"] - x).max() < 0.004 + 0.02 * np.abs(x).max()
    speed = truth[:, STATE_NAMES.index("speed")]
    assert np.abs(got["speed"] - speed).max() < 0.1 * np.abs(speed).max()


def test_a_derived_value_naming_nothing_observed_is_refused() -> None:
    est = ImuEstimator(tuple(Target(*t) for t in PERCEPTION_TARGETS))
    with pytest.raises(ValueError, match="derived observation 'x': no 'wheel_angle' to take"):
        DeviceObservation(est, ["gyro_x"], ["wheel_l"], [1320], 1000.0, derived=[("x", {"wheel_angle": 1.0})])
