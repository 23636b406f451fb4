"""The estimators' bias-calibrating Kalman filters: the IMU filter separates the accelerometer bias
from the angle across a swing and estimates the gyro bias; the fused one also calibrates the
camera's roll and lag, takes each frame once, and skips frames the camera head calls faulty.
Both start from the all-zeros state the runtime gives them and run in onnxruntime as in torch."""

from __future__ import annotations

import math

import numpy as np
import onnxruntime as ort
import torch

from sensorimotor.perception.config import FilterConfig
from sensorimotor.perception.filter import (  # fmt: skip
    FUSED_LAG,
    FUSED_ROLL,
    FUSED_STATE_SIZE,
    GYRO_SIGN,
    STATE_SIZE,
    FusedFilter,
    ImuFilter,
    frame_signature,
    run_fused_sequences,
    run_sequences,
)

IMU_HZ, STREAM_HZ, W = 1000.0, 100.0, 64


def swinging(seconds: float, bias_xy: tuple[float, float], gyro_bias: float, noise_deg: float, seed: int = 0):
    """A swing-up-like motion: alpha swings from hanging with an amplitude growing to 2.8 rad in 3 s.

    Returns (measured angle (1, T), gyro windows (1, T, W), true alpha (1, T), true rate (1, T)),
    the measurement carrying the accelerometer-bias error a filter must remove.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * IMU_HZ) + W
    t = np.arange(n) / IMU_HZ
    alpha = math.pi + 2.8 * np.minimum(1.0, 0.1 + t / 3.0) * np.sin(2 * math.pi * 0.5 * t)
    rate = np.gradient(alpha, 1 / IMU_HZ)
    gyro = GYRO_SIGN * rate + gyro_bias + rng.normal(0, 0.01, n)
    idx = np.arange(W - 1, n, int(IMU_HZ / STREAM_HZ))  # the newest sample of each control step's window
    a = alpha[idx]
    measured = a + bias_xy[0] * np.cos(a) + bias_xy[1] * np.sin(a) + np.radians(noise_deg) * rng.normal(size=len(a))
    windows = np.stack([gyro[i - W + 1 : i + 1] for i in idx])
    f32 = lambda x: torch.tensor(x[None], dtype=torch.float32)  # noqa: E731
    return f32(measured), f32(windows), f32(a), f32(rate[idx])


def err_deg(est: torch.Tensor, truth: torch.Tensor) -> np.ndarray:
    return np.degrees(np.angle(np.exp(1j * (est.numpy() - truth.numpy()))))


def test_filter_removes_the_accelerometer_bias_across_a_swing() -> None:
    bias = (0.02, -0.015)  # rad: about 1.2 and 0.9 deg, the simulator's turn-on 1-sigma
    measured, gyro, alpha, rate = swinging(8.0, bias, gyro_bias=0.03, noise_deg=1.0)
    est, est_rate = run_sequences(ImuFilter(FilterConfig(), IMU_HZ, STREAM_HZ), measured, gyro)
    late = slice(300, None)  # after 3 s of swinging
    raw = np.sqrt(np.mean(err_deg(measured, alpha)[:, late] ** 2))
    filtered = np.sqrt(np.mean(err_deg(est, alpha)[:, late] ** 2))
    assert raw > 1.0  # the bias and the noise
    assert filtered < 0.25, (raw, filtered)
    # the rate is the gyro with its bias (0.03 rad/s) estimated out
    assert float((est_rate - rate)[:, late].abs().mean()) < 0.015


def test_a_fresh_state_takes_the_first_measurement() -> None:
    filt = ImuFilter(FilterConfig(), IMU_HZ, STREAM_HZ)
    angle = torch.tensor([0.3, -2.0, 3.1])
    alpha, _, state = filt(angle, torch.zeros(3, W), torch.zeros(3, STATE_SIZE))
    assert torch.allclose(alpha, angle, atol=1e-3)
    assert torch.all(state[:, 0] == 1.0)  # started
    p = state[:, 5:].reshape(3, 4, 4)
    assert torch.allclose(p, p.transpose(1, 2), atol=1e-9)
    assert torch.all(torch.linalg.eigvalsh(p.double()) > 0)


def test_angle_estimates_wrap_through_upright_and_hanging() -> None:
    """A pendulum spinning over and over: the estimate follows through +-pi without a jump."""
    n = 200
    k = int(IMU_HZ / STREAM_HZ)
    alpha = np.cumsum(np.full(n, 12.0 / STREAM_HZ))  # 12 rad/s, ~4 turns
    gyro = np.repeat(np.full((n, 1), GYRO_SIGN * 12.0), W, axis=1)
    measured = torch.tensor(np.angle(np.exp(1j * alpha))[None], dtype=torch.float32)
    est, _ = run_sequences(
        ImuFilter(FilterConfig(), IMU_HZ, STREAM_HZ), measured, torch.tensor(gyro[None], dtype=torch.float32)
    )
    assert k == 10
    assert np.abs(err_deg(est, torch.tensor(alpha[None]))).max() < 0.5


def test_onnx_export_carries_the_state_like_torch(tmp_path) -> None:
    filt = ImuFilter(FilterConfig(), IMU_HZ, STREAM_HZ).eval()
    measured, gyro, _, _ = swinging(3.0, (0.02, 0.01), 0.02, 1.0, seed=1)
    path = tmp_path / "filter.onnx"
    args = (measured[:, 0], gyro[:, 0], torch.zeros(1, STATE_SIZE))
    torch.onnx.export(filt, args, path, input_names=["angle", "gyro", "state"],
                      output_names=["alpha", "rate", "state_next"], dynamo=False)  # fmt: skip
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    state_t = torch.zeros(1, STATE_SIZE)
    state_o = np.zeros((1, STATE_SIZE), np.float32)
    worst = 0.0
    for t in range(measured.shape[1]):
        a_t, _, state_t = filt(measured[:, t], gyro[:, t], state_t)
        a_o, _, state_o = sess.run(
            None, {"angle": measured[:, t].numpy(), "gyro": gyro[:, t].numpy(), "state": state_o}
        )
        worst = max(worst, float(np.abs(a_o - a_t.numpy()).max()))
    assert worst < 1e-5, worst


def camera(alpha: torch.Tensor, rate: torch.Tensor, roll: float, lag_s: float, noise_deg: float, seed: int = 0):
    """What the image head would see of ``alpha`` (1, T) at 100 Hz: a 50 Hz camera (each frame seen twice) with
    ``roll`` (rad) and ``lag_s`` behind; returns (image angle, signature), both (1, T)."""
    rng = np.random.default_rng(seed)
    t = alpha.shape[1]
    frame = np.arange(t) // 2 * 2  # the control step each frame was new at
    seen = alpha[0, frame].numpy() + roll - lag_s * rate[0, frame].numpy()
    noise = np.radians(noise_deg) * rng.normal(size=t)[frame]
    f32 = lambda x: torch.tensor(x[None], dtype=torch.float32)  # noqa: E731
    return f32(seen + noise), f32(frame + 1.0)  # a distinct signature per frame


def test_fused_filter_calibrates_the_camera_roll_and_lag_and_beats_the_imu_filter() -> None:
    measured, gyro, alpha, rate = swinging(8.0, (0.02, -0.015), gyro_bias=0.03, noise_deg=5.0)
    roll, lag = math.radians(2.0), 0.012
    image, sig = camera(alpha, rate, roll, lag, noise_deg=1.0)
    ok = torch.ones_like(image)
    filt = FusedFilter(FilterConfig(), IMU_HZ, STREAM_HZ)
    state = torch.zeros(1, FUSED_STATE_SIZE)
    for t in range(measured.shape[1]):
        _, _, state = filt(measured[:, t], image[:, t], ok[:, t], sig[:, t], gyro[:, t], state)
    assert abs(float(state[0, FUSED_ROLL]) - roll) < math.radians(0.3), math.degrees(float(state[0, FUSED_ROLL]))
    assert abs(float(state[0, FUSED_LAG]) - lag) < 0.003, float(state[0, FUSED_LAG])  # s
    fused, _, rolls = run_fused_sequences(filt, measured, image, ok, sig, gyro)
    assert float(rolls[0, -1]) == float(state[0, FUSED_ROLL])  # the same filter, the same episode
    imu_only, _ = run_sequences(ImuFilter(FilterConfig(), IMU_HZ, STREAM_HZ), measured, gyro)
    late = slice(300, None)
    rms = lambda est: np.sqrt(np.mean(err_deg(est, alpha)[:, late] ** 2))  # noqa: E731
    assert rms(fused) < 0.9 * rms(imu_only), (rms(fused), rms(imu_only))


def test_fused_filter_takes_each_frame_once_and_skips_faulty_ones() -> None:
    filt = FusedFilter(FilterConfig(), IMU_HZ, STREAM_HZ)
    imu_angle, gyro = torch.zeros(1), torch.zeros(1, W)
    image, ok, sig = torch.full((1,), 0.03), torch.ones(1), torch.full((1,), 7.0)
    _, _, s1 = filt(imu_angle, image, ok, sig, gyro, torch.zeros(1, FUSED_STATE_SIZE))
    _, _, again = filt(imu_angle, image, ok, sig, gyro, s1)  # the same frame, seen again
    _, _, new = filt(imu_angle, image, ok, sig + 1, gyro, s1)  # a new one
    _, _, faulty = filt(imu_angle, image, torch.zeros(1), sig + 1, gyro, s1)  # a new one, called faulty
    _, _, imu_only = filt(imu_angle, image, torch.zeros(1), sig, gyro, s1)
    torch.testing.assert_close(again, imu_only, rtol=0, atol=0)  # a repeated frame adds nothing
    torch.testing.assert_close(faulty[:, :-1], imu_only[:, :-1], rtol=0, atol=0)  # nor does a faulty one
    assert float(new[0, 5]) > float(again[0, 5]) + 1e-4  # a new ok frame moves the roll


def test_frame_signature_is_exact_and_tells_frames_apart() -> None:
    gen = torch.Generator().manual_seed(0)
    frames = torch.randint(0, 256, (2, 1, 64, 64), dtype=torch.uint8, generator=gen)
    near = frames[:1].clone()
    near[0, 0, 10, 11] += 1  # one pixel, one level
    sig = frame_signature(torch.cat([frames, near, frames[:1]]))
    assert sig[0] != sig[1] and sig[0] == sig[3] and float(sig[0]) == float(sig[0].round())
    bright = torch.full((1, 1, 255, 255), 255, dtype=torch.uint8)  # the largest frame a device may send
    assert float(frame_signature(bright)) == float((255 * ((torch.arange(255 * 255) * 2654435761) % 4093 % 2)).sum())
