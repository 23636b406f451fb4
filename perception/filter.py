"""The IMU estimator's state: a Kalman filter that calibrates the sensor biases out of the learned angle.

A single 64 ms IMU window cannot tell the pendulum's angle from the accelerometer's turn-on
bias: a bias of b m/s^2 tilts the gravity vector the window sees by about b / g rad, 1.1 deg
at the simulator's 1-sigma. Across a swing the gravity vector turns in the sensor frame
while the bias stays put, so a state carried across control steps can separate the two.

:class:`ImuFilter` does this with four states, x = [alpha, b_g, b_x, b_y]:

* **predict** with the gyro: alpha' = alpha + GYRO_SIGN * sum(gyro - b_g) * dt over the
  ``k`` samples that are new since the last control step (the pendulum axis is the IMU's
  body x; docs/protocol.md); the biases are random walks;
* **update** with the learned angle a (the IMU head's atan2(sin, cos)), whose error model is
  the accelerometer bias seen through gravity: a = alpha + b_x cos a + b_y sin a + noise.

The model is linear in x once a is known, so this is a plain (linear) Kalman filter with a
measurement matrix that changes each step. On balance alone b_x, b_y stay unobservable
(alpha hardly moves) and the filter falls back to a smoothed learned angle.

The state is one float32 vector per pendulum, ``STATE_SIZE`` long: [ready, x (4), P (16)].
All zeros means "not started": the first call takes alpha from its measurement, so the
runtime, which starts every recurrent state at zeros (docs/architecture.md), needs nothing
special. Everything is torch ops that export to ONNX (no in-place writes, no branches).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from sensorimotor.hardware.config import Section, doc

STATE_NAME = "imu_filter"  # the state's ONNX input (its output is imu_filter_next)
STATE_SIZE = 21  # ready flag, x (4), P (4 x 4)
GYRO_AXIS = 0  # the pendulum's axis is the IMU's body x ...
GYRO_SIGN = -1.0  # ... and alpha grows by a negative turn about it (docs/protocol.md, IMU axes)


@dataclass(frozen=True)
class FilterConfig(Section):
    """The IMU estimator's bias-calibrating Kalman filter (perception/filter.py)."""

    enabled: bool = doc(
        "Filter the IMU head's angle across control steps: imu_sin, imu_cos, imu_rate become the filter's estimate "
        "and the exported model carries its state (ONNX input imu_filter, output imu_filter_next).", True,
    )  # fmt: skip
    measurement_deg: float = doc(
        "Std of the learned angle's error the filter assumes (deg); larger than its RMS because the errors are "
        "correlated from one step to the next.", 3.0, gt=0, le=90,
    )  # fmt: skip
    angle_walk_deg: float = doc(
        "Process noise on alpha beyond the gyro, deg per sqrt(control step) (gyro noise, timing).", 0.02, gt=0, le=10
    )
    gyro_bias_rad_s: float = doc("Prior std of the gyro bias (rad/s).", 0.05, gt=0, le=5)
    accel_bias_m_s2: float = doc("Prior std of the accelerometer bias (m/s^2), per axis.", 0.2, gt=0, le=20)
    bias_walk: float = doc("Random walk of every bias, in its unit per sqrt(control step).", 5e-5, ge=0, le=1)


def initial_covariance(cfg: FilterConfig) -> torch.Tensor:
    """P of a fresh filter: alpha unknown (pi^2, the first measurement fixes it), biases at their priors."""
    b = cfg.accel_bias_m_s2 / 9.81  # rad: the angle a bias of that size tilts gravity by
    return torch.diag(torch.tensor([math.pi**2, cfg.gyro_bias_rad_s**2, b * b, b * b], dtype=torch.float32))


def wrap(x: torch.Tensor) -> torch.Tensor:
    """Angle to (-pi, pi], ONNX-friendly (atan2 of sin and cos)."""
    return torch.atan2(torch.sin(x), torch.cos(x))


class ImuFilter(nn.Module):
    """(learned angle (B,), gyro window (B, W), state (B, STATE_SIZE)) -> (alpha, alpha_dot, state')."""

    p0: torch.Tensor  # (4, 4) initial covariance
    q: torch.Tensor  # (4, 4) process noise per control step
    f: torch.Tensor  # (4, 4) transition: alpha picks up the gyro bias over the step

    def __init__(self, cfg: FilterConfig, imu_rate_hz: float, stream_rate_hz: float) -> None:
        super().__init__()
        self.k = max(1, round(imu_rate_hz / stream_rate_hz))  # IMU samples new at each control step
        self.dt = 1.0 / imu_rate_hz
        self.r = math.radians(cfg.measurement_deg) ** 2
        self.register_buffer("p0", initial_covariance(cfg))
        walk = math.radians(cfg.angle_walk_deg) ** 2
        self.register_buffer("q", torch.diag(torch.tensor([walk] + [cfg.bias_walk**2] * 3, dtype=torch.float32)))
        f = torch.eye(4)
        f[0, 1] = -GYRO_SIGN * self.k * self.dt  # alpha' = alpha + sign * sum(gyro - b_g) dt
        self.register_buffer("f", f)

    def forward(
        self, angle: torch.Tensor, gyro: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b = angle.shape[0]
        ready = state[:, :1] > 0.5  # (B, 1)
        fresh_x = torch.cat([angle[:, None], torch.zeros(b, 3, dtype=angle.dtype)], dim=1)
        x = torch.where(ready, state[:, 1:5], fresh_x)
        p = torch.where(ready[:, :, None], state[:, 5:].reshape(b, 4, 4), self.p0.expand(b, 4, 4))
        # predict (a fresh filter has nothing to integrate yet)
        u = GYRO_SIGN * gyro[:, -self.k :].sum(dim=1) * self.dt * ready[:, 0].to(gyro.dtype)
        x = x @ self.f.T + F.pad(u[:, None], (0, 3))  # the gyro moves alpha only
        p = self.f @ p @ self.f.T + self.q
        # update with the learned angle: a = alpha + b_x cos a + b_y sin a
        h = torch.stack([torch.ones_like(angle), torch.zeros_like(angle), torch.cos(angle), torch.sin(angle)], dim=1)
        innovation = wrap(angle - (h * x).sum(dim=1))
        ph = (p @ h[:, :, None])[:, :, 0]  # (B, 4)
        s = (h * ph).sum(dim=1) + self.r
        gain = ph / s[:, None]
        x = x + gain * innovation[:, None]
        # Joseph form keeps P symmetric positive in float32: (I - K H) P (I - K H)^T + K R K^T
        ikh = torch.eye(4, dtype=p.dtype) - gain[:, :, None] * h[:, None, :]
        p = ikh @ p @ ikh.transpose(1, 2) + self.r * gain[:, :, None] * gain[:, None, :]
        x = torch.cat([wrap(x[:, :1]), x[:, 1:]], dim=1)
        rate = GYRO_SIGN * (gyro[:, -1] - x[:, 1])
        next_state = torch.cat([torch.ones(b, 1, dtype=x.dtype), x, p.reshape(b, 16)], dim=1)
        return x[:, 0], rate, next_state


def run_sequences(filt: ImuFilter, angles: torch.Tensor, gyro: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter whole episodes from a fresh state: angles (S, T), gyro windows (S, T, W) -> alpha, rate (S, T)."""
    state = torch.zeros(angles.shape[0], STATE_SIZE)
    alpha, rate = [], []
    for t in range(angles.shape[1]):
        a, r, state = filt(angles[:, t], gyro[:, t], state)
        alpha.append(a)
        rate.append(r)
    return torch.stack(alpha, dim=1), torch.stack(rate, dim=1)
