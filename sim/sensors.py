"""Sensor models of the Furuta pendulum, noise-free, in plain numpy: the references for the compiled core.

* Encoder: arm angle quantized to ``cpr`` counts per revolution (int32).
* IMU on the pendulum link at distance ``r`` from the pendulum pivot, body frame
  x = along the arm (the pendulum's swing axis), z = along the pendulum from pivot to tip,
  y = z cross x. Gyro reads angular velocity, accelerometer reads specific force
  (acceleration minus gravity).
* Camera: a grayscale (64x64 by default) orthographic view from the arm hub along the
  arm: hub, rod and tip, the pendulum angle seen directly.

The core (:mod:`sensorimotor.sim.core`) adds what a device adds: Kalibr/PX4 IMU noise
(white noise, bias random walk, turn-on bias), saturation and scale error; camera
exposure (motion blur), lighting, background, noise, pose offsets and faults (occlusion,
blackout — the classes the perception head predicts); and the delays of each stream.
"""

from __future__ import annotations

import numpy as np

from sensorimotor.sim.furuta import FurutaParams, accelerations

Array = np.ndarray

# Camera fault classes predicted by the perception classification head (the core labels frames with them).
CAMERA_OK, CAMERA_OCCLUDED, CAMERA_BLACKOUT = 0, 1, 2
CAMERA_CLASSES = ("ok", "occluded", "blackout")


def encoder_counts(theta: Array, cpr: int) -> Array:
    """Quantized encoder reading (counts) of arm angle ``theta`` (rad)."""
    return np.floor(np.asarray(theta) * (cpr / (2.0 * np.pi))).astype(np.int32)


def imu_ideal(x: Array, volts: Array, p: FurutaParams, r: float | Array, held: bool = False) -> Array:
    """Noise-free IMU reading (..., 6) = [gyro xyz (rad/s), accel xyz (m/s^2)] in the body frame.

    ``held``: the pendulum is held still (zero acceleration whatever the dynamics say).
    """
    th_d, al, al_d = x[..., 2], x[..., 1], x[..., 3]
    th_dd, al_dd = (np.zeros_like(al), np.zeros_like(al)) if held else accelerations(x, volts, p)
    s, c = np.sin(al), np.cos(al)
    gyro = np.stack([-al_d, -th_d * s, th_d * c], axis=-1)  # alpha grows by a negative turn about body x
    # Acceleration of the IMU point in the arm-fixed frame (radial, tangential, vertical).
    a_r = -2.0 * r * c * al_d * th_d - r * s * th_dd - p.Lr * th_d**2
    a_t = p.Lr * th_dd + r * c * al_dd - r * s * (al_d**2 + th_d**2)
    a_z = -r * c * al_d**2 - r * s * al_dd + p.g  # specific force adds +g upwards
    accel = np.stack([a_r, c * a_t - s * a_z, s * a_t + c * a_z], axis=-1)
    return np.concatenate([gyro, accel], axis=-1)


# ----------------------------------------------------------------------------- camera

IMAGE_SIZE = 64
VIEW_HALF_WIDTH_M = 0.16  # the image spans +-0.16 m around the pendulum pivot


def pendulum_segments(x: Array, p: FurutaParams) -> tuple[Array, Array]:
    """Image-plane points (horizontal, vertical) in metres of the pendulum pivot and tip, each (N, 2).

    The camera rides on the arm hub and looks along the arm at the pendulum, so the
    image shows alpha directly (independent of theta): pivot at the image centre,
    upright = straight up.
    """
    al = x[:, 1]
    pivot = np.zeros((x.shape[0], 2))
    tip = pivot + np.stack([p.Lp * np.sin(al), p.Lp * np.cos(al)], axis=-1)
    return pivot, tip


def _segment_distance(px: Array, a: Array, b: Array) -> Array:
    """Distance (N, H*W) from pixel centres px (H*W, 2) to segments a->b (N, 2)."""
    ab = (b - a)[:, None, :]  # (N, 1, 2)
    ap = px[None, :, :] - a[:, None, :]  # (N, P, 2)
    denom = np.maximum((ab * ab).sum(-1), 1e-12)
    t = np.clip((ap * ab).sum(-1) / denom, 0.0, 1.0)
    d = ap - t[..., None] * ab
    return np.sqrt((d * d).sum(-1))


Shape = tuple[int, int]
DEFAULT_SHAPE: Shape = (IMAGE_SIZE, IMAGE_SIZE)
_GRIDS: dict[Shape, Array] = {}


def metres_per_pixel(shape: Shape) -> float:
    """Square pixels; the image height spans +-VIEW_HALF_WIDTH_M."""
    return 2 * VIEW_HALF_WIDTH_M / shape[0]


def _pixel_grid(shape: Shape) -> Array:
    """Pixel centres (H*W, 2) in metres, pivot at the image centre (cached per shape)."""
    if shape not in _GRIDS:
        h, w = shape
        scale = metres_per_pixel(shape)
        cols = (np.arange(w) + 0.5) * scale - w * scale / 2
        rows = h * scale / 2 - (np.arange(h) + 0.5) * scale  # row 0 at the top
        yy, xx = np.meshgrid(rows, cols, indexing="ij")
        _GRIDS[shape] = np.stack([xx.ravel(), yy.ravel()], axis=-1)
    return _GRIDS[shape]


def render_clean(
    x: Array, p: FurutaParams, shift_m: Array | None = None, roll: Array | None = None, shape: Shape = DEFAULT_SHAPE
) -> Array:
    """Noise-free intensity images in [0, 1], shape (N, H, W): hub, rod and tip."""
    n = x.shape[0]
    pivot, tip = pendulum_segments(x, p)
    if roll is not None:
        rot = np.stack([np.stack([np.cos(roll), -np.sin(roll)], -1), np.stack([np.sin(roll), np.cos(roll)], -1)], -2)
        pivot, tip = (np.einsum("nij,nj->ni", rot, q) for q in (pivot, tip))
    if shift_m is not None:
        pivot, tip = pivot + shift_m, tip + shift_m
    px = _pixel_grid(shape)
    m_per_px = metres_per_pixel(shape)
    rod = np.clip(1.6 - _segment_distance(px, pivot, tip) / m_per_px, 0.0, 1.0)  # ~3 px wide
    hub = np.clip(2.0 - np.linalg.norm(px[None] - pivot[:, None], axis=-1) / m_per_px, 0.0, 1.0) * 0.6
    bob = np.clip(2.5 - np.linalg.norm(px[None] - tip[:, None], axis=-1) / m_per_px, 0.0, 1.0)
    return np.maximum(np.maximum(rod, hub), bob).reshape(n, *shape)
