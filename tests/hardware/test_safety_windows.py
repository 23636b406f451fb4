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
    assert x["imu"].shape == (1, 6, 16) and x["encoder"].shape == (1, 1, 16) and x["image"].shape == (1, 1, 64, 64)
    assert x["encoder"][0, 0].tolist() == list(range(34, 50))
    assert x["imu"][0, 3].tolist() == list(range(34, 50))


def _batch(first: int, n: int = 10) -> SensorBatch:
    """n samples whose every channel and encoder count is the sample's index (1 kHz)."""
    idx = np.arange(first, first + n, dtype=np.float32)
    return SensorBatch(idx[:, None].repeat(6, 1), idx.astype(np.int32))


def _stamp(last_index: int) -> int:
    return last_index * 1000  # µs at 1 kHz: a frame is stamped with its last sample's time


def test_duplicated_and_out_of_order_frames_never_enter_the_window() -> None:
    w = SensorWindows(window=16, image_shape=(4, 4), imu_rate_hz=1000)
    for k in range(3):
        assert w.add_sensor(_batch(10 * k), _stamp(10 * k + 9))
    before = w.inputs()["encoder"].copy()
    assert not w.add_sensor(_batch(20), _stamp(29))  # the same frame again
    assert not w.add_sensor(_batch(10), _stamp(19))  # an older one, late
    assert np.array_equal(w.inputs()["encoder"], before)
    assert (w.duplicates, w.out_of_order, w.samples) == (1, 1, 30)


def test_one_lost_frame_is_interpolated_a_long_gap_empties_the_window() -> None:
    w = SensorWindows(window=32, image_shape=(4, 4), imu_rate_hz=1000)
    w.add_image(ImageFrame(np.zeros((4, 4), np.uint8)))
    for k in range(4):
        w.add_sensor(_batch(10 * k), _stamp(10 * k + 9))
    assert w.ready
    w.add_sensor(_batch(50), _stamp(59))  # samples 40..49 lost: 10 > 32 // 4, too many to interpolate
    assert w.gaps == 1 and w.samples_missing == 10 and not w.ready  # too long to fill: refill first
    for k in range(6, 9):
        w.add_sensor(_batch(10 * k), _stamp(10 * k + 9))
    assert w.ready  # 40 contiguous samples since the gap

    short = SensorWindows(window=64, image_shape=(4, 4), imu_rate_hz=1000)  # fills up to 16 samples
    short.add_image(ImageFrame(np.zeros((4, 4), np.uint8)))
    for k in range(7):
        short.add_sensor(_batch(10 * k), _stamp(10 * k + 9))
    short.add_sensor(_batch(80), _stamp(89))  # samples 70..79 lost
    assert short.ready and short.samples_filled == 10
    # The samples were a straight line (value = index), so interpolation restores them exactly.
    assert short.inputs()["encoder"][0, 0].tolist() == list(range(26, 90))


def test_slew_limit_and_state_stop() -> None:
    from sensorimotor.hardware.safety import (
        STALL_PERIODS,
        slew_limit,
        stale_deadline_ns,
        state_stop_reason,
        tilt_deg_from_estimates,
    )

    assert slew_limit([5.0], [0.0], 2.0) == ((2.0,), True)
    assert slew_limit([-1.0], [0.0], 2.0) == ((-1.0,), False)
    assert slew_limit([0.1], [0.7], 20.0) == ((0.1,), False)  # exactly the target: 0.7 + (0.1 - 0.7) != 0.1
    assert state_stop_reason([("arm", 0.5, 2.8)], 5.0, 0.0) is None
    assert "arm at +2.90 rad" in (state_stop_reason([("arm", 2.9, 2.8)], None, 0.0) or "")
    assert state_stop_reason([("arm", math.nan, 2.8)], None, 0.0) is not None  # an encoder gone bad stops too
    assert "tilt estimate at +70 deg" in (state_stop_reason([("arm", 0.0, 2.8)], 70.0, 45.0) or "")
    assert state_stop_reason([("arm", 0.0, 2.8)], 170.0, 0.0) is None  # fall stop off (swing-up)
    # only bounded encoders are listed: a wheel's 40 rad is no reason to stop, a second arm's is
    assert state_stop_reason([], None, 0.0) is None
    assert "lift at -1.60" in (state_stop_reason([("arm", 0.1, 2.8), ("lift", -1.6, 1.5)], None, 0.0) or "")
    est = {"imu_sin": 1.0, "imu_cos": 0.0, "img_sin": 0.0, "img_cos": 1.0, "camera_ok": 0.1}
    assert tilt_deg_from_estimates(est) == 90.0  # camera not ok: the IMU's estimate
    assert tilt_deg_from_estimates({**est, "camera_ok": 0.9}) == 0.0
    # a model that names its tilt estimate (the balancer's pitch, rad) is watched through it
    assert tilt_deg_from_estimates({"pitch": math.pi / 4, **est}, "pitch") == 45.0
    assert tilt_deg_from_estimates(est, "pitch") is None
    # The failsafe acts before the next-but-one frame would be due: within 2 control periods.
    period = 10_000_000
    assert stale_deadline_ns(0, period, in_failsafe=False) < 2 * period
    assert stale_deadline_ns(0, period, in_failsafe=False) == round(STALL_PERIODS * period)
    assert stale_deadline_ns(0, period, in_failsafe=True) == period
