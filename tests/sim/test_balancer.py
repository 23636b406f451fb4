"""The two-wheeled balancer's MJCF: it falls without control, its motors are DC motors, its sensors read
its joints, and a controller designed on the model's own linearization balances it and holds its place."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from sensorimotor.configs.schema import ConfigError, build
from sensorimotor.sim.balancer import (
    BalancerPhysicsConfig,
    balancer_mjcf,
    pitch_of,
    sagittal_model,
    sagittal_state,
    settled_upright,
)

mujoco = pytest.importorskip("mujoco")

P = BalancerPhysicsConfig()
V_MAX = 6.0


@pytest.fixture(scope="module")
def model() -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(balancer_mjcf(P))


def _tilted(model: mujoco.MjModel, pitch_deg: float) -> mujoco.MjData:
    data = mujoco.MjData(model)
    qpos, _ = settled_upright(model)
    half = np.radians(pitch_deg) / 2
    qpos[3:7] = [np.cos(half), 0.0, np.sin(half), 0.0]  # about +y: the top leans towards +x
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)
    return data


def _lqr(model: mujoco.MjModel) -> np.ndarray:
    a, b = sagittal_model(model)
    q, r = np.diag([10.0, 100.0, 1.0, 1.0, 0.01, 0.01]), np.array([[1.0]])
    p = scipy.linalg.solve_discrete_are(a, b, q, r)
    return np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)


def test_upright_is_unstable_and_the_body_falls_onto_the_floor(model: mujoco.MjModel) -> None:
    a, _ = sagittal_model(model)
    assert np.abs(np.linalg.eigvals(a)).max() > 1.001  # an unstable mode: ~7/s at 1 kHz
    data = _tilted(model, 3.0)
    pitches = []
    for _ in range(2000):
        mujoco.mj_step(model, data)
        pitches.append(float(pitch_of(data.qpos)))
    assert max(pitches) > np.radians(60)  # it falls forward, the way it leaned...
    assert abs(pitches[-1]) < np.radians(100) and abs(data.qpos[2] - P.rw) < 0.01  # ...and lies on the floor


def test_each_motor_is_a_dc_motor_at_its_wheel(model: mujoco.MjModel) -> None:
    """Torque kt/Rm (V - km omega) on the wheel: stall torque at rest, less when the wheel turns."""
    data = mujoco.MjData(model)
    qpos, _ = settled_upright(model)
    data.qpos[:] = qpos
    data.ctrl[:] = [4.0, -2.0]
    data.qvel[6:8] = [0.0, 5.0]  # left wheel at rest, right turning forward at 5 rad/s
    mujoco.mj_forward(model, data)
    expected = [P.kt / P.Rm * 4.0, P.kt / P.Rm * (-2.0 - P.km * 5.0)]
    np.testing.assert_allclose(data.actuator_force, expected, rtol=1e-9)


def test_sensors_read_the_wheels_and_the_body(model: mujoco.MjModel) -> None:
    data = mujoco.MjData(model)
    qpos, _ = settled_upright(model)
    data.qpos[:] = qpos
    data.qpos[7:9] = [1.25, -40.0]  # a wheel turns without limit: many turns read as such
    data.qvel[4] = 0.7  # pitching forward
    mujoco.mj_forward(model, data)
    gyro, accel, enc = data.sensordata[0:3], data.sensordata[3:6], data.sensordata[6:8]
    np.testing.assert_allclose(enc, [1.25, -40.0])
    np.testing.assert_allclose(gyro, [0.0, 0.7, 0.0], atol=1e-12)
    assert accel[2] == pytest.approx(P.g, rel=0.05)  # at rest, upright: the floor's reaction, +g along the body


def test_the_models_own_linearization_gives_a_controller_that_balances_and_holds_its_place(
    model: mujoco.MjModel,
) -> None:
    """LQR on ``sagittal_model`` (what a classical baseline for the balancer does), run on the full nonlinear
    MJCF with saturated motors: from 5 degrees it is upright and back home within 10 s, never past 10 degrees."""
    k = _lqr(model)
    data = _tilted(model, 5.0)
    worst = 0.0
    for _ in range(10_000):
        s = sagittal_state(data.qpos, data.qvel)
        data.ctrl[:] = np.clip(-(k @ s)[0], -V_MAX, V_MAX)
        mujoco.mj_step(model, data)
        worst = max(worst, abs(float(pitch_of(data.qpos))))
    assert worst < np.radians(10)
    assert abs(pitch_of(data.qpos)) < np.radians(0.1) and abs(data.qpos[0]) < 0.005 and abs(data.qpos[1]) < 1e-6


def test_a_higher_centre_of_mass_falls_slower(model: mujoco.MjModel) -> None:
    """The unstable mode slows as the centre of mass rises, as an inverted pendulum's does (sqrt(g / l))."""
    tall = BalancerPhysicsConfig(lb=0.14)
    grow = [np.abs(np.linalg.eigvals(sagittal_model(m)[0])).max()
            for m in (model, mujoco.MjModel.from_xml_string(balancer_mjcf(tall)))]  # fmt: skip
    assert 1.0 < grow[1] < grow[0]


def test_a_centre_of_mass_above_the_body_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"device.physics.lb: .* above the body's top"):
        build(BalancerPhysicsConfig, {"lb": 0.3, "hb": 0.2}, prefix="device.physics")
