"""Self-supervised pretraining of the IMU and image encoders (``sim pretrain``), and the linear probe that grades it.

No labels are used. The objectives, chosen per modality:

* IMU ``forecast``: from the window ending at step t, predict the IMU samples of
  the next ``forecast_steps`` control steps. What comes next depends on the pendulum's
  angle (gravity's direction), its rate and the arm's motion, so the features must hold
  the dynamical state — what the controller needs.
* IMU ``crossmodal``: ``forecast``, plus predicting the newest camera frame
  (16 x 16, each frame standardized, so lighting does not count) from the IMU window. The
  two sensors share nothing but the pendulum's pose and motion: the rod's place in the
  frame is the angle the IMU features must then hold, while each sensor's own nuisances
  (biases, noise; lighting, background) are unpredictable from the other and drop out.
  Both are raw sensor streams: this part needs neither labels nor the clean render.
* IMU ``kinematic`` (default): ``crossmodal``, plus reading the angle that rigid-body kinematics gives
  from the window's own gyro and accelerometer (:mod:`~sensorimotor.perception.kinematics`:
  gravity's direction once the tangential, centripetal and arm terms are subtracted). A
  pseudo-label from physics, not a label: it needs only the device's geometry, carries the
  accelerometer's bias and is off by about 1.5 deg, but it puts the angle in the features in
  the form the regression head reads, so a few labels only have to correct it.
  After the encoders, the IMU and fused regression heads are fitted to the same pseudo-label
  (and the gyro's rate) on the frozen features (``head_steps``) and shipped with them: a
  fine-tuning run with few labels then starts from heads that already read the angle, and
  only corrects their bias, instead of learning a fused head from random weights on a
  thousand samples (docs/perception.md measures what that buys).
* IMU ``masked``: reconstruct randomly masked time steps of the window (masked
  autoencoding, as in BERT/MAE for time series). Interpolating a smooth signal needs
  little knowledge of the state; kept as the comparison (docs/perception.md has both).
* Image ``denoise``: from a randomized frame (lighting, background texture, noise, blur,
  pose offset) reconstruct the simulator's clean render of the same pose. It teaches
  invariance to exactly what changes between rigs. It needs the clean render, so it runs
  on simulated frames only (a recorded log has no clean render).

Quality is measured by a *linear probe*: ridge regression from the frozen features to the
labels on held-out labelled data, against the same probe on a randomly initialized encoder.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from sensorimotor.perception.config import PretrainConfig
from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.filter import GYRO_AXIS, GYRO_SIGN
from sensorimotor.perception.kinematics import kinematic_angle
from sensorimotor.perception.models import IMU_SCALE, N_CAMERA_CLASSES, RATE_SCALE, Perception, angle_from_sincos
from sensorimotor.perception.weights import HEADS
from sensorimotor.sim.config import DeviceConfig, RandomizationConfig
from sensorimotor.sim.sensors import CAMERA_OK

CAMERA_TARGET = 16  # crossmodal: the frame is predicted at CAMERA_TARGET x CAMERA_TARGET pixels
BLANK_STD = 0.02  # crossmodal: a frame whose pixels spread less than this at 16 x 16 is blank (nothing to predict)


def widen(lo_hi: tuple[float, float], scale: float, upper: float = 1.0) -> tuple[float, float]:
    """The range [lo, hi] widened about its centre ``scale`` times, kept inside [0, upper]."""
    lo, hi = lo_hi
    centre, half = (lo + hi) / 2.0, (hi - lo) / 2.0 * scale
    return max(0.0, centre - half), min(upper, centre + half)


def imu_noise_spread(sensor_scale: float) -> float:
    """s of the corpus's IMU noise densities x U(1 - s, 1 + s): 1 - 1 / ``sensor_scale`` (3: 0.33 ... 1.67)."""
    return 1.0 - 1.0 / sensor_scale


def corpus_device(device: DeviceConfig, scale: float, sensor_scale: float = 1.0) -> DeviceConfig:
    """The device the unlabelled corpus is simulated on: randomized wider than training.

    Physics spreads ``scale`` times the device's (each kept below 100 %); camera ranges widened
    ``sensor_scale`` times about their centres; IMU noise densities x U(1 - s, 1 + s) per
    episode, s = :func:`imu_noise_spread` (3: 0.33 ... 1.67 x the device's). Unlabelled data
    costs nothing to widen, and a rig whose camera or IMU lies outside the labelled ranges then
    still lies inside what the encoders saw.
    """
    r, c = device.randomization, device.camera
    wider = {
        f.name: min(getattr(r, f.name) * scale, 0.9)
        for f in dataclasses.fields(RandomizationConfig) if isinstance(getattr(r, f.name), float)
    }  # fmt: skip
    if sensor_scale > 1.0:
        wider["imu_noise"] = max(r.imu_noise, imu_noise_spread(sensor_scale))
        c = dataclasses.replace(
            c, background=widen(c.background, sensor_scale), brightness=widen(c.brightness, sensor_scale),
            noise_sigma=widen(c.noise_sigma, sensor_scale), exposure_ms=widen(c.exposure_ms, sensor_scale, 100.0),
        )  # fmt: skip
    return dataclasses.replace(device, randomization=dataclasses.replace(r, **wider), camera=c)


def pseudo_labels(imu: torch.Tensor, device: DeviceConfig) -> torch.Tensor:
    """(N, 3) float: sin and cos of the kinematic angle at each raw window's end, and the newest gyro rate / RATE_SCALE.

    No labels: the angle is rigid-body kinematics on the window (perception/kinematics.py, with
    the device's nominal geometry) and the rate is what the gyro reads about the pendulum's axis.
    Both carry the sensors' biases; fine-tuning corrects them.
    """
    angle = torch.cat([
        kinematic_angle(imu[i : i + 8192], device.imu.position_m, device.physics.Lr, 1.0 / device.imu.rate_hz)
        for i in range(0, len(imu), 8192)
    ])  # fmt: skip
    rate = GYRO_SIGN * imu[:, GYRO_AXIS, -1] / RATE_SCALE
    return torch.stack([torch.sin(angle), torch.cos(angle), rate.to(angle.dtype)], 1).float()


class PretrainHeads(nn.Module):
    """Decoders used only while pretraining (thrown away after)."""

    def __init__(self, dim: int, window: int, forecast: int, pixels: int) -> None:
        super().__init__()
        self.masked = nn.Linear(dim, 6 * window)
        self.forecast = nn.Linear(dim, 6 * forecast)
        self.image = nn.Linear(dim, pixels)
        self.camera = nn.Linear(dim, CAMERA_TARGET * CAMERA_TARGET)
        self.kinematic = nn.Linear(dim, 2)


class Objective:
    """The pretraining loss on a minibatch of sequence positions (index of the sample at step t)."""

    def __init__(self, model: Perception, data: SensorDataset, cfg: PretrainConfig, device: DeviceConfig,
                 seed: int) -> None:  # fmt: skip
        if data.clean.numel() == 0:
            raise ValueError("pretraining needs the clean renders: generate the corpus with clean=True")
        self.model, self.data, self.cfg = model, data, cfg
        self.window = data.imu.shape[-1]
        substeps = device.substeps_per_control
        self.horizon = cfg.forecast_steps * substeps  # future IMU samples predicted
        if self.horizon > self.window:
            raise ValueError(
                f"forecast_steps {cfg.forecast_steps} x {substeps} samples exceeds the window {self.window}"
            )
        self.heads = PretrainHeads(model.imu_head.in_features, self.window, self.horizon,
                                   data.clean[0].numel())  # fmt: skip
        self.scale = 1.0 / torch.tensor(IMU_SCALE).view(1, 6, 1)
        self.gen = torch.Generator().manual_seed(seed)
        t = torch.arange(len(data)) % data.seq_len
        self.valid = torch.nonzero(t < data.seq_len - cfg.forecast_steps).squeeze(1)  # t + forecast_steps exists
        self.kinematic = torch.empty(0, 2)
        if cfg.imu_objective == "kinematic":
            # The device's nominal geometry for every episode: the corpus's spread of lengths is part of
            # what the pseudo-label gets wrong and the labels later correct.
            self.kinematic = pseudo_labels(data.imu, device)[:, :2]

    def parameters(self) -> list[nn.Parameter]:
        return [*self.model.imu_encoder.parameters(), *self.model.image_encoder.parameters(), *self.heads.parameters()]

    def sample(self, batch: int) -> torch.Tensor:
        return self.valid[torch.randint(0, len(self.valid), (batch,), generator=self.gen)]

    def imu_loss(self, b: torch.Tensor) -> torch.Tensor:
        imu = self.data.imu[b]
        if self.cfg.imu_objective != "masked":
            # The window k steps later ends k * substeps samples later (the IMU delay is fixed per episode):
            # its newest `horizon` samples are exactly the ones after this window.
            future = self.data.imu[b + self.cfg.forecast_steps][..., -self.horizon :] * self.scale
            z = self.model.imu_encoder(imu)
            loss = F.mse_loss(self.heads.forecast(z).view_as(future), future)
            if self.cfg.imu_objective in ("crossmodal", "kinematic"):
                loss = loss + self.cfg.camera_weight * self.camera_loss(z, b)
            if self.cfg.imu_objective == "kinematic":
                loss = loss + self.cfg.kinematic_weight * F.mse_loss(self.heads.kinematic(z), self.kinematic[b])
            return loss
        mask = (torch.rand(imu.shape[0], 1, self.window, generator=self.gen) < self.cfg.mask_fraction).float()
        recon = self.heads.masked(self.model.imu_encoder(imu * (1.0 - mask))).view_as(imu)
        err = (recon - imu * self.scale) ** 2
        return (err * mask).sum() / mask.sum().clamp(min=1.0) / 6.0

    def camera_loss(self, z: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The standardized low-resolution frame predicted from the IMU features ``z``; blank frames skipped."""
        frame = F.adaptive_avg_pool2d(self.data.image[b].float() / 255.0, CAMERA_TARGET).flatten(1)
        std = frame.std(1, keepdim=True)
        target = (frame - frame.mean(1, keepdim=True)) / (std + BLANK_STD)  # + BLANK_STD: near-blank stays bounded
        seen = (std.squeeze(1) > BLANK_STD).float()  # a blackout has nothing to predict
        per = ((self.heads.camera(z) - target) ** 2).mean(1)
        return (per * seen).sum() / seen.sum().clamp(min=1.0)

    def image_loss(self, b: torch.Tensor) -> torch.Tensor:
        target = self.data.clean[b].float().flatten(1) / 255.0
        return F.mse_loss(torch.sigmoid(self.heads.image(self.model.image_encoder(self.data.image[b]))), target)

    def __call__(self, b: torch.Tensor) -> tuple[torch.Tensor, float, float]:
        li, lc = self.imu_loss(b), self.image_loss(b)
        return li + self.cfg.image_weight * lc, float(li.detach()), float(lc.detach())


def warmup_cosine(opt: torch.optim.Optimizer, steps: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup`` steps, then cosine decay to 5 % of the peak."""

    def factor(i: int) -> float:
        if i < warmup:
            return (i + 1) / warmup
        progress = min(1.0, (i - warmup) / max(1, steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1.0 + np.cos(np.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def pretrain(
    model: Perception,
    corpus: SensorDataset,
    cfg: PretrainConfig,
    device: DeviceConfig,
    seed: int,
    progress: bool = True,
) -> dict[str, list[float]]:
    """Train both encoders on the unlabelled corpus; returns the loss curves (IMU and image, per step)."""
    torch.manual_seed(seed)
    objective = Objective(model, corpus, cfg, device, seed)
    params = objective.parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = warmup_cosine(opt, cfg.steps, max(1, cfg.steps // 20))
    curves: dict[str, list[float]] = {"imu": [], "image": []}
    model.train()
    bar = tqdm(range(cfg.steps), desc=f"pretrain ({cfg.imu_objective})", unit="step", disable=not progress,
               mininterval=1.0)  # fmt: skip
    for i in bar:
        loss, li, lc = objective(objective.sample(cfg.batch_size))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        sched.step()
        curves["imu"].append(li)
        curves["image"].append(lc)
        if (i + 1) % 100 == 0:
            bar.set_postfix(imu=f"{np.mean(curves['imu'][-100:]):.4f}", image=f"{np.mean(curves['image'][-100:]):.4f}")
    model.eval()
    return curves


def _fused_input(zi: torch.Tensor, zc: torch.Tensor) -> torch.Tensor:
    """The fused head's input with the camera's health unknown (uniform): pretraining has no camera classes."""
    return torch.cat([zi, zc, zi.new_full((len(zi), N_CAMERA_CLASSES), 1.0 / N_CAMERA_CLASSES)], 1)


def pretrain_heads(
    model: Perception, corpus: SensorDataset, cfg: PretrainConfig, device: DeviceConfig, seed: int,
    progress: bool = True,
) -> list[float]:  # fmt: skip
    """Fit ``model``'s IMU and fused heads to :func:`pseudo_labels` on the frozen encoders' features; loss per step.

    The encoders do not change (their features are computed once). The camera head is not
    trained here (its classes would be labels), so the fused head sees the camera's health as
    uniform; fine-tuning trains all heads together on real labels.
    """
    target = pseudo_labels(corpus.imu, device)
    zi, zc = (z.float() for z in features(model, corpus))
    fused_in = _fused_input(zi, zc)
    params = [p for name in HEADS for p in getattr(model, name).parameters()]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = warmup_cosine(opt, cfg.head_steps, max(1, cfg.head_steps // 20))
    gen = torch.Generator().manual_seed(seed + 1)
    curve: list[float] = []
    bar = tqdm(range(cfg.head_steps), desc="pretrain heads", unit="step", disable=not progress, mininterval=1.0)
    for _ in bar:
        b = torch.randint(0, len(corpus), (cfg.batch_size,), generator=gen)
        loss = F.mse_loss(model.imu_head(zi[b]), target[b]) + F.mse_loss(model.fused_head(fused_in[b]), target[b])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        curve.append(float(loss.detach()))
    return curve


@torch.no_grad()
def grade_heads(model: Perception, data: SensorDataset) -> dict[str, float]:
    """Angle RMSE (deg) of the IMU and fused heads as they are, on labelled ``data`` (fused: camera health uniform)."""
    zi, zc = (z.float() for z in features(model, data))
    a = data.state[:, 1]
    return {
        "imu_angle_rmse_deg": _rmse_deg(model.imu_head(zi)[:, :2].double(), a.double()),
        "fused_angle_rmse_deg": _rmse_deg(model.fused_head(_fused_input(zi, zc))[:, :2].double(), a.double()),
    }


@torch.no_grad()
def features(model: Perception, data: SensorDataset, batch: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen IMU and image features (N, dim) each."""
    model.eval()
    zi = [model.imu_encoder(data.imu[i : i + batch]) for i in range(0, len(data), batch)]
    zc = [model.image_encoder(data.image[i : i + batch]) for i in range(0, len(data), batch)]
    return torch.cat(zi).double(), torch.cat(zc).double()


def ridge(x: torch.Tensor, y: torch.Tensor, lam: float = 1e-3) -> torch.Tensor:
    """Closed-form ridge regression with a bias column: weights (D + 1, K) for y ~ [x, 1] @ w."""
    xb = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    reg = lam * len(x) * torch.eye(xb.shape[1], dtype=x.dtype)
    reg[-1, -1] = 0.0
    return torch.linalg.solve(xb.T @ xb + reg, xb.T @ y)


def _apply(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1) @ w


def _rmse_deg(pred_sc: torch.Tensor, angle: torch.Tensor) -> float:
    err = torch.remainder(angle_from_sincos(pred_sc) - angle + np.pi, 2 * np.pi) - np.pi
    return float(torch.rad2deg(err).pow(2).mean().sqrt())


def linear_probe(model: Perception, data: SensorDataset) -> dict[str, float]:
    """Ridge probes on frozen features, fit on 3/4 of ``data`` and scored on the rest.

    IMU features -> (sin alpha, cos alpha, alpha_dot / RATE_SCALE); image features -> (sin, cos)
    of the frame's angle, on sound frames only.
    """
    zi, zc = features(model, data)
    n_fit = len(data) * 3 // 4
    fit, test = slice(0, n_fit), slice(n_fit, None)
    a, rate = data.state[:, 1].double(), data.state[:, 3].double()
    yi = torch.stack([torch.sin(a), torch.cos(a), rate / RATE_SCALE], 1)
    wi = ridge(zi[fit], yi[fit])
    pi = _apply(zi[test], wi)
    ok = (data.camera_class == CAMERA_OK).numpy()
    ai = data.image_state[:, 1].double()
    yc = torch.stack([torch.sin(ai), torch.cos(ai)], 1)
    fit_ok = torch.from_numpy(np.nonzero(ok[:n_fit])[0])
    test_ok = torch.from_numpy(np.nonzero(ok[n_fit:])[0] + n_fit)
    wc = ridge(zc[fit_ok], yc[fit_ok])
    return {
        "imu_angle_rmse_deg": _rmse_deg(pi[:, :2], a[test]),
        "imu_rate_rmse_rad_s": float(((pi[:, 2] - yi[test, 2]) * RATE_SCALE).pow(2).mean().sqrt()),
        "image_angle_rmse_deg": _rmse_deg(_apply(zc[test_ok], wc), ai[test_ok]),
    }


def run_pretraining(
    model: Perception, corpus: SensorDataset, probe: SensorDataset, cfg: PretrainConfig, device: DeviceConfig,
    seed: int, progress: bool = True,
) -> tuple[dict[str, list[float]], dict[str, Any]]:  # fmt: skip
    """Probe a random init, pretrain, probe again, then fit the heads if :func:`pretrains_heads`: (curves, report)."""
    t0 = time.time()
    before = linear_probe(model, probe)
    curves = pretrain(model, corpus, cfg, device, seed, progress)
    after = linear_probe(model, probe)
    quality: dict[str, Any] = {"probe_random_init": before, "probe_pretrained": after}
    if pretrains_heads(cfg):
        curves["heads"] = pretrain_heads(model, corpus, cfg, device, seed, progress)
        quality["heads_no_labels"] = grade_heads(model, probe)
    return curves, quality | {"seconds": time.time() - t0}


def pretrains_heads(cfg: PretrainConfig) -> bool:
    """Whether pretraining fits :data:`HEADS` (the pseudo-label is the kinematic objective's)."""
    return cfg.imu_objective == "kinematic" and cfg.head_steps > 0
