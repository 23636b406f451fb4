"""Plots of a training run (PNG): RL training curve, perception losses and accuracy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from sensorimotor.control.trainer import Curve
from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.models import Perception, angle_from_sincos
from sensorimotor.perception.train import FinetuneResult
from sensorimotor.sim.sensors import CAMERA_CLASSES, CAMERA_OK


def plot_training(curve: Curve, path: Path, title: str) -> None:
    """Learning curve: training return and episode length, and the periodic evaluation's score, against steps."""
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 3.6))
    if curve.train:
        t = [c["timesteps"] for c in curve.train]
        ax1.plot(t, [c["return"] for c in curve.train])
        ax2.plot(t, [c["length"] for c in curve.train])
    ax1.set(xlabel="environment steps", ylabel="mean episode return", title=title)
    ax2.set(xlabel="environment steps", ylabel="mean episode length (steps)", title="training episode length")
    if curve.eval:
        t = [c["timesteps"] for c in curve.eval]
        key = "success_rate" if "success_rate" in curve.eval[0] else "return"
        ax3.plot(t, [c[key] for c in curve.eval], marker="o")
        ax3.set(ylabel="success rate" if key == "success_rate" else "mean return (deterministic)")
        if key == "success_rate":
            ax3.set_ylim(-0.02, 1.02)
    else:
        ax3.text(
            0.5, 0.5, "no periodic evaluation\n(rl.eval_every = 0)", ha="center", va="center", transform=ax3.transAxes
        )
    ax3.set(xlabel="environment steps", title="periodic evaluation (fixed seeds)")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def plot_perception(model: Perception, test: SensorDataset, result: FinetuneResult, path: Path) -> None:
    """Learning curves, estimated vs true angle (IMU, image), camera-class confusion matrix."""
    n = min(len(test), 2000)
    est = model.eval()(test.imu[:n], test.image[:n])
    imu_est, img_est, logits = est.imu, est.image, est.camera_logits
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    axes[0].semilogy(result.train, label="train (minibatch)", alpha=0.5)
    if result.val:
        steps, val = zip(*result.val, strict=True)
        axes[0].semilogy(steps, val, marker="o", label="validation")
        axes[0].axvline(result.best_step, color="k", ls=":", label=f"kept: step {result.best_step}")
    axes[0].set(xlabel="step", ylabel="loss", title="perception fine-tuning")
    axes[0].legend()
    wrap = lambda a: np.rad2deg(np.angle(np.exp(1j * a)))  # noqa: E731  (-180, 180]
    true = wrap(test.state[:n, 1].numpy())
    axes[1].scatter(true, np.rad2deg(angle_from_sincos(imu_est).numpy()), s=2, alpha=0.4)
    axes[1].set(xlabel="true alpha (deg)", ylabel="IMU estimate (deg)", title="IMU angle")
    ok = (test.camera_class[:n] == CAMERA_OK).numpy()
    true_img = wrap(test.image_state[:n, 1].numpy())
    axes[2].scatter(true_img[ok], np.rad2deg(angle_from_sincos(img_est).numpy())[ok], s=2, alpha=0.4)
    axes[2].set(xlabel="true alpha (deg)", ylabel="image estimate (deg)", title="image angle (camera ok)")
    k = len(CAMERA_CLASSES)
    conf = np.zeros((k, k), int)
    np.add.at(conf, (test.camera_class[:n].numpy(), logits.argmax(-1).numpy()), 1)
    axes[3].imshow(conf, cmap="Blues")
    for i in range(k):
        for j in range(k):
            axes[3].text(j, i, str(conf[i, j]), ha="center", va="center")
    axes[3].set(xticks=range(k), yticks=range(k), xticklabels=CAMERA_CLASSES, yticklabels=CAMERA_CLASSES,
                xlabel="predicted", ylabel="true", title="camera health")  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
