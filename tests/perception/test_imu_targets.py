"""A device's own IMU targets (perception/imu_targets.py) on the balancer: windows labelled by the simulator,
the shipped encoder fine-tuned with a pitch head reads pitch and pitch rate far better than knowing nothing,
and an encoders file made for another window is refused by name."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sensorimotor.perception.errors import WeightsError
from sensorimotor.perception.imu_targets import ImuEstimator, Target, finetune, rms_errors, simulate_windows
from sensorimotor.perception.weights import SHIPPED, read_encoders
from sensorimotor.sim.balancer import PERCEPTION_TARGETS, STATE_NAMES, BalancerConfig, BalancerDevice, Explorer
from sensorimotor.sim.mujoco_device import MujocoDeviceSim

pytest.importorskip("mujoco")
TARGETS = [Target(*t) for t in PERCEPTION_TARGETS]
COLUMNS = [STATE_NAMES.index(t.name) for t in TARGETS]


def _windows(n: int, seed: int):  # type: ignore[no-untyped-def]
    sim = MujocoDeviceSim(BalancerDevice(BalancerConfig()), 32, seed)
    explorer = Explorer(sim, seed)
    return simulate_windows(sim, explorer, COLUMNS, n, every=5, restart=explorer.fallen)


def test_windows_are_labelled_with_the_state_at_their_newest_sample_and_are_seeded() -> None:
    a, b = _windows(256, 3), _windows(256, 3)
    torch.testing.assert_close(a.imu, b.imu, rtol=0, atol=0)
    assert a.imu.shape == (256, 6, 64) and a.labels.shape == (256, 2)
    # the explorer keeps the robots up but moving: pitch spans degrees, not hundredths
    assert 0.02 < float(a.labels[:, 0].abs().max()) < math.radians(45)


def test_the_fine_tuned_estimator_reads_pitch_and_its_rate() -> None:
    torch.manual_seed(0)
    data = _windows(3072, 0)
    train, val = data.split(0.1, 0)
    test = _windows(512, 99)
    est = ImuEstimator(TARGETS)
    est.load_shipped()
    finetune(est, train, val, steps=300, seed=0)
    err = rms_errors(est, test)
    spread = {t.name: math.degrees(float(test.labels[:, i].std())) for i, t in enumerate(TARGETS)}
    assert err["pitch"] < 0.5 * spread["pitch"], (err, spread)  # the floor: ~1 deg of accelerometer turn-on bias
    assert err["pitch_rate"] < 0.3 * spread["pitch_rate"], (err, spread)


def test_an_encoders_file_for_another_window_is_refused_by_name(tmp_path: Path) -> None:
    blob = read_encoders(SHIPPED)
    torch.save(blob, tmp_path / "enc.pt")
    est = ImuEstimator(TARGETS, window=32)
    with pytest.raises(WeightsError, match=r"enc.pt: its IMU encoder does not fit this window .*sim pretrain"):
        est.load_shipped(tmp_path / "enc.pt")
    with torch.no_grad():
        assert np.isfinite(est(torch.zeros(2, 6, 32)).numpy()).all()  # the estimator is left as it was built
