"""Rotary inverted (Furuta) pendulum physics: pure, batched functions of (state, volts, params).

Model: Quanser Qube-Servo 2 (rotary pendulum workbook equations, as used by the
open-source Qube simulators), with the DC motor driven by voltage (back-EMF included):

    tau = kt * (V - km * theta_dot) / Rm

State ``x = [theta, alpha, theta_dot, alpha_dot]`` (rad, rad/s), shape (..., 4):

* ``theta`` — rotary arm angle, positive counter-clockwise seen from above.
* ``alpha`` — pendulum angle, **0 = upright**, pi = hanging; positive when the
  pendulum leans towards the arm's direction of positive travel.

Lagrangian, with ``l = Lp/2`` (pendulum centre of mass), ``a = Jr + mp Lr^2``,
``b = Jp + mp l^2``, ``c = mp Lr l``, ``d = mp g l``, ``e = mp l^2``::

    (a + e sin^2 a) th'' + c cos a al'' = tau - Dr th' - 2 e sin a cos a th' al' + c sin a al'^2
    c cos a th''        + b al''        = -Dp al' + e sin a cos a th'^2 + d sin a

Every function broadcasts: params fields may be floats or arrays of shape (N,) for
per-episode randomization across a batch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

Array = np.ndarray
Scalar = float | Array


@dataclass(frozen=True)
class FurutaParams:
    """Physical parameters (SI). Defaults: Quanser Qube-Servo 2 (rotary pendulum workbook values; docs/configs.md)."""

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

    @property
    def Jr(self) -> Scalar:
        """Arm inertia about its pivot (workbook: mr Lr^2 / 12)."""
        return self.mr * self.Lr**2 / 12.0

    @property
    def Jp(self) -> Scalar:
        """Pendulum inertia about its centre of mass (mp Lp^2 / 12)."""
        return self.mp * self.Lp**2 / 12.0

    def scaled(self, **factors: Scalar) -> FurutaParams:
        """A copy with named parameters multiplied by factors (floats or (N,) arrays)."""
        return dataclasses.replace(self, **{k: getattr(self, k) * v for k, v in factors.items()})


def motor_torque(volts: Array, theta_dot: Array, p: FurutaParams) -> Array:
    """DC motor shaft torque (N*m) for a terminal voltage, with back-EMF."""
    return p.kt * (volts - p.km * theta_dot) / p.Rm


def accelerations(x: Array, volts: Array, p: FurutaParams) -> tuple[Array, Array]:
    """(theta_ddot, alpha_ddot) for states ``x`` (..., 4) and voltages ``volts`` (...)."""
    th_d, al, al_d = x[..., 2], x[..., 1], x[..., 3]
    s, co = np.sin(al), np.cos(al)
    half = p.Lp / 2.0
    a = p.Jr + p.mp * p.Lr**2
    b = p.Jp + p.mp * half**2
    c = p.mp * p.Lr * half
    d = p.mp * p.g * half
    e = p.mp * half**2
    m11 = a + e * s * s
    m12 = c * co
    rhs1 = motor_torque(volts, th_d, p) - p.Dr * th_d - 2.0 * e * s * co * th_d * al_d + c * s * al_d**2
    rhs2 = -p.Dp * al_d + e * s * co * th_d**2 + d * s
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
    """Total mechanical energy (J), zero potential at the pivot height."""
    th_d, al, al_d = x[..., 2], x[..., 1], x[..., 3]
    half = p.Lp / 2.0
    a = p.Jr + p.mp * p.Lr**2
    b = p.Jp + p.mp * half**2
    c = p.mp * p.Lr * half
    e = p.mp * half**2
    kinetic = 0.5 * (a + e * np.sin(al) ** 2) * th_d**2 + c * np.cos(al) * th_d * al_d + 0.5 * b * al_d**2
    return kinetic + p.mp * p.g * half * np.cos(al)


def wrap_angle(a: Array) -> Array:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(a) + np.pi) % (2.0 * np.pi) - np.pi
