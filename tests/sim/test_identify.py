"""Identification from an excitation: the fit recovers known parameters; a log that cannot identify anything is named."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sensorimotor.sim import identify as ident
from sensorimotor.sim.config import DeviceConfig

DEV = DeviceConfig()
RATE = DEV.imu.rate_hz
TRUTH = {"Dp": 0.0005, "Dr": 0.0015, "Rm": 3.7}  # the vendor's damping, the identified unit's motor resistance


def _schedule(seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A chirp on the arm, then a kick and a free swing: one command per control period (10 samples)."""
    index = np.arange(0, int(seconds * RATE), 10)
    t = index / RATE
    v = np.where(t < 1.5, 0.0, np.sin(2 * np.pi * (0.3 * t + 0.1 * t**2)))
    v[(t > 16) & (t < 16.3)], v[(t >= 16.3) & (t < 16.6)], v[t >= 16.6] = 4.0, -4.0, 0.0
    return index + 1, v


def _log_of(device: DeviceConfig, seconds: float, noise: float, seed: int = 0) -> ident.Excitation:
    """What a device of ``device``'s physics would log for the schedule: the simulator, with sensor noise."""
    index, volts = _schedule(seconds)
    total = int(seconds * RATE)
    blank = ident.Excitation(RATE, device.encoder_cpr, np.zeros((total, 6)), np.zeros(total), index, volts)
    prob = ident.Problem(device, blank, ident.DEFAULT_FREE, stride=1)
    x = np.zeros((1, len(prob.free) + 2))
    x[0, -2] = 0.03  # a small swing at the start, as a real pendulum has
    s = ident.simulate(prob, x, np.array([2]))[0]
    rng = np.random.default_rng(seed)
    imu = s[:, :6] + rng.normal(0.0, noise, (total, 6)) + rng.normal(0.0, 0.02, 6)  # noise and turn-on biases
    encoder = np.floor(s[:, 6] * device.encoder_cpr / (2 * np.pi))
    return ident.Excitation(RATE, device.encoder_cpr, imu, encoder, index, volts)


def test_known_parameters_are_recovered_within_10_percent() -> None:
    true_device = dataclasses.replace(DEV, physics=dataclasses.replace(DEV.physics, **TRUTH))
    ex = _log_of(true_device, 30.0, noise=0.01)
    ident.check_excitation(ex, "synthetic")
    result, *_ = ident.identify(DEV, ex)  # starts from the config's values: Dp 10x, Dr 5.6x, Rm 2.3x off
    assert result.converged and result.rms_after < 0.2 * result.rms_before
    for name, true in TRUTH.items():
        assert abs(result.values[name] / true - 1) < 0.10, (name, result.values[name], true)
    assert result.delay_substeps in (1, 2, 3)


def test_the_same_seed_gives_the_same_fit() -> None:
    ex = _log_of(DEV, 12.0, noise=0.01)
    a, *_ = ident.identify(DEV, ex, generations=3, seed=4)
    b, *_ = ident.identify(DEV, ex, generations=3, seed=4)
    assert a.values == b.values and a.rel_std == b.rel_std


def test_a_parameter_the_log_does_not_excite_is_named_not_identified() -> None:
    """The arm moves, the pendulum barely swings, and its bearing friction is asked for: reported, not written."""
    ex = _log_of(DEV, 12.0, noise=0.01)
    result, *_ = ident.identify(DEV, ex, free=("Dr", "coulomb_p"), generations=5)
    assert result.identifiable["coulomb_p"] and "coulomb_p" in result.values
    assert result.identifiable["Dr"] == ""


def test_logs_that_cannot_identify_anything_are_named() -> None:
    with pytest.raises(ident.IdentifyError, match="too short to identify anything"):
        ident.check_excitation(_log_of(DEV, 6.0, noise=0.01), "short.mcap")
    still = _log_of(DEV, 12.0, noise=0.01)
    still.encoder[:] = 100.0
    with pytest.raises(ident.IdentifyError, match="the arm never moved"):
        ident.check_excitation(still, "still.mcap")
    upright = _log_of(DEV, 12.0, noise=0.01)
    upright.imu[:, 3:] *= -1  # gravity the other way round: the pendulum stood up
    with pytest.raises(ident.IdentifyError, match="was not hanging at the start"):
        ident.check_excitation(upright, "upright.mcap")
