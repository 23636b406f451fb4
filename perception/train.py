"""Perception fine-tuning and evaluation: encoders start from pretrained weights, then encoders and heads learn from labels.

Pretraining is :mod:`sensorimotor.perception.pretrain` (``sim pretrain``); the project ships its
result (:data:`~sensorimotor.perception.weights.SHIPPED`), which ``perception.init`` selects by default.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sensorimotor.hardware.config import Section, doc
from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.models import RATE_SCALE, Perception, angle_from_sincos
from sensorimotor.perception.weights import SHIPPED, load_encoders, sha256
from sensorimotor.sim.sensors import CAMERA_OK


@dataclass(frozen=True)
class PerceptionConfig(Section):
    """Perception data and training budgets."""

    train_samples: int = doc("Simulated samples for pretraining and fine-tuning.", 60000, gt=0)
    test_samples: int = doc("Held-out simulated samples for the reported metrics.", 8000, gt=0)
    label_fraction: float = doc("Fraction of training samples whose labels fine-tuning may use.", 1.0, gt=0, le=1)
    dim: int = doc("Encoder feature size.", 128, gt=0, le=4096)
    finetune_steps: int = doc("Supervised fine-tuning steps.", 4000, gt=0)
    batch_size: int = doc("Minibatch size (<= train_samples).", 128, gt=0)
    lr: float = doc("Adam learning rate (cosine-decayed).", 1e-3, gt=0, le=1)
    init: str = doc(
        "Encoder weights fine-tuning starts from: shipped (the project's pretrained encoders, docs/model-card.md), "
        "scratch (random), or the path of an encoders.pt written by `sim pretrain`.", "shipped",
    )  # fmt: skip

    def check(self) -> None:
        if not self.init:
            raise ValueError("init: empty (allowed: shipped, scratch, or the path of an encoders.pt)")
        if self.batch_size > self.train_samples:
            raise ValueError(
                f"batch_size: {self.batch_size} exceeds train_samples {self.train_samples} (allowed: <= train_samples)"
            )


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


def check_init(init: str, window: int, dim: int, image_shape: tuple[int, int]) -> None:
    """Raise WeightsError now if ``init`` cannot be loaded into this architecture (before a run writes anything)."""
    init_encoders(Perception(window, dim, image_shape), init)


def init_encoders(model: Perception, init: str) -> dict[str, Any]:
    """Load ``init``'s encoder weights into ``model`` (see PerceptionConfig.init); returns where they came from.

    Raises :class:`~sensorimotor.perception.weights.WeightsError` for a missing or unreadable file or one
    made for another architecture (naming the mismatched layers).
    """
    if init == "scratch":
        return {"init": "scratch"}
    path = SHIPPED if init == "shipped" else Path(init)
    meta = load_encoders(model, path)
    return {"init": init, "path": str(path), "sha256": sha256(path), "objective": meta.get("objective")}


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
