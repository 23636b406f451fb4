"""Perception fine-tuning and evaluation: encoders start from pretrained weights, then encoders and heads learn from labels.

Pretraining is :mod:`sensorimotor.perception.pretrain` (``sim pretrain``); the project ships its
result (:data:`~sensorimotor.perception.weights.SHIPPED`), which ``perception.init`` selects by default.

Fine-tuning (``sim train``'s perception stage and ``sim finetune``):

* **modality** — which heads learn: ``imu`` (IMU regression), ``image`` (image regression and
  the camera-health classifier), ``fused`` (the fused regression and the classifier), or
  ``all`` (every head; what ``sim train`` does).
* **freeze** — ``linear``: encoders frozen, heads only (a linear probe for the single-layer
  heads); ``partial``: the encoders' last convolution and projection learn too; ``full``:
  everything learns; ``lp-ft`` (the default): a linear probe first, then everything at
  ``lp_ft_lr_ratio`` x the rate, so that fine-tuning starts from heads that already read the
  pretrained features and adapts them rather than rewriting them (Kumar et al. 2022, "Fine-Tuning
  can Distort Pretrained Features and Underperform Out-of-Distribution"). From random encoders
  there is nothing to keep, so ``lp-ft`` is ``full`` there.
* ``augment`` — training frames are seen under random lighting (perception/augment.py).
* AdamW with linear warm-up and cosine decay; the validation split (whole episodes, so no
  near-duplicate of a validation sample is trained on) is scored every ``eval_every`` steps,
  the best weights are kept, and training stops after ``patience`` evaluations without
  improvement.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sensorimotor.perception.augment import photometric
from sensorimotor.perception.config import PerceptionConfig
from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.errors import DatasetError
from sensorimotor.perception.models import (
    N_CAMERA_CLASSES,
    RATE_SCALE,
    Estimates,
    ImageEncoder,
    ImuEncoder,
    Perception,
    angle_from_sincos,
)
from sensorimotor.perception.pretrain import warmup_cosine
from sensorimotor.perception.weights import SHIPPED, load_encoders, sha256
from sensorimotor.sim.sensors import CAMERA_OK

MODALITIES = ("imu", "image", "fused", "all")
LP_SHARE = 1 / 3  # of finetune_steps, the linear-probe phase of lp-ft (heads on fixed features converge fast)


def check_init(init: str, window: int, dim: int, image_shape: tuple[int, int]) -> None:
    """Raise WeightsError now if ``init`` cannot be loaded into this architecture (before a run writes anything)."""
    init_encoders(Perception(window, dim, image_shape), init)


def init_encoders(model: Perception, init: str) -> dict[str, Any]:
    """Load ``init``'s encoder weights into ``model`` (see PerceptionConfig.init); returns where they came from.

    Raises :class:`~sensorimotor.perception.errors.WeightsError` for a missing or unreadable file or one
    made for another architecture (naming the mismatched layers).
    """
    if init == "scratch":
        return {"init": "scratch"}
    path = SHIPPED if init == "shipped" else Path(init)
    meta = load_encoders(model, path)
    return {"init": init, "path": str(path), "sha256": sha256(path), "objective": meta.get("objective")}


def split(data: SensorDataset, val_fraction: float, seed: int, batch_size: int) -> tuple[SensorDataset, SensorDataset]:
    """(train, validation) by whole episodes, seeded. DatasetError when there are too few for both."""
    n_seq = data.n_sequences
    n_val = max(1, round(n_seq * val_fraction))
    n_train_samples = (n_seq - n_val) * data.seq_len
    if n_seq < 2 or n_train_samples < batch_size:
        raise DatasetError(
            f"{len(data)} labelled samples ({n_seq} episodes of {data.seq_len}) are too few: a validation split of "
            f"{val_fraction:.0%} leaves {max(0, n_train_samples)} for training, fewer than one batch of {batch_size}. "
            "Record more (longer or more logs), or lower perception.batch_size / perception.val_fraction."
        )
    order = torch.randperm(n_seq, generator=torch.Generator().manual_seed(seed))
    return data.sequences(order[n_val:]), data.sequences(order[:n_val])


def targets(data: SensorDataset) -> tuple[torch.Tensor, torch.Tensor]:
    """IMU / fused targets (N, 3) at the newest IMU sample, and image targets (N, 2) at the frame's capture."""
    a, ad = data.state[:, 1], data.state[:, 3]
    imu_t = torch.stack([torch.sin(a), torch.cos(a), ad / RATE_SCALE], -1)
    ai = data.image_state[:, 1]
    return imu_t, torch.stack([torch.sin(ai), torch.cos(ai)], -1)


class Loss:
    """The fine-tuning loss of ``modality`` on samples ``b`` of ``data``.

    With ``augment`` (a generator), each frame is seen under random lighting
    (:func:`~sensorimotor.perception.augment.photometric`); validation passes None.
    """

    def __init__(self, data: SensorDataset, modality: str, augment: torch.Generator | None = None) -> None:
        if modality not in MODALITIES:
            raise ValueError(f"modality: {modality!r} is unknown (allowed: {', '.join(MODALITIES)})")
        self.data, self.modality, self.augment = data, modality, augment
        self.imu_t, self.img_t = targets(data)
        self.img_ok = (data.camera_class == CAMERA_OK).float()

    def __call__(self, model: Perception, b: torch.Tensor) -> torch.Tensor:
        image = self.data.image[b]
        if self.augment is not None and self.modality != "imu":
            image = photometric(image, self.augment)
        est: Estimates = model(self.data.imu[b], image)
        m, total = self.modality, torch.zeros(())
        if m in ("imu", "all"):
            total = total + F.mse_loss(est.imu, self.imu_t[b])
        if m in ("image", "fused", "all"):
            total = total + 0.2 * F.cross_entropy(est.camera_logits, self.data.camera_class[b], ignore_index=-1)
        if m in ("image", "all"):
            # Occluded or dark frames carry no angle: only the classifier learns from them.
            per = ((est.image - self.img_t[b]) ** 2).mean(-1)
            total = total + (per * self.img_ok[b]).sum() / self.img_ok[b].sum().clamp(min=1.0)
        if m in ("fused", "all"):
            total = total + F.mse_loss(est.fused, self.imu_t[b])
        return total


def trainable(model: Perception, modality: str, freeze: str) -> list[nn.Parameter]:
    """The parameters fine-tuning updates (the rest get requires_grad False)."""
    imu, image = model.imu_encoder, model.image_encoder
    heads: dict[str, list[nn.Module]] = {
        "imu": [model.imu_head], "image": [model.image_head, model.camera_head],
        "fused": [model.fused_head, model.camera_head],
        "all": [model.imu_head, model.image_head, model.camera_head, model.fused_head],
    }  # fmt: skip
    encoders: dict[str, list[ImuEncoder | ImageEncoder]] = {
        "imu": [imu], "image": [image], "fused": [imu, image], "all": [imu, image],
    }  # fmt: skip
    modules: list[nn.Module] = list(heads[modality])
    for enc in encoders[modality]:
        if freeze == "full":
            modules.append(enc)
        elif freeze == "partial":  # the last convolution and the projection
            modules += [enc.conv[-2], enc.proj]
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for mod in modules for p in mod.parameters()]
    for p in params:
        p.requires_grad_(True)
    return params


@dataclass
class FinetuneResult:
    """Loss curves and where early stopping chose the weights."""

    train: list[float] = field(default_factory=list)  # per step
    val: list[tuple[int, float]] = field(default_factory=list)  # (step, validation loss)
    best_step: int = 0
    stopped_early: bool = False
    seconds: float = 0.0


@torch.no_grad()
def _val_loss(model: Perception, loss: Loss, batch: int = 1024) -> float:
    """The validation loss of what training fits: single frames (the mirror average would double its cost)."""
    model.eval()
    n = len(loss.data)
    with model.single_frames():
        total = sum(
            float(loss(model, torch.arange(i, min(i + batch, n)))) * min(batch, n - i) for i in range(0, n, batch)
        )
    model.train()
    return total / n


def phases(cfg: PerceptionConfig, pretrained: bool) -> list[tuple[str, float, int]]:
    """(freeze, peak learning rate, steps at most) of each fine-tuning phase."""
    if cfg.freeze != "lp-ft":
        return [(cfg.freeze, cfg.lr, cfg.finetune_steps)]
    if not pretrained:
        return [("full", cfg.lr, cfg.finetune_steps)]
    probe = max(1, round(cfg.finetune_steps * LP_SHARE))
    return [("linear", cfg.lr, probe), ("full", cfg.lr * cfg.lp_ft_lr_ratio, max(1, cfg.finetune_steps - probe))]


def finetune(
    model: Perception, train: SensorDataset, val: SensorDataset, cfg: PerceptionConfig, seed: int,
    *, pretrained: bool, modality: str = "all", progress: bool = True,
) -> FinetuneResult:  # fmt: skip
    """Fine-tune ``model`` in place (ends holding the best validation weights).

    ``pretrained``: whether the encoders hold pretrained weights (``lp-ft`` probes them first).
    Each phase has its own warm-up and cosine decay and its own early stopping; the best weights
    carry from one phase into the next. The result's steps count across phases.
    """
    t0 = time.time()
    gen = torch.Generator().manual_seed(seed + 1)
    n_labelled = min(len(train), max(cfg.batch_size, int(len(train) * cfg.label_fraction)))
    augment = torch.Generator().manual_seed(seed + 2) if cfg.augment else None
    train_loss, val_loss = Loss(train, modality, augment), Loss(val, modality)
    result = FinetuneResult()
    best, best_state = float("inf"), copy.deepcopy(model.state_dict())
    model.train()
    done = 0
    for freeze, lr, steps in phases(cfg, pretrained):
        params = trainable(model, modality, freeze)
        opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
        sched = warmup_cosine(opt, steps, max(1, steps // 20))
        waited, result.stopped_early = 0, False  # stopping a phase early is reported for the last phase
        bar = tqdm(range(steps), desc=f"fine-tune ({modality}, {freeze})", unit="step",
                   disable=not progress, leave=False, mininterval=1.0)  # fmt: skip
        for step in bar:
            loss = train_loss(model, torch.randint(0, n_labelled, (cfg.batch_size,), generator=gen))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            result.train.append(float(loss.detach()))
            if (step + 1) % cfg.eval_every == 0 or step + 1 == steps:
                score = _val_loss(model, val_loss)
                result.val.append((done + step + 1, score))
                bar.set_postfix(train=f"{np.mean(result.train[-cfg.eval_every :]):.4f}", val=f"{score:.4f}")
                if score < best:
                    best, best_state, waited = score, copy.deepcopy(model.state_dict()), 0
                    result.best_step = done + step + 1
                else:
                    waited += 1
                    if cfg.patience and waited >= cfg.patience:
                        result.stopped_early = True
                        break
        done = len(result.train)
        model.load_state_dict(best_state)  # the next phase starts from the best weights so far
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    result.seconds = time.time() - t0
    return result


def _wrap_deg(d: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.remainder(d + np.pi, 2 * np.pi) - np.pi)


@torch.no_grad()
def predict(model: Perception, data: SensorDataset, batch: int = 1024) -> Estimates:
    model.eval()
    outs = [model(data.imu[i : i + batch], data.image[i : i + batch]) for i in range(0, len(data), batch)]
    return Estimates(*(torch.cat(o) for o in zip(*outs, strict=True)))


def _rms(x: torch.Tensor) -> float:
    return float(x.pow(2).mean().sqrt()) if x.numel() else float("nan")


@torch.no_grad()
def evaluate(model: Perception, data: SensorDataset, batch: int = 1024) -> dict[str, Any]:
    """Angle RMSE (deg) of the IMU, image and fused estimates; rate RMSE (rad/s); camera accuracy and confusion.

    ``*_near_upright``: samples within 30 deg of upright (balancing); ``*_swinging``: the rest.
    """
    est = predict(model, data, batch)
    alpha, rate = data.state[:, 1], data.state[:, 3]
    near = alpha.cos() > np.cos(np.deg2rad(30))
    imu_err = _wrap_deg(angle_from_sincos(est.imu) - alpha)
    fused_err = _wrap_deg(angle_from_sincos(est.fused) - alpha)
    ok = data.camera_class == CAMERA_OK
    img_err = _wrap_deg(angle_from_sincos(est.image) - data.image_state[:, 1])[ok]
    known = data.camera_class >= 0  # -1: a logged frame without a reference (no class label)
    cls, pred = data.camera_class[known], est.camera_logits.argmax(-1)[known]
    conf = torch.zeros(N_CAMERA_CLASSES, N_CAMERA_CLASSES, dtype=torch.long)
    conf.index_put_((cls, pred), torch.ones(len(cls), dtype=torch.long), True)
    return {
        "imu_angle_rmse_deg": _rms(imu_err),
        "imu_angle_rmse_deg_near_upright": _rms(imu_err[near]),
        "imu_angle_rmse_deg_swinging": _rms(imu_err[~near]),
        "image_angle_rmse_deg": _rms(img_err),
        "fused_angle_rmse_deg": _rms(fused_err),
        "fused_angle_rmse_deg_near_upright": _rms(fused_err[near]),
        "imu_rate_rmse_rad_s": _rms(est.imu[:, 2] * RATE_SCALE - rate),
        "fused_rate_rmse_rad_s": _rms(est.fused[:, 2] * RATE_SCALE - rate),
        "camera_class_accuracy": float((pred == cls).float().mean()) if len(cls) else float("nan"),
        "camera_confusion": conf.tolist(),  # rows: true class, columns: predicted (sim.sensors.CAMERA_CLASSES)
        "samples": len(data),
    }
