"""Noise-free sensor references against independent ones: finite differences, rotation, image moments."""

from __future__ import annotations

import numpy as np

from sensorimotor.sim.furuta import FurutaParams, derivative, rk4_step
from sensorimotor.sim.sensors import encoder_counts, imu_ideal, render_clean

P = FurutaParams()
R = 0.1


def _imu_point(x: np.ndarray) -> np.ndarray:
    """World position of the IMU point (independent of the sensor model's frame algebra)."""
    th, al = x[0], x[1]
    radial = np.array([np.cos(th), np.sin(th), 0.0])
    tangent = np.array([-np.sin(th), np.cos(th), 0.0])
    return P.Lr * radial + R * (np.sin(al) * tangent + np.cos(al) * np.array([0.0, 0.0, 1.0]))


def _body_axes(x: np.ndarray) -> np.ndarray:
    th, al = x[0], x[1]
    bx = np.array([np.cos(th), np.sin(th), 0.0])
    bz = np.array([-np.sin(th) * np.sin(al), np.cos(th) * np.sin(al), np.cos(al)])
    return np.stack([bx, np.cross(bz, bx), bz])  # rows: body x, y, z in world


def test_accelerometer_matches_finite_differences() -> None:
    rng = np.random.default_rng(3)
    for _ in range(10):
        x = rng.normal(size=4) * np.array([1.0, 1.5, 3.0, 3.0])
        v = rng.uniform(-5, 5)
        h = 1e-4
        xp, xm = rk4_step(x, np.array(v), P, h), rk4_step(x, np.array(v), P, -h)
        acc = (_imu_point(xp) - 2 * _imu_point(x) + _imu_point(xm)) / h**2
        specific = acc + np.array([0.0, 0.0, P.g])
        expected = _body_axes(x) @ specific
        got = imu_ideal(x, np.array(v), P, R)[3:]
        assert np.allclose(got, expected, atol=2e-3 * max(1.0, np.abs(expected).max()))


def test_gyro_matches_rotation_of_the_body_frame() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=4)
    h = 1e-6
    d = derivative(x, np.array(0.0), P)
    a_p, a_m = _body_axes(x + h * d), _body_axes(x - h * d)
    a = _body_axes(x)  # A = R^T, with R the body-to-world rotation
    skew = ((a_p - a_m) / (2 * h)).T @ a  # dR R^T = [omega_world]x
    omega_world = np.array([skew[2, 1], skew[0, 2], skew[1, 0]])
    assert np.allclose(imu_ideal(x, np.array(0.0), P, R)[:3], a @ omega_world, atol=1e-5)


def test_static_upright_and_hanging_accelerometer_reads_gravity() -> None:
    up = imu_ideal(np.zeros(4), np.array(0.0), P, R)
    assert np.allclose(up, [0, 0, 0, 0, 0, P.g], atol=1e-12)
    down = imu_ideal(np.array([0.0, np.pi, 0.0, 0.0]), np.array(0.0), P, R)
    assert np.allclose(down[3:], [0, 0, -P.g], atol=1e-9)


def test_encoder_quantization() -> None:
    assert encoder_counts(np.array([0.0, 2 * np.pi, -1e-9, np.pi]), 2048).tolist() == [0, 2048, -1, 1024]


def test_camera_shows_the_pendulum_angle() -> None:
    """The principal axis of the rendered rod (image moments) points at alpha."""
    for alpha in (-1.0, -0.3, 0.0, 0.4, 2.5):
        img = render_clean(np.array([[0.5, alpha, 0.0, 0.0]]), P)[0]
        rows, cols = np.nonzero(img > 0.5)
        cx, cy = cols - 31.5, 31.5 - rows
        tip = np.argmax(cx * np.sin(alpha) + cy * np.cos(alpha))  # farthest along the expected direction
        measured = np.arctan2(cx[tip], cy[tip])
        assert abs(np.angle(np.exp(1j * (measured - alpha)))) < np.deg2rad(6)
