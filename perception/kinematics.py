"""The pendulum angle from one raw IMU window by rigid-body kinematics: no labels, no learning.

An IMU on the pendulum link, ``r`` metres from the pivot, on an arm of length ``arm``, reads in
the link frame (x along the pendulum's axis of rotation, z along the link) the gyro
(-alpha_dot, ...) and the specific force: gravity's direction (the angle) plus the tangential
(r * alpha_ddot), centripetal (r * alpha_dot^2) and arm-motion terms. Those terms are what a
gravity-only filter (VQF, Madgwick) treats as disturbance; here they are subtracted using the
gyro and its derivative, so what is left is gravity, and its direction is the angle:

    G = a - (r alpha_ddot + arm * theta_ddot terms, -r alpha_dot^2 + ...)
    alpha = atan2(-G_y, G_z)

Each sample's angle is carried to the window's end with the gyro and the newest ``tail``
samples are averaged on the circle. The result still carries the accelerometer's turn-on bias
and the model's omissions (the arm's geometry, the IMU's latency), about 1.5 deg on the
nominal device: a *pseudo-label*. ``sim pretrain``'s ``kinematic`` objective teaches the IMU
encoder to read it, so fine-tuning with few labels only corrects it (docs/perception.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sensorimotor.perception.models import slope_weights

SMOOTH = 9  # samples in the least-squares slope that differentiates the gyro (9 ms at 1 kHz)
TAIL = 32  # newest samples averaged into the window's angle


def slope(x: torch.Tensor, dt: float, n: int = SMOOTH) -> torch.Tensor:
    """d/dt of ``x`` (..., W) by a centred least-squares slope over ``n`` samples; edges repeat the nearest slope."""
    k = slope_weights(n, x.dtype) / dt
    flat = x.reshape(-1, 1, x.shape[-1])
    d = F.conv1d(flat, k.view(1, 1, n))  # cross-correlation, valid part: (.., W - n + 1)
    h = n // 2
    d = F.pad(d, (h, h), mode="replicate")
    return d.view_as(x)


def kinematic_angle(imu: torch.Tensor, r: float, arm: float, dt: float, tail: int = TAIL) -> torch.Tensor:
    """The pendulum angle (rad, 0 upright) at the end of each raw window ``imu`` (N, 6, W): gyro rad/s, accel m/s^2."""
    x = imu.double()
    gx, gy, gz = x[:, 0], x[:, 1], x[:, 2]
    ay, az = x[:, 4], x[:, 5]
    dgx, dgy, dgz = slope(gx, dt), slope(gy, dt), slope(gz, dt)
    al_d, al_dd = -gx, -dgx
    cos_arm = dgz + gy * gx  # the arm's angular acceleration seen along the link frame's axes
    sin_arm = -dgy + gz * gx
    g_y = ay - (r * al_dd + arm * cos_arm + r * gy * gz)
    g_z = az - (-r * al_d**2 + arm * sin_arm - r * gy**2)
    alpha = torch.atan2(-g_y, g_z)
    # Carry each sample's angle to the window's end: + the integral of alpha_dot over the samples after it.
    after = torch.flip(torch.cumsum(torch.flip(al_d, [1]), 1), [1]) - al_d
    at_end = alpha + after * dt
    h = SMOOTH // 2  # the slope's edge samples are extrapolated: leave them out
    w = x.shape[-1]
    recent = at_end[:, w - tail - h : w - h]
    return torch.atan2(torch.sin(recent).mean(1), torch.cos(recent).mean(1)).to(imu.dtype)
