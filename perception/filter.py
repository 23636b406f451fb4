"""The estimators' state: Kalman filters that calibrate the sensor biases out of the learned angles.

A single 64 ms IMU window cannot tell the pendulum's angle from the accelerometer's turn-on
bias: a bias of b m/s^2 tilts the gravity vector the window sees by about b / g rad, 1.1 deg
at the simulator's 1-sigma. Across a swing the gravity vector turns in the sensor frame
while the bias stays put, so a state carried across control steps can separate the two.
A single frame has the same kind of blind spot: the camera's roll on its mount adds to every
angle it sees (+-2 deg in the simulator, 1.15 deg RMS), and a blurred frame of a swinging
pendulum shows the middle of the exposure, not its end.

:class:`ImuFilter` has four states, x = [alpha, b_g, b_x, b_y]:

* **predict** with the gyro: alpha' = alpha + GYRO_SIGN * sum(gyro - b_g) * dt over the
  ``k`` samples that are new since the last control step (the pendulum axis is the IMU's
  body x; docs/protocol.md); the biases are random walks;
* **update** with the learned angle a (the IMU head's atan2(sin, cos)), whose error model is
  the accelerometer bias seen through gravity: a = alpha + b_x cos a + b_y sin a + noise.

:class:`FusedFilter` adds the camera: x = [alpha, b_g, b_x, b_y, roll, lag] and a second
update, with the image head's angle, a_img = alpha + roll - lag * alpha_dot + noise, once per
*new* frame (the camera runs slower than the control loop, so a frame is seen several
times; a signature of its pixels tells), and only when the camera head calls the frame ok
and the innovation is within 4 sigma. The IMU anchors the angle to gravity, so the roll is
observable; the gyro gives alpha_dot, so the lag (latency plus half the exposure) is too.

Both models are linear in x once a and alpha_dot are known, so these are plain (linear) Kalman
filters with measurement matrices that change each step. On balance alone b_x, b_y (and the
roll) stay unobservable (alpha hardly moves) and the filters fall back to a smoothed angle.

Each state is one float32 vector per pendulum: [ready, x, P] (+ the last frame's signature
for the fused one); ``STATE_SIZE`` and ``FUSED_STATE_SIZE`` long. All zeros means "not
started": the first call takes alpha from its measurement, so the runtime, which starts
every recurrent state at zeros (docs/architecture.md), needs nothing special. Everything is
torch ops that export to ONNX (no in-place writes, no branches).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sensorimotor.perception.config import FilterConfig

STATE_NAME = "filter_state"  # the filters' ONNX input (its output is filter_state_next)
STATE_SIZE = 21  # the IMU filter: ready flag, x (4), P (4 x 4)
FUSED_STATE_SIZE = 44  # the fused filter: ready flag, x (6), P (6 x 6), frame signature
FUSED_ROLL, FUSED_LAG = 5, 6  # state columns of the camera-roll (rad) and image-lag (s) estimates
GYRO_AXIS = 0  # the pendulum's axis is the IMU's body x ...
GYRO_SIGN = -1.0  # ... and alpha grows by a negative turn about it (docs/protocol.md, IMU axes)
GATE_SIGMAS = 4.0  # an image innovation beyond this many sigmas is an outlier (a misread frame): skipped


def initial_covariance(cfg: FilterConfig, fused: bool = False) -> torch.Tensor:
    """P of a fresh filter: alpha unknown (pi^2, the first measurement fixes it), biases at their priors."""
    b = cfg.accel_bias_m_s2 / 9.81  # rad: the angle a bias of that size tilts gravity by
    var = [math.pi**2, cfg.gyro_bias_rad_s**2, b * b, b * b]
    if fused:
        var += [math.radians(cfg.camera_roll_deg) ** 2, (cfg.image_lag_ms / 1000.0) ** 2]
    return torch.diag(torch.tensor(var, dtype=torch.float32))


def wrap(x: torch.Tensor) -> torch.Tensor:
    """Angle to (-pi, pi], ONNX-friendly (atan2 of sin and cos)."""
    return torch.atan2(torch.sin(x), torch.cos(x))


def kalman_update(
    x: torch.Tensor, p: torch.Tensor, h: torch.Tensor, innovation: torch.Tensor, r: float,
    gate: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """One scalar measurement: x (B, n), P (B, n, n), H (B, n), innovation (B,); gate (B,) 0 skips it."""
    ph = (p @ h[:, :, None])[:, :, 0]  # (B, n)
    s = (h * ph).sum(dim=1) + r
    gain = ph / s[:, None]
    if gate is not None:
        gain = gain * gate[:, None]
    x = x + gain * innovation[:, None]
    # Joseph form keeps P symmetric positive in float32: (I - K H) P (I - K H)^T + K R K^T
    ikh = torch.eye(x.shape[1], dtype=p.dtype) - gain[:, :, None] * h[:, None, :]
    p = ikh @ p @ ikh.transpose(1, 2) + r * gain[:, :, None] * gain[:, None, :]
    return x, p


def signature_mask(shape: tuple[int, int]) -> torch.Tensor:
    """(H, W) float32: a fixed pseudo-random half of the pixels, the ones :func:`frame_signature` adds."""
    i = torch.arange(shape[0] * shape[1])
    return ((i * 2654435761) % 4093 % 2).to(torch.float32).view(shape)


def frame_signature(image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(B, 1, H, W) uint8 -> (B,): the sum of a fixed half of the pixels, an integer exact in float32.

    Two different frames from a real camera (noise) almost surely differ in it; the same frame
    gives the same value in torch and onnxruntime (integers below 2**24 add exactly in any order).
    ``mask``: :func:`signature_mask` of the frame's shape, made once (a model keeps it as a buffer,
    so the exported graph does not rebuild it every control step).
    """
    if mask is None:
        mask = signature_mask((image.shape[-2], image.shape[-1]))
    return (image[:, 0].to(torch.float32) * mask).sum(dim=(1, 2))


class _Kalman(nn.Module):
    """What both filters share: the state layout, the gyro prediction and the IMU angle update."""

    p0: torch.Tensor  # (n, n) initial covariance
    q: torch.Tensor  # (n, n) process noise per control step
    f: torch.Tensor  # (n, n) transition: alpha picks up the gyro bias over the step

    def __init__(self, cfg: FilterConfig, imu_rate_hz: float, stream_rate_hz: float, fused: bool) -> None:
        super().__init__()
        self.n = 6 if fused else 4
        self.k = max(1, round(imu_rate_hz / stream_rate_hz))  # IMU samples new at each control step
        self.dt = 1.0 / imu_rate_hz
        self.r = math.radians(cfg.measurement_deg) ** 2
        self.register_buffer("p0", initial_covariance(cfg, fused))
        walk = math.radians(cfg.angle_walk_deg) ** 2
        q = torch.tensor([walk] + [cfg.bias_walk**2] * (self.n - 1), dtype=torch.float32)
        self.register_buffer("q", torch.diag(q))
        f = torch.eye(self.n)
        f[0, 1] = -GYRO_SIGN * self.k * self.dt  # alpha' = alpha + sign * sum(gyro - b_g) dt
        self.register_buffer("f", f)

    def start_and_predict(
        self, angle: torch.Tensor, gyro: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, P) after the gyro prediction; a fresh state starts at the measured angle."""
        b, n = angle.shape[0], self.n
        ready = state[:, :1] > 0.5  # (B, 1)
        fresh_x = torch.cat([angle[:, None], torch.zeros(b, n - 1, dtype=angle.dtype)], dim=1)
        x = torch.where(ready, state[:, 1 : 1 + n], fresh_x)
        p = torch.where(ready[:, :, None], state[:, 1 + n : 1 + n + n * n].reshape(b, n, n), self.p0.expand(b, n, n))
        u = GYRO_SIGN * gyro[:, -self.k :].sum(dim=1) * self.dt * ready[:, 0].to(gyro.dtype)  # nothing yet if fresh
        x = x @ self.f.T + F.pad(u[:, None], (0, n - 1))  # the gyro moves alpha only
        return x, self.f @ p @ self.f.T + self.q

    def imu_update(self, angle: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned IMU angle: a = alpha + b_x cos a + b_y sin a."""
        cols = [torch.ones_like(angle), torch.zeros_like(angle), torch.cos(angle), torch.sin(angle)]
        h = torch.stack(cols + [torch.zeros_like(angle)] * (self.n - 4), dim=1)
        return kalman_update(x, p, h, wrap(angle - (h * x).sum(dim=1)), self.r)

    def rate(self, gyro: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return GYRO_SIGN * (gyro[:, -1] - x[:, 1])

    def pack(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        x = torch.cat([wrap(x[:, :1]), x[:, 1:]], dim=1)
        return torch.cat([torch.ones(x.shape[0], 1, dtype=x.dtype), x, p.reshape(x.shape[0], self.n * self.n)], dim=1)


class ImuFilter(_Kalman):
    """(learned angle (B,), gyro window (B, W), state (B, STATE_SIZE)) -> (alpha, alpha_dot, state')."""

    def __init__(self, cfg: FilterConfig, imu_rate_hz: float, stream_rate_hz: float) -> None:
        super().__init__(cfg, imu_rate_hz, stream_rate_hz, fused=False)

    def forward(
        self, angle: torch.Tensor, gyro: torch.Tensor, state: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, p = self.start_and_predict(angle, gyro, state)
        x, p = self.imu_update(angle, x, p)
        next_state = self.pack(x, p)
        return next_state[:, 1], self.rate(gyro, x), next_state


class FusedFilter(_Kalman):
    """(IMU angle, image angle, camera-ok probability, frame signature (each (B,)), gyro window (B, W),
    state (B, FUSED_STATE_SIZE)) -> (alpha, alpha_dot, state')."""

    def __init__(self, cfg: FilterConfig, imu_rate_hz: float, stream_rate_hz: float) -> None:
        super().__init__(cfg, imu_rate_hz, stream_rate_hz, fused=True)
        self.r_image = math.radians(cfg.image_measurement_deg) ** 2

    def forward(
        self, angle: torch.Tensor, image_angle: torch.Tensor, camera_ok: torch.Tensor, signature: torch.Tensor,
        gyro: torch.Tensor, state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
        x, p = self.start_and_predict(angle, gyro, state)
        x, p = self.imu_update(angle, x, p)
        # the image: a_img = alpha + roll - lag * alpha_dot, once per new frame the camera head calls ok
        rate = self.rate(gyro, x)
        zero = torch.zeros_like(angle)
        h = torch.stack([torch.ones_like(angle), zero, zero, zero, torch.ones_like(angle), -rate], dim=1)
        innovation = wrap(image_angle - (h * x).sum(dim=1))
        s = (h * (p @ h[:, :, None])[:, :, 0]).sum(dim=1) + self.r_image
        new_frame = (signature - state[:, -1]).abs() > 0.5
        gate = new_frame & (camera_ok > 0.5) & (innovation * innovation < GATE_SIGMAS**2 * s)
        x, p = kalman_update(x, p, h, innovation, self.r_image, gate.to(x.dtype))
        next_state = torch.cat([self.pack(x, p), signature[:, None]], dim=1)
        return next_state[:, 1], self.rate(gyro, x), next_state


def run_sequences(filt: ImuFilter, angles: torch.Tensor, gyro: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Filter whole episodes from a fresh state: angles (S, T), gyro windows (S, T, W) -> alpha, rate (S, T)."""
    state = torch.zeros(angles.shape[0], STATE_SIZE)
    alpha, rate = [], []
    for t in range(angles.shape[1]):
        a, r, state = filt(angles[:, t], gyro[:, t], state)
        alpha.append(a)
        rate.append(r)
    return torch.stack(alpha, dim=1), torch.stack(rate, dim=1)


def run_fused_sequences(
    filt: FusedFilter, angles: torch.Tensor, image_angles: torch.Tensor, camera_ok: torch.Tensor,
    signatures: torch.Tensor, gyro: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    """:func:`run_sequences` for the fused filter: every input (S, T) but gyro (S, T, W) -> alpha, rate, camera roll."""
    state = torch.zeros(angles.shape[0], FUSED_STATE_SIZE)
    alpha, rate, roll = [], [], []
    for t in range(angles.shape[1]):
        a, r, state = filt(angles[:, t], image_angles[:, t], camera_ok[:, t], signatures[:, t], gyro[:, t], state)
        alpha.append(a)
        rate.append(r)
        roll.append(state[:, FUSED_ROLL])
    return torch.stack(alpha, dim=1), torch.stack(rate, dim=1), torch.stack(roll, dim=1)
