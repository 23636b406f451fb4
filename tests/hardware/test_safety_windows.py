"""Pure safety clamps and the sensor-window builder."""

from __future__ import annotations

import math

import numpy as np

from sensorimotor.hardware.messages import ImageFrame, SensorBatch
from sensorimotor.hardware.safety import clamp_command, command_limits
from sensorimotor.hardware.windows import SensorWindows


def test_clamp_command() -> None:
    assert clamp_command(1.0, -5, 5) == (1.0, False)
    assert clamp_command(7.0, -5, 5) == (5.0, True)
    assert clamp_command(-9.0, -5, 5) == (-5.0, True)
    assert clamp_command(math.nan, -5, 5) == (0.0, True)
    assert clamp_command(math.inf, -5, 5) == (0.0, True)


def test_command_limits_take_the_tighter_range() -> None:
    assert command_limits(-10.0, 10.0, 5.0) == (-5.0, 5.0)
    assert command_limits(-3.0, 4.0, 5.0) == (-3.0, 4.0)


def test_windows_keep_the_newest_samples_in_order() -> None:
    w = SensorWindows(window=16)
    for k in range(5):
        imu = np.arange(k * 10, k * 10 + 10, dtype=np.float32)[:, None].repeat(6, 1)
        w.add_sensor(SensorBatch(imu, np.arange(k * 10, k * 10 + 10, dtype=np.int32)))
    assert not w.ready  # no image yet
    w.add_image(ImageFrame(np.full((64, 64), 7, np.uint8)))
    x = w.inputs()
    assert w.ready
    assert x["imu"].shape == (1, 6, 16) and x["encoder"].shape == (1, 16) and x["image"].shape == (1, 1, 64, 64)
    assert x["encoder"][0].tolist() == list(range(34, 50))
    assert x["imu"][0, 3].tolist() == list(range(34, 50))
