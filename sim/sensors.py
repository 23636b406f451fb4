"""Sensor models of the Furuta pendulum: motor encoder, pendulum IMU, camera. Pure numpy.

* Encoder: arm angle quantized to ``cpr`` counts per revolution (int32).
* IMU on the pendulum link at distance ``r`` from the pendulum pivot, body frame
  x = along the arm (the pendulum's swing axis), z = along the pendulum from pivot to tip,
  y = z cross x. Gyro reads angular velocity, accelerometer reads specific force
  (acceleration minus gravity); noise is Kalibr/PX4 style (white noise density plus a
  Gauss-Markov bias, see :class:`ImuNoise`).
* Camera: a grayscale (64x64 by default) orthographic view from the arm hub along the arm, rendered
  from the state with domain randomization (lighting, exposure, blur, noise, pose offset)
  and optional faults (occlusion, blackout) — the classes the perception head predicts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorimotor.sim.furuta import FurutaParams, accelerations

Array = np.ndarray

# Camera fault classes predicted by the perception classification head.
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


@dataclass(frozen=True)
class ImuNoiseParams:
    """Kalibr-style IMU noise (defaults: PX4 Gazebo plugin / ADIS16448)."""

    gyro_noise_density: float = 3.39e-4  # rad/s/sqrt(Hz)
    gyro_random_walk: float = 3.88e-5  # rad/s^2/sqrt(Hz)
    gyro_bias_tau: float = 1000.0  # s
    gyro_turn_on_sigma: float = 8.7e-3  # rad/s
    accel_noise_density: float = 4e-3  # m/s^2/sqrt(Hz)
    accel_random_walk: float = 6e-3  # m/s^3/sqrt(Hz)
    accel_bias_tau: float = 300.0  # s
    accel_turn_on_sigma: float = 0.196  # m/s^2


class ImuNoise:
    """Batched IMU noise state: white noise plus a first-order Gauss-Markov bias per axis."""

    def __init__(self, n: int, dt: float, params: ImuNoiseParams, rng: np.random.Generator) -> None:
        self.dt, self.p, self.rng = dt, params, rng
        self.bias = np.zeros((n, 6))
        # Per-sample white-noise sigma = density / sqrt(dt).
        self.white = np.array([params.gyro_noise_density] * 3 + [params.accel_noise_density] * 3) / np.sqrt(dt)
        tau = np.array([params.gyro_bias_tau] * 3 + [params.accel_bias_tau] * 3)
        walk = np.array([params.gyro_random_walk] * 3 + [params.accel_random_walk] * 3)
        self.decay = np.exp(-dt / tau)
        self.drive = walk * np.sqrt(dt)
        self.turn_on = np.array([params.gyro_turn_on_sigma] * 3 + [params.accel_turn_on_sigma] * 3)

    def reset(self, idx: Array) -> None:
        """Draw new turn-on biases for the envs in ``idx``."""
        self.bias[idx] = self.rng.normal(size=(len(idx), 6)) * self.turn_on

    def sample(self, ideal: Array) -> Array:
        """Corrupt ideal readings (n, 6) and advance the bias process one sample."""
        out = ideal + self.bias + self.rng.normal(size=ideal.shape) * self.white
        self.bias = self.bias * self.decay + self.rng.normal(size=self.bias.shape) * self.drive
        return out


# ----------------------------------------------------------------------------- camera

IMAGE_SIZE = 64
VIEW_HALF_WIDTH_M = 0.16  # the image spans +-0.16 m around the pendulum pivot


@dataclass(frozen=True)
class CameraRandomization:
    """Per-frame domain randomization ranges (Tobin et al. 2017)."""

    brightness: tuple[float, float] = (0.6, 1.0)  # rod intensity scale
    background: tuple[float, float] = (0.05, 0.35)  # background level
    gradient: float = 0.15  # max lighting gradient across the image
    noise_sigma: tuple[float, float] = (0.0, 0.06)
    blur_prob: float = 0.3
    shift_px: float = 2.0  # pose offset: translation (pixels)
    roll_deg: float = 2.0  # pose offset: camera roll
    occlusion_prob: float = 0.0
    blackout_prob: float = 0.0


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


def _box_blur(img: Array) -> Array:
    """3x3 box blur, edge-padded, on (N, H, W)."""
    pad = np.pad(img, ((0, 0), (1, 1), (1, 1)), mode="edge")
    out = np.zeros_like(img)
    for dy in range(3):
        for dx in range(3):
            out += pad[:, dy : dy + img.shape[1], dx : dx + img.shape[2]]
    return out / 9.0


def render_camera(
    x: Array, p: FurutaParams, rand: CameraRandomization, rng: np.random.Generator, shape: Shape = DEFAULT_SHAPE
) -> tuple[Array, Array]:
    """Randomized uint8 frames (N, H, W) and their camera-fault class labels (N,)."""
    n = x.shape[0]
    m_per_px = metres_per_pixel(shape)
    shift = rng.uniform(-rand.shift_px, rand.shift_px, size=(n, 2)) * m_per_px
    roll = np.deg2rad(rng.uniform(-rand.roll_deg, rand.roll_deg, size=n))
    clean = render_clean(x, p, shift, roll, shape)

    def u(lo_hi: tuple[float, float]) -> Array:
        return rng.uniform(lo_hi[0], lo_hi[1], size=(n, 1, 1))

    bg = u(rand.background)
    grad = rng.uniform(-rand.gradient, rand.gradient, size=(n, 2, 1, 1))
    rows, cols = np.linspace(-1.0, 1.0, shape[0]), np.linspace(-1.0, 1.0, shape[1])
    lighting = bg + grad[:, 0] * rows[None, :, None] + grad[:, 1] * cols[None, None, :]
    img = lighting + clean * (u(rand.brightness) - bg)
    labels = np.full(n, CAMERA_OK, dtype=np.int64)
    occl = np.less(rng.random(n), rand.occlusion_prob)
    if occl.any():
        img[occl] = _occlude(img[occl], rng)
        labels[occl] = CAMERA_OCCLUDED
    black = np.less(rng.random(n), rand.blackout_prob)
    if black.any():
        img[black] = rng.uniform(0.0, 0.04, size=(int(black.sum()), 1, 1))
        labels[black] = CAMERA_BLACKOUT
    blur = np.less(rng.random(n), rand.blur_prob)
    if blur.any():
        img[blur] = _box_blur(img[blur])
    img = img + rng.normal(size=img.shape) * u(rand.noise_sigma)
    return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), labels


def _occlude(img: Array, rng: np.random.Generator) -> Array:
    """Cover the upper half-plane region around the pivot with an opaque patch (a hand, a cable)."""
    out = img.copy()
    rows, cols = out.shape[1:]
    for k in range(out.shape[0]):
        h = rng.integers(rows * 3 // 8, rows * 5 // 8)  # 24..39 of 64
        w = rng.integers(cols * 7 // 16, cols * 7 // 8)  # 28..55 of 64
        top = rng.integers(0, rows // 2 - h // 2 + 1)
        left = rng.integers(0, cols - w + 1)
        out[k, top : top + h, left : left + w] = rng.uniform(0.0, 0.5)
    return out
