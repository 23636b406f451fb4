"""Perception networks: IMU and image encoders, their heads, and the controller observation.

* :class:`ImuEncoder` — 1-D CNN over an IMU window (B, 6, W) -> (B, D).
* :class:`ImageEncoder` — 2-D CNN over a camera frame (B, 1, H, W) uint8 -> (B, D).
* :class:`Perception` — both encoders plus heads:
  regression from the IMU (sin alpha, cos alpha, alpha_dot / RATE_SCALE), regression
  from the image (sin alpha, cos alpha), classification of the camera's health
  (ok / occluded / blackout), and a fused regression from both encoders' features and the
  camera's health (sin, cos, rate). The class tells the controller when the image estimate
  is worthless, which happens on real rigs (a hand, a cable, lights off).
* :class:`ObservationModel` — raw sensors (imu, encoder counts, image) -> the policy's
  observation vector, including the arm angle and rate computed from encoder counts, with
  the IMU angle and the fused one optionally filtered across control steps (perception/filter.py).

All input scaling is inside the modules so the exported ONNX graph takes raw units.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch import nn

from sensorimotor.perception.filter import (
    FUSED_STATE_SIZE,
    GYRO_AXIS,
    STATE_SIZE,
    FusedFilter,
    ImuFilter,
    frame_signature,
    signature_mask,
)

RATE_SCALE = 5.0  # rad/s: alpha_dot regression target is alpha_dot / RATE_SCALE
IMU_SCALE = (5.0, 5.0, 5.0, 10.0, 10.0, 10.0)  # gyro rad/s, accel m/s^2
N_CAMERA_CLASSES = 3


# Frames (or IMU windows) per encoder pass when a large batch runs without gradients (an evaluation's
# hundreds of episodes). Past about a hundred frames the convolutions' activations no longer fit the CPU's
# cache and every frame costs 1.5-2.5x more (39 us a frame at 64, 99 us at 500 on the 2-core machine, one
# thread): ``python benchmarks/bench_inference.py`` measures it. Training keeps its batches whole.
INFERENCE_CHUNK = 64


def in_chunks(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, chunk: int = INFERENCE_CHUNK
) -> torch.Tensor:
    """``fn(x)`` for a per-sample ``fn``, run on at most ``chunk`` samples at a time outside autograd and tracing."""
    if x.shape[0] <= chunk or torch.is_grad_enabled() or torch.jit.is_tracing():
        return fn(x)
    return torch.cat([fn(part) for part in x.split(chunk)])


class ImuEncoder(nn.Module):
    """(B, 6, W) float SI units -> (B, dim)."""

    scale: torch.Tensor  # (1, 6, 1) buffer: 1 / IMU_SCALE

    def __init__(self, window: int = 64, dim: int = 128) -> None:
        super().__init__()
        self.register_buffer("scale", 1.0 / torch.tensor(IMU_SCALE).view(1, 6, 1))
        self.chunk = INFERENCE_CHUNK  # samples per pass without gradients (in_chunks)
        self.conv = nn.Sequential(
            nn.Conv1d(6, 32, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(32, 64, 5, stride=2, padding=2), nn.ReLU(),
            nn.Conv1d(64, 64, 5, stride=2, padding=2), nn.ReLU(),
        )  # fmt: skip
        steps = math.ceil(window / 8)
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(64 * steps, dim), nn.LayerNorm(dim), nn.ReLU())

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        return in_chunks(self._encode, imu, self.chunk)

    def _encode(self, imu: torch.Tensor) -> torch.Tensor:
        return self.proj(self.conv(imu * self.scale))  # (B, 64, W/8) -> (B, dim)


class ImageEncoder(nn.Module):
    """(B, 1, H, W) uint8 -> (B, dim); (H, W) = ``shape``, 64x64 by default."""

    def __init__(self, dim: int = 128, shape: tuple[int, int] = (64, 64)) -> None:
        super().__init__()
        self.chunk = INFERENCE_CHUNK  # frames per pass without gradients (in_chunks)
        self.conv = nn.Sequential(
            nn.Conv2d(1, 8, 4, stride=2, padding=1), nn.ReLU(),  # (B, 8, 32, 32)
            nn.Conv2d(8, 32, 3, stride=2, padding=1), nn.ReLU(),  # (B, 32, 16, 16)
            nn.Conv2d(32, 32, 3, stride=2, padding=1), nn.ReLU(),  # (B, 32, 8, 8)
        )  # fmt: skip
        side = [math.ceil(s / 8) for s in shape]  # three stride-2 convolutions: 64 -> 8
        self.proj = nn.Sequential(nn.Flatten(), nn.Linear(32 * side[0] * side[1], dim), nn.LayerNorm(dim), nn.ReLU())

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return in_chunks(self._encode, image, self.chunk)

    def _encode(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32) * (1.0 / 255.0) - 0.5
        return self.proj(self.conv(x))


class Estimates(NamedTuple):
    """What :class:`Perception` outputs for a batch."""

    imu: torch.Tensor  # (B, 3) sin alpha, cos alpha, alpha_dot / RATE_SCALE from the IMU
    image: torch.Tensor  # (B, 2) sin alpha, cos alpha from the frame (meaningful when the camera is ok)
    camera_logits: torch.Tensor  # (B, N_CAMERA_CLASSES)
    fused: torch.Tensor  # (B, 3) sin, cos, rate from both


class FrameCache:
    """The image encoder's last outputs per batch, for :meth:`Perception.cached`.

    The camera runs slower than the control loop (50 Hz against 100 Hz on the reference
    device), so about half the frames a rollout or an evaluation feeds the model each step
    are the ones it fed the step before. Entries are keyed by (batch size, mirror average):
    a batch of another size (the vector env's resets, an evaluation inside training) gets an
    entry of its own and never evicts the rollout's.
    """

    def __init__(self) -> None:
        # (batch, mirror) -> (frames, features (B, D), image estimate (B, 2)) of the last batch of that size
        self.entries: dict[tuple[int, bool], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
        self.frames_seen = 0
        self.frames_encoded = 0


class Perception(nn.Module):
    """Encoders and heads: raw IMU window and frame -> :class:`Estimates`.

    ``mirror`` (on by default; ``perception.mirror_average``): outside training, the image
    estimate is the average of the frame's and its mirror image's. The view of a pendulum is
    mirror-symmetric about the vertical through its pivot, so the frame flipped left-right is a
    frame of the pendulum at -alpha (the camera's roll and shift mirrored too, which the
    randomized training frames hold alike); the head's angle on it, negated, is a second
    reading of alpha whose error is partly independent of the first. Their mean has a lower
    error than either, and the part of the head's bias that is mirror-symmetric (a rig's
    lighting, the hanging pose's) cancels (docs/perception.md, "Mirror averaging"). Training
    steps read single frames, as test-time augmentation does; the image encoder then runs on two
    frames per step. The camera-health and fused heads read the frame as it came. Where the
    second pass costs more than it buys, :meth:`single_frames` turns it off for a while.
    """

    mirror_index: torch.Tensor  # (W,) buffer, not saved: column order of the left-right flip

    def __init__(
        self, window: int = 64, dim: int = 128, image_shape: tuple[int, int] = (64, 64), mirror: bool = True
    ) -> None:
        super().__init__()
        self.image_shape = image_shape
        self.mirror = mirror
        self.register_buffer("mirror_index", torch.arange(image_shape[1] - 1, -1, -1), persistent=False)
        self.frame_cache: FrameCache | None = None  # set by :meth:`cached`
        self.imu_encoder = ImuEncoder(window, dim)
        self.image_encoder = ImageEncoder(dim, image_shape)
        self.imu_head = nn.Linear(dim, 3)
        self.image_head = nn.Linear(dim, 2)
        self.camera_head = nn.Linear(dim, N_CAMERA_CLASSES)
        self.fused_head = nn.Sequential(nn.Linear(2 * dim + N_CAMERA_CLASSES, dim), nn.ReLU(), nn.Linear(dim, 3))

    @contextlib.contextmanager
    def single_frames(self) -> Iterator[Perception]:
        """Within the block, the image estimate reads each frame alone (no mirror average).

        For what runs the model many times and needs it fast, not exact: fine-tuning's validation
        (it scores the single-frame head that training fits) and PPO's rollouts.
        """
        mirror, self.mirror = self.mirror, False
        try:
            yield self
        finally:
            self.mirror = mirror

    @contextlib.contextmanager
    def cached(self, cache: FrameCache) -> Iterator[Perception]:
        """Within the block, the image encoder runs only on the frames that changed since the last batch of that size.

        Rows whose frame is byte for byte the one ``cache`` holds for their position reuse its features and
        image estimate; the others go through the encoder in one smaller batch. The encoder is a pure
        function of the frame, so the outputs are the same up to float rounding (which depends on the batch
        size). For what steps many episodes in lockstep without gradients: PPO's rollouts and
        :func:`~sensorimotor.control.evaluate.evaluate`. Off in training mode, with gradients and while exporting.
        """
        previous, self.frame_cache = self.frame_cache, cache
        try:
            yield self
        finally:
            self.frame_cache = previous

    def image_estimate(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The frame's features (B, D) and the image estimate (B, 2: sin, cos), mirror-averaged outside training."""
        cache = self.frame_cache
        if cache is None or self.training or torch.jit.is_tracing() or torch.is_grad_enabled():
            return self._image_estimate(image)
        key = (image.shape[0], self.mirror)
        entry = cache.entries.get(key)
        if entry is None or entry[0].shape != image.shape:
            zc, est = self._image_estimate(image)
            new = image.shape[0]
        else:
            frames, zc, est = entry
            changed = (image != frames).flatten(1).any(1).nonzero()[:, 0]
            new = len(changed)
            if new:
                zc, est = zc.clone(), est.clone()
                zc[changed], est[changed] = self._image_estimate(image[changed])
        cache.entries[key] = (image.clone(), zc, est)  # a copy: the caller's array is the simulator's, reused
        cache.frames_seen += image.shape[0]
        cache.frames_encoded += new
        return zc, est

    def _image_estimate(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not (self.mirror and not self.training):
            zc = self.image_encoder(image)
            return zc, self.image_head(zc)
        # both frames through the encoder in one batch: (2B, 1, H, W) -> (2B, D)
        zc, z_mirror = self.image_encoder(torch.cat([image, image.index_select(-1, self.mirror_index)])).chunk(2)
        est = self.image_head(zc)
        # the mirrored frame's (sin, cos) is of -alpha: (-sin, cos) reads alpha again
        return zc, 0.5 * (est + self.image_head(z_mirror) * est.new_tensor([-1.0, 1.0]))

    def forward(self, imu: torch.Tensor, image: torch.Tensor) -> Estimates:
        zi = self.imu_encoder(imu)
        zc, image_est = self.image_estimate(image)
        logits = self.camera_head(zc)
        fused = self.fused_head(torch.cat([zi, zc, torch.softmax(logits, dim=-1)], dim=-1))
        return Estimates(self.imu_head(zi), image_est, logits, fused)


def slope_weights(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Least-squares slope weights over ``n`` equally spaced samples (per sample step), computed in float64."""
    t = torch.arange(n, dtype=torch.float64) - (n - 1) / 2.0
    return (t / (t * t).sum()).to(dtype)


class ObservationModel(nn.Module):
    """Raw sensors (+ the filter's state) -> policy observation (B, len(OBS_NAMES)) and the next state.

    The encoder input is (B, E, W), every encoder the device streams; the arm's is the first.
    Arm angle = counts * 2 pi / cpr; arm rate = least-squares slope of the last
    ``rate_samples`` encoder counts (a fixed linear filter, so the graph stays pure), taken
    on counts relative to the newest one: the weights sum to zero, so this is the same slope,
    but float32 no longer cancels thousands of counts against each other (exact ONNX parity).

    With ``imu_filter`` (:class:`~sensorimotor.perception.filter.ImuFilter`), ``imu_sin``,
    ``imu_cos`` and ``imu_rate`` are the filter's estimate: the IMU head's angle with the sensor
    biases calibrated out across control steps. With ``fused_filter`` too
    (:class:`~sensorimotor.perception.filter.FusedFilter`), ``fused_sin``, ``fused_cos`` and
    ``fused_rate`` are the second filter's estimate, which adds the image head's angle and
    calibrates the camera's roll and lag. The model is then stateful: ``state``
    (B, ``state_size``: the IMU filter's, then the fused filter's) goes in, the next state comes
    out, once per control step, zeros for a fresh episode. Without a filter ``state_size`` is 0
    and the state is an empty (B, 0) tensor.
    """

    slope: torch.Tensor  # (rate_samples,) buffer: least-squares slope weights in rad/s per count
    signature: torch.Tensor  # (H, W) buffer: the frame signature's pixel mask (perception/filter.py)

    def __init__(
        self, perception: Perception, cpr: int, imu_rate_hz: float, rate_samples: int = 24,
        imu_filter: ImuFilter | None = None, fused_filter: FusedFilter | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        if fused_filter is not None and imu_filter is None:
            raise ValueError("a fused filter needs the IMU filter (its state follows the IMU filter's)")
        self.perception = perception
        self.imu_filter = imu_filter
        self.fused_filter = fused_filter
        self.state_size = (STATE_SIZE if imu_filter is not None else 0) + (
            FUSED_STATE_SIZE if fused_filter is not None else 0
        )
        self.rate_samples = rate_samples
        self.rad_per_count = 2.0 * math.pi / cpr
        self.register_buffer("slope", slope_weights(rate_samples) * imu_rate_hz * self.rad_per_count)
        self.register_buffer("signature", signature_mask(perception.image_shape))

    def forward(
        self, imu: torch.Tensor, encoder: torch.Tensor, image: torch.Tensor, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        est = self.perception(imu, image)
        imu_est, fused_est = est.imu, est.fused
        camera_ok = torch.softmax(est.camera_logits, dim=-1)[:, :1]
        if self.imu_filter is not None:
            if state is None:
                raise ValueError(f"this observation model filters the IMU: pass its state (B, {self.state_size})")
            gyro, imu_angle = imu[:, GYRO_AXIS], angle_from_sincos(est.imu[:, :2])
            alpha, alpha_dot, imu_state = self.imu_filter(imu_angle, gyro, state[:, :STATE_SIZE])
            imu_est = torch.stack([torch.sin(alpha), torch.cos(alpha), alpha_dot / RATE_SCALE], dim=-1)
            states = [imu_state]
            if self.fused_filter is not None:
                alpha, alpha_dot, fused_state = self.fused_filter(
                    imu_angle, angle_from_sincos(est.image), camera_ok[:, 0], frame_signature(image, self.signature), gyro,
                    state[:, STATE_SIZE:],
                )  # fmt: skip
                fused_est = torch.stack([torch.sin(alpha), torch.cos(alpha), alpha_dot / RATE_SCALE], dim=-1)
                states.append(fused_state)
            state = torch.cat(states, dim=1)
        else:
            state = imu.new_zeros(imu.shape[0], 0)
        counts = encoder[:, 0]  # (B, E, W) -> the arm's encoder, the Furuta's only one
        arm = counts[:, -1:] * self.rad_per_count
        rate = ((counts[:, -self.rate_samples :] - counts[:, -1:]) * self.slope).sum(-1, keepdim=True) / RATE_SCALE
        return torch.cat([imu_est, est.image, camera_ok, arm, rate, fused_est], dim=-1), state


def angle_from_sincos(sc: torch.Tensor) -> torch.Tensor:
    """atan2 of a (..., 2) [sin, cos] estimate."""
    return torch.atan2(sc[..., 0], sc[..., 1])
