"""Perception training: self-supervised pretraining, supervised fine-tuning, evaluation.

Pretraining uses no labels: the IMU encoder learns masked reconstruction of its window,
the image encoder learns to denoise randomized frames into clean renders. Fine-tuning
starts from those weights and trains encoders and heads on labelled samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sensorimotor.hardware.config import Section, doc
from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.models import IMU_SCALE, RATE_SCALE, Perception, angle_from_sincos
from sensorimotor.sim.sensors import CAMERA_OK


@dataclass(frozen=True)
class PerceptionConfig(Section):
    """Perception data and training budgets."""

    train_samples: int = doc("Simulated samples for pretraining and fine-tuning.", 60000, gt=0)
    test_samples: int = doc("Held-out simulated samples for the reported metrics.", 8000, gt=0)
    label_fraction: float = doc("Fraction of training samples whose labels fine-tuning may use.", 1.0, gt=0, le=1)
    dim: int = doc("Encoder feature size.", 128, gt=0, le=4096)
    pretrain_steps: int = doc("Self-supervised pretraining steps (0: skip).", 1500, ge=0)
    finetune_steps: int = doc("Supervised fine-tuning steps.", 4000, gt=0)
    batch_size: int = doc("Minibatch size (<= train_samples).", 128, gt=0)
    lr: float = doc("Adam learning rate (cosine-decayed).", 1e-3, gt=0, le=1)

    def check(self) -> None:
        if self.batch_size > self.train_samples:
            raise ValueError(
                f"batch_size: {self.batch_size} exceeds train_samples {self.train_samples} (allowed: <= train_samples)"
            )


class Decoders(nn.Module):
    """Pretraining decoders: IMU window and clean image from encoder features."""

    def __init__(self, window: int, dim: int, pixels: int) -> None:
        super().__init__()
        self.window = window
        self.imu = nn.Linear(dim, 6 * window)
        self.image = nn.Linear(dim, pixels)


def _batches(n: int, batch: int, steps: int, gen: torch.Generator) -> list[torch.Tensor]:
    return [torch.randint(0, n, (batch,), generator=gen) for _ in range(steps)]


def _optimize(
    params: list[nn.Parameter], loss_fn: Callable[[torch.Tensor], torch.Tensor], idx: list[torch.Tensor],
    lr: float, desc: str,
) -> list[float]:  # fmt: skip
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(len(idx), 1), eta_min=lr * 0.05)
    losses = []
    bar = tqdm(idx, desc=desc, unit="step", leave=False, mininterval=1.0)
    for b in bar:
        loss = loss_fn(b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
        if len(losses) % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    return losses


def pretrain(model: Perception, data: SensorDataset, cfg: PerceptionConfig, seed: int) -> list[float]:
    """Self-supervised pretraining of both encoders; returns the loss curve."""
    if cfg.pretrain_steps == 0:
        return []
    gen = torch.Generator().manual_seed(seed)
    window = data.imu.shape[-1]
    dec = Decoders(window, cfg.dim, data.clean[0].numel())
    scale = 1.0 / torch.tensor(IMU_SCALE).view(1, 6, 1)

    def loss_fn(b: torch.Tensor) -> torch.Tensor:
        imu = data.imu[b]
        mask = (torch.rand(imu.shape[0], 1, window, generator=gen) < 0.25).float()  # 25% of time steps
        z = model.imu_encoder(imu * (1.0 - mask))
        recon = dec.imu(z).view_as(imu)
        err = (recon - imu * scale) ** 2
        imu_loss = (err * mask).sum() / mask.sum().clamp(min=1.0) / 6.0 + 0.1 * err.mean()
        target = data.clean[b].float().view(len(b), -1) / 255.0
        img_loss = F.mse_loss(torch.sigmoid(dec.image(model.image_encoder(data.image[b]))), target)
        return imu_loss + 10.0 * img_loss

    params = list(model.imu_encoder.parameters()) + list(model.image_encoder.parameters()) + list(dec.parameters())
    return _optimize(params, loss_fn, _batches(len(data), cfg.batch_size, cfg.pretrain_steps, gen), cfg.lr, "pretrain")


def targets(data: SensorDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """IMU targets (N, 3) and image targets (N, 2)."""
    a, ad = data.state[:, 1], data.state[:, 3]
    imu_t = torch.stack([torch.sin(a), torch.cos(a), ad / RATE_SCALE], -1)
    ai = data.image_state[:, 1]
    return imu_t, torch.stack([torch.sin(ai), torch.cos(ai)], -1)


def finetune(model: Perception, data: SensorDataset, cfg: PerceptionConfig, seed: int) -> list[float]:
    """Supervised fine-tuning of encoders and heads; returns the loss curve."""
    gen = torch.Generator().manual_seed(seed + 1)
    n_labelled = max(cfg.batch_size, int(len(data) * cfg.label_fraction))
    imu_t, img_t = targets(data)
    img_ok = (data.camera_class == CAMERA_OK).float()

    def loss_fn(b: torch.Tensor) -> torch.Tensor:
        imu_est, img_est, logits = model(data.imu[b], data.image[b])
        imu_loss = F.mse_loss(imu_est, imu_t[b])
        # Occluded or dark frames carry no angle: only the classifier learns from them.
        per = ((img_est - img_t[b]) ** 2).mean(-1)
        img_loss = (per * img_ok[b]).sum() / img_ok[b].sum().clamp(min=1.0)
        return imu_loss + img_loss + 0.2 * F.cross_entropy(logits, data.camera_class[b])

    return _optimize(
        list(model.parameters()), loss_fn, _batches(n_labelled, cfg.batch_size, cfg.finetune_steps, gen), cfg.lr,
        "fine-tune",
    )  # fmt: skip


@torch.no_grad()
def evaluate(model: Perception, data: SensorDataset, batch: int = 1024) -> dict[str, float]:
    """Angle RMSE (deg) for IMU and image, rate RMSE (rad/s), camera-class accuracy."""
    model.eval()
    outs = [model(data.imu[i : i + batch], data.image[i : i + batch]) for i in range(0, len(data), batch)]
    imu_est, img_est, logits = (torch.cat(o) for o in zip(*outs, strict=False))
    wrap = lambda d: torch.remainder(d + np.pi, 2 * np.pi) - np.pi  # noqa: E731
    imu_err = torch.rad2deg(wrap(angle_from_sincos(imu_est) - data.state[:, 1]))
    ok = data.camera_class == CAMERA_OK
    img_err = torch.rad2deg(wrap(angle_from_sincos(img_est) - data.image_state[:, 1]))[ok]
    near = data.state[:, 1].abs() < np.deg2rad(30)
    return {
        "imu_angle_rmse_deg": float(imu_err.pow(2).mean().sqrt()),
        "imu_angle_rmse_deg_near_upright": float(imu_err[near].pow(2).mean().sqrt()),
        "image_angle_rmse_deg": float(img_err.pow(2).mean().sqrt()),
        "imu_rate_rmse_rad_s": float((imu_est[:, 2] * RATE_SCALE - data.state[:, 3]).pow(2).mean().sqrt()),
        "camera_class_accuracy": float((logits.argmax(-1) == data.camera_class).float().mean()),
    }
