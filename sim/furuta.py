"""Rotary inverted (Furuta) pendulum physics: the plain-numpy reference, pure functions of (state, volts, params).

The compiled core (:mod:`sensorimotor.sim.core`) implements the same equations; the tests
hold the two together and this module against independent references (energy,
``scipy.integrate.solve_ivp``, Quanser's published linear model). docs/simulator.md
derives and discusses the model.

Model: Quanser Qube-Servo 2 (rotary pendulum workbook equations), DC motor driven by
voltage through an amplifier with a deadzone and saturation, back-EMF included::

    V_motor = sign(V) * min(max(|V| - v_deadzone, 0), v_sat)
    tau     = kt * (V_motor - km * theta_dot) / Rm

State ``x = [theta, alpha, theta_dot, alpha_dot]`` (rad, rad/s), shape (..., 4):

* ``theta`` — rotary arm angle, positive counter-clockwise seen from above.
* ``alpha`` — pendulum angle, **0 = upright**, pi = hanging; positive when the
  pendulum leans towards the arm's direction of positive travel.

Lagrangian, with ``l = Lp/2`` (pendulum centre of mass), ``a = Jr + mp Lr^2``,
``b = Jp + mp l^2``, ``c = mp Lr l``, ``d = mp g l``, ``e = mp l^2``::

    (a + e sin^2 a) th'' + c cos a al'' = tau - Dr th' - F_r(th') + tau_stop - 2 e sin a cos a th' al' + c sin a al'^2
    c cos a th''        + b al''        = -Dp al' - F_p(al') + e sin a cos a th'^2 + d sin a

``Jr = mr Lr^2 / 3`` is the arm (a rod turning about its end, the motor hub) about the
motor axis, as in Quanser's ``qube2_rotpen_param.m``; ``Jp = mp Lp^2 / 12`` is the
pendulum about its centre of mass, so ``b = mp Lp^2 / 3`` about its pivot.

Friction ``F(v) = (C + (S - C) / (1 + (v / v_stribeck)^2)) * v / sqrt(v^2 + v_smooth^2)``:
Coulomb ``C`` with a (rational) Stribeck rise to the breakaway friction ``S`` near rest,
regularized over ``v_smooth`` so the equations stay smooth (a joint under a torque below ``S``
creeps at less than ``v_smooth`` instead of sticking exactly). The cable limit is a
one-sided spring-damper end-stop at ``|theta| = theta_stop``.

Every function broadcasts: params fields may be floats or arrays of shape (N,) for
per-episode randomization across a batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
Scalar = float | Array

# End-stop damping grows with penetration up to this depth (rad), then stays constant:
# continuous at contact, and bounded so that explicit RK4 at 1 kHz stays stable.
STOP_DAMPING_DEPTH = 0.05


@dataclass(frozen=True)
class FurutaParams:
    """Physical parameters (SI). Defaults: Quanser Qube-Servo 2; friction and amplifier: docs/simulator.md."""

    Rm: Scalar = 8.4  # motor resistance, ohm
    kt: Scalar = 0.042  # torque constant, N*m/A
    km: Scalar = 0.042  # back-EMF constant, V*s/rad
    mr: Scalar = 0.095  # rotary arm mass, kg
    Lr: Scalar = 0.085  # rotary arm length (pivot to pendulum pivot), m
    Dr: Scalar = 0.00027  # arm viscous damping, N*m*s/rad
    mp: Scalar = 0.024  # pendulum mass, kg
    Lp: Scalar = 0.129  # pendulum length, m
    Dp: Scalar = 0.00005  # pendulum viscous damping, N*m*s/rad
    g: Scalar = 9.81  # gravity, m/s^2
    coulomb_r: Scalar = 4e-4  # arm Coulomb friction, N*m
    static_r: Scalar = 6e-4  # arm breakaway (static) friction, N*m
    coulomb_p: Scalar = 2e-6  # pendulum bearing Coulomb friction, N*m
    static_p: Scalar = 4e-6  # pendulum bearing breakaway friction, N*m
    v_stribeck: Scalar = 0.05  # Stribeck velocity, rad/s
    v_smooth: Scalar = 0.005  # friction regularization velocity, rad/s
    v_deadzone: Scalar = 0.05  # amplifier deadzone, V
    v_sat: Scalar = 10.0  # amplifier output saturation, V
    theta_stop: Scalar = 3.0  # arm end-stop (cable limit), rad
    k_stop: Scalar = 20.0  # end-stop stiffness, N*m/rad
    c_stop: Scalar = 4.0  # end-stop damping per rad of penetration, N*m*s/rad^2

    @property
    def Jr(self) -> Scalar:
        """Arm inertia about the motor axis: a rod turning about its end (mr Lr^2 / 3)."""
        return self.mr * self.Lr**2 / 3.0

    @property
    def Jp(self) -> Scalar:
        """Pendulum inertia about its centre of mass (mp Lp^2 / 12)."""
        return self.mp * self.Lp**2 / 12.0

    def scaled(self, **factors: Scalar) -> FurutaParams:
        """A copy with named parameters multiplied by factors (floats or (N,) arrays)."""
        return dataclasses.replace(self, **{k: getattr(self, k) * v for k, v in factors.items()})

    def ideal(self) -> FurutaParams:
        """The frictionless, ideal-amplifier model (no Coulomb/static friction, deadzone or saturation)."""
        return dataclasses.replace(
            self, coulomb_r=0.0, static_r=0.0, coulomb_p=0.0, static_p=0.0, v_deadzone=0.0, v_sat=np.inf
        )


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FurutaParams))


def actuator_voltage(volts: Array, p: FurutaParams) -> Array:
    """Voltage at the motor terminals for a commanded voltage: amplifier deadzone, then saturation."""
    mag = np.minimum(np.maximum(np.abs(volts) - p.v_deadzone, 0.0), p.v_sat)
    return np.copysign(mag, volts)


def motor_torque(volts: Array, theta_dot: Array, p: FurutaParams) -> Array:
    """DC motor shaft torque (N*m) for a commanded voltage, with back-EMF."""
    return p.kt * (actuator_voltage(volts, p) - p.km * theta_dot) / p.Rm


def friction(v: Array, coulomb: Scalar, static: Scalar, p: FurutaParams) -> Array:
    """Coulomb + Stribeck (static) friction torque opposing velocity ``v`` (positive = resists positive v)."""
    r = v / p.v_stribeck
    level = coulomb + (static - coulomb) / (1.0 + r * r)
    return level * (v / np.sqrt(v * v + p.v_smooth * p.v_smooth))


def endstop_torque(theta: Array, theta_dot: Array, p: FurutaParams) -> Array:
    """Torque of the cable end-stop: a spring-damper beyond |theta_stop| that only ever pushes back."""
    pen = np.abs(theta) - p.theta_stop
    inside = pen > 0.0
    pen = np.where(inside, pen, 0.0)
    side = np.sign(theta)
    tau = -side * p.k_stop * pen - p.c_stop * np.minimum(pen, STOP_DAMPING_DEPTH) * theta_dot
    return np.where(inside & (tau * side < 0.0), tau, 0.0)


def accelerations(x: Array, volts: Array, p: FurutaParams) -> tuple[Array, Array]:
    """(theta_ddot, alpha_ddot) for states ``x`` (..., 4) and commanded voltages ``volts`` (...)."""
    th, al, th_d, al_d = x[..., 0], x[..., 1], x[..., 2], x[..., 3]
    s, co = np.sin(al), np.cos(al)
    half = p.Lp / 2.0
    a = p.Jr + p.mp * p.Lr**2
    b = p.Jp + p.mp * half**2
    c = p.mp * p.Lr * half
    d = p.mp * p.g * half
    e = p.mp * half**2
    m11 = a + e * s * s
    m12 = c * co
    tau = motor_torque(volts, th_d, p) + endstop_torque(th, th_d, p)
    rhs1 = tau - p.Dr * th_d - friction(th_d, p.coulomb_r, p.static_r, p) - 2.0 * e * s * co * th_d * al_d
    rhs1 = rhs1 + c * s * al_d**2
    rhs2 = -p.Dp * al_d - friction(al_d, p.coulomb_p, p.static_p, p) + e * s * co * th_d**2 + d * s
    det = m11 * b - m12 * m12  # > 0: the mass matrix is positive definite
    th_dd = (b * rhs1 - m12 * rhs2) / det
    al_dd = (m11 * rhs2 - m12 * rhs1) / det
    return th_dd, al_dd


def derivative(x: Array, volts: Array, p: FurutaParams) -> Array:
    """dx/dt, shape (..., 4)."""
    th_dd, al_dd = accelerations(x, volts, p)
    return np.stack([x[..., 2], x[..., 3], th_dd, al_dd], axis=-1)


def rk4_step(x: Array, volts: Array, p: FurutaParams, dt: float) -> Array:
    """One fixed-step 4th-order Runge-Kutta step (voltage held constant over dt)."""
    k1 = derivative(x, volts, p)
    k2 = derivative(x + 0.5 * dt * k1, volts, p)
    k3 = derivative(x + 0.5 * dt * k2, volts, p)
    k4 = derivative(x + dt * k3, volts, p)
    return x + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def energy(x: Array, p: FurutaParams) -> Array:
    """Total mechanical energy (J), zero potential at the pivot height (end-stop spring excluded)."""
    th_d, al, al_d = x[..., 2], x[..., 1], x[..., 3]
    half = p.Lp / 2.0
    a = p.Jr + p.mp * p.Lr**2
    b = p.Jp + p.mp * half**2
    c = p.mp * p.Lr * half
    e = p.mp * half**2
    kinetic = 0.5 * (a + e * np.sin(al) ** 2) * th_d**2 + c * np.cos(al) * th_d * al_d + 0.5 * b * al_d**2
    return kinetic + p.mp * p.g * half * np.cos(al)


def linearize(p: FurutaParams, eps: float = 1e-6) -> tuple[Array, Array]:
    """(A, B) of dx/dt = A x + B V about upright at rest, by central differences of :func:`derivative`.

    Uses the ideal amplifier and no Coulomb friction: both are non-smooth at rest and a
    linear model (like the published one) leaves them out.
    """
    q = p.ideal()
    x0, a_mat, b_mat = np.zeros(4), np.zeros((4, 4)), np.zeros((4, 1))
    for j in range(4):
        dx = np.zeros(4)
        dx[j] = eps
        a_mat[:, j] = (derivative(x0 + dx, np.array(0.0), q) - derivative(x0 - dx, np.array(0.0), q)) / (2 * eps)
    b_mat[:, 0] = (derivative(x0, np.array(eps), q) - derivative(x0, np.array(-eps), q)) / (2 * eps)
    return a_mat, b_mat


def wrap_angle(a: Array) -> Array:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi
