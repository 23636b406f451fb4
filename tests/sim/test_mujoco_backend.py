"""The MuJoCo backend: the Qube in MJCF against the rigid-body equations, the numba core, and its own sensors."""

from __future__ import annotations

import numpy as np
import pytest

from sensorimotor.sim.furuta import FurutaParams, motor_torque, rk4_step
from sensorimotor.sim.mujoco_backend import MujocoBatch, furuta_mjcf

DT, STEPS = 1e-3, 3000
IDEAL = FurutaParams().ideal()  # frictionless, ideal amplifier: the two friction models differ (docs/simulator.md)


def chirp(volts: float) -> np.ndarray:
    t = np.arange(STEPS) * DT
    return volts * np.sin(2 * np.pi * (0.5 + t) * t)


def rigid_body_rk4(x: np.ndarray, v: np.ndarray, p: FurutaParams) -> np.ndarray:
    """sim/furuta.py's equations with the pendulum's own inertia about the vertical kept (e = b, not mp l^2)."""
    half, jp = p.Lp / 2, p.mp * p.Lp**2 / 12
    a, b, c, d = p.mr * p.Lr**2 / 3 + p.mp * p.Lr**2, jp + p.mp * half**2, p.mp * p.Lr * half, p.mp * p.g * half

    def f(x: np.ndarray, u: float) -> np.ndarray:
        _, al, thd, ald = x
        s, co = np.sin(al), np.cos(al)
        m11, m12 = a + b * s * s, c * co
        r1 = motor_torque(u, thd, p) - p.Dr * thd - 2 * b * s * co * thd * ald + c * s * ald**2
        r2 = -p.Dp * ald + b * s * co * thd**2 + d * s
        det = m11 * b - m12 * m12
        return np.array([thd, ald, (b * r1 - m12 * r2) / det, (m11 * r2 - m12 * r1) / det])

    out = []
    for u in v:
        k1 = f(x, u)
        k2 = f(x + DT / 2 * k1, u)
        k3 = f(x + DT / 2 * k2, u)
        k4 = f(x + DT * k3, u)
        x = x + DT / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(x)
    return np.array(out)


def numba_model_rk4(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """sim/furuta.py's own equations (Quanser's workbook Lagrangian), RK4 at DT: (T, 4) states after each step."""
    out = []
    for u in v:
        x = rk4_step(x, u, IDEAL, DT)
        out.append(x)
    return np.array(out)


@pytest.fixture(scope="module")
def free_arm() -> MujocoBatch:
    return MujocoBatch(furuta_mjcf(IDEAL, DT, friction=False, limit=False))


def test_mjcf_is_the_rigid_body_the_equations_describe(free_arm: MujocoBatch) -> None:
    """4 V chirp, 3 s of swings over 2.5 rad and the arm past 3 rad: the two integrators agree to 1e-4 rad."""
    v = chirp(4.0)
    start = np.array([0.0, np.pi - 0.2, 0.0, 0.0])
    ref = rigid_body_rk4(start, v, IDEAL)
    tr = free_arm.rollout(start[None, :2], start[None, 2:], v[None, :, None])
    assert np.ptp(ref[:, 1]) > 2.5 and np.ptp(ref[:, 0]) > 3.0  # large motions, not a linear regime
    assert np.abs(tr.qpos[0] - ref[:, :2]).max() < 1e-4
    assert np.abs(tr.qvel[0] - ref[:, 2:]).max() < 1e-3


def test_mjcf_and_the_numba_model_agree_while_the_pendulum_hangs(free_arm: MujocoBatch) -> None:
    """Near hanging the only difference, Jp sin^2(alpha) in the arm's inertia, is second order: < 1e-2 rad in 3 s."""
    start = np.array([0.0, np.pi - 0.2, 0.0, 0.0])
    for volts, near in ((1.0, True), (4.0, False)):
        v = chirp(volts)
        tr = free_arm.rollout(start[None, :2], start[None, 2:], v[None, :, None])
        gap = np.abs(tr.qpos[0] - numba_model_rk4(start, v)[:, :2]).max()
        # Swinging wide, the omitted term (up to Jp / (a + mp l^2) = 6.7 % of the arm's inertia) shows.
        assert gap < 1e-2 if near else gap > 0.1, (volts, gap)


def test_sensors_read_the_joints(free_arm: MujocoBatch) -> None:
    """encoder = theta, gyro x = -alpha_dot (the pendulum's swing axis), the accelerometer reads g at rest.

    ``mujoco.rollout`` reports the sensors of the state each step starts from.
    """
    v = chirp(2.0)
    tr = free_arm.rollout(np.array([[0.0, np.pi - 0.2]]), np.zeros((1, 2)), v[None, :, None])
    enc, gyro = tr.sensors[0, 1:, 0], tr.sensors[0, 1:, 1:4]
    np.testing.assert_allclose(enc, tr.qpos[0, :-1, 0], atol=1e-12)
    np.testing.assert_allclose(gyro[:, 0], -tr.qvel[0, :-1, 1], atol=1e-9)
    rest = free_arm.rollout(np.array([[0.0, np.pi]]), np.zeros((1, 2)), np.zeros((1, 5, 1)))
    assert np.linalg.norm(rest.sensors[0, -1, 4:7]) == pytest.approx(IDEAL.g, rel=1e-6)


def test_a_batch_rolls_out_each_trajectory_as_alone() -> None:
    """Eight trajectories on two threads, each equal to its own single rollout; the motor's sign and gain hold."""
    batch = MujocoBatch(furuta_mjcf(IDEAL, DT, friction=False), threads=2)
    rng = np.random.default_rng(0)
    qpos = np.column_stack([np.zeros(8), np.pi + rng.uniform(-0.3, 0.3, 8)])
    volts = rng.uniform(-3, 3, (8, 200, 1))
    tr = batch.rollout(qpos, np.zeros((8, 2)), volts)
    one = batch.rollout(qpos[3:4], np.zeros((1, 2)), volts[3:4])
    np.testing.assert_array_equal(tr.qpos[3], one.qpos[0])
    push = batch.rollout(np.array([[0.0, np.pi]]), np.zeros((1, 2)), np.full((1, 50, 1), 2.0))
    assert push.qvel[0, -1, 0] > 0.5  # +2 V turns the arm the positive way, as in the numba model
