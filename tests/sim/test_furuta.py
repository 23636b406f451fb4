"""Reference physics (numpy): conservation, power balance, equilibria, motor direction, batching."""

from __future__ import annotations

import numpy as np

from sensorimotor.sim.furuta import (
    FurutaParams,
    accelerations,
    derivative,
    endstop_torque,
    energy,
    friction,
    motor_torque,
    rk4_step,
    wrap_angle,
)

P = FurutaParams()


def test_energy_conserved_without_damping_or_motor() -> None:
    p = FurutaParams(Dr=0.0, Dp=0.0, km=0.0, theta_stop=np.inf).ideal()  # kt with km=0 still drives; V = 0
    x = np.array([0.0, 0.3, 2.0, -1.0])
    e0 = energy(x, p)
    for _ in range(5000):  # 5 s at 1 kHz
        x = rk4_step(x, np.array(0.0), p, 1e-3)
    assert abs(energy(x, p) - e0) < 1e-6 * abs(e0)


def test_power_balance_with_motor_and_damping() -> None:
    """dE/dt = (tau_motor + tau_stop - Dr theta_dot - F_r) theta_dot - (Dp alpha_dot + F_p) alpha_dot.

    An independent check of the equations of motion, friction, deadzone and end-stop included.
    """
    rng = np.random.default_rng(1)
    for _ in range(20):
        x = rng.normal(size=4) * np.array([1.5, 2.0, 5.0, 5.0])
        x[2:] *= rng.choice([1.0, 0.01])  # sometimes near rest, where static friction dominates
        v = rng.uniform(-5, 5)
        h = 1e-6
        de = (energy(x + h * derivative(x, np.array(v), P), P) - energy(x - h * derivative(x, np.array(v), P), P)) / (
            2 * h
        )
        arm = (
            motor_torque(v, x[2], P)
            + endstop_torque(x[0], x[2], P)
            - P.Dr * x[2]
            - friction(x[2], P.coulomb_r, P.static_r, P)
        )
        power = arm * x[2] - (P.Dp * x[3] + friction(x[3], P.coulomb_p, P.static_p, P)) * x[3]
        assert np.isclose(de, power, rtol=1e-5, atol=1e-9)


def test_upright_is_an_unstable_equilibrium_and_hanging_a_stable_one() -> None:
    still = np.zeros(4)
    assert np.allclose(accelerations(still, np.array(0.0), P), 0.0)
    x = np.array([0.0, 0.01, 0.0, 0.0])
    for _ in range(500):
        x = rk4_step(x, np.array(0.0), P, 1e-3)
    assert abs(x[1]) > 0.1  # fell away from upright within 0.5 s
    x = np.array([0.0, np.pi + 0.1, 0.0, 0.0])
    for _ in range(3000):
        x = rk4_step(x, np.array(0.0), P, 1e-3)
    assert abs(wrap_angle(x[1] - np.pi)) < 0.1  # hanging: oscillates, does not diverge


def test_positive_voltage_turns_the_arm_positive_and_back_emf_limits_speed() -> None:
    th_dd, _ = accelerations(np.zeros(4), np.array(1.0), P)
    assert th_dd > 0
    p = P.scaled(theta_stop=np.inf)  # no cable: let it spin
    x = np.array([0.0, np.pi, 0.0, 0.0])  # hanging: the arm spins up until back-EMF, damping and friction balance
    for _ in range(20000):
        x = rk4_step(x, np.array(1.0), p, 1e-3)
    # kt (V - deadzone - km w) / Rm = Dr w + Coulomb (the Stribeck rise has faded at this speed)
    steady = (p.kt * (1.0 - p.v_deadzone) / p.Rm - p.coulomb_r) / (p.Dr + p.kt * p.km / p.Rm)
    assert np.isclose(x[2], steady, rtol=1e-3)


def test_batched_equals_one_by_one() -> None:
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(7, 4))
    vs = rng.uniform(-5, 5, 7)
    mr = rng.uniform(0.08, 0.11, 7)
    batched = rk4_step(xs, vs, P.scaled(mr=mr / P.mr), 1e-3)
    for i in range(7):
        one = rk4_step(xs[i], np.array(vs[i]), P.scaled(mr=mr[i] / P.mr), 1e-3)
        assert np.allclose(batched[i], one, atol=1e-12)
