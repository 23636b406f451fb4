"""Classical IMU baselines: the sample stream is rebuilt exactly, and VQF / Madgwick read the pendulum angle."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sensorimotor.perception.baselines import filter_alpha, sample_stream, wrap
from sensorimotor.perception.data import Scenario, generate, random_walk
from sensorimotor.sim.config import DeviceConfig, ImuConfig

T = 120


def _swinging(noise: bool) -> tuple[np.ndarray, np.ndarray, DeviceConfig]:
    cfg = dataclasses.replace(DeviceConfig(), imu=dataclasses.replace(ImuConfig(), noise=noise))
    swing = Scenario("swing", ((0.0, 0.0), (np.pi - 0.6, np.pi + 0.6), (0.0, 0.0), (-1.0, 1.0)), random_walk(1.0))
    d = generate(cfg, 4 * T, seed=4, seq_len=T, every=1, scenarios=[swing], envs=4, clean=False)
    return d.imu.view(4, T, 6, -1).numpy(), d.state.view(4, T, 4).numpy(), cfg


def test_the_stream_rebuilt_from_consecutive_windows_contains_every_window() -> None:
    windows, _, cfg = _swinging(noise=True)
    samples, newest = sample_stream(windows[0], cfg.substeps_per_control)
    w = windows.shape[-1]
    for k in range(T):
        assert np.array_equal(samples[newest[k] - w + 1 : newest[k] + 1].T, windows[0, k].astype(np.float64)), k


@pytest.mark.parametrize(("name", "param"), [("vqf", 1.0), ("madgwick", 0.1)])
def test_filters_follow_a_swinging_pendulum_with_the_device_axes(name: str, param: float) -> None:
    windows, state, cfg = _swinging(noise=False)
    err = np.concatenate([
        wrap(filter_alpha(name, windows[i], cfg.substeps_per_control, cfg.imu.rate_hz, param) - state[i, :, 1])
        for i in range(2)
    ])  # fmt: skip
    assert np.degrees(np.sqrt(np.mean(err**2))) < 3.0  # noise-free: the swing's own accelerations only
    assert np.ptp(state[:2, :, 1]) > 0.5  # it did swing (the check is not trivially satisfied)
