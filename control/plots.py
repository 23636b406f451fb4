"""Plots of a training run (PNG): RL training curve, perception losses and accuracy."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.models import Perception, angle_from_sincos
from sensorimotor.sim.sensors import CAMERA_CLASSES, CAMERA_OK


def plot_training(curve: list[dict[str, float]], path: Path) -> None:
    """Mean episode return and length against environment steps."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))
    if curve:
        t = [c["timesteps"] for c in curve]
        ax1.plot(t, [c["return"] for c in curve])
        ax2.plot(t, [c["length"] for c in curve])
    ax1.set(xlabel="environment steps", ylabel="mean episode return", title="PPO training (perception in the loop)")
    ax2.set(xlabel="environment steps", ylabel="mean episode length (steps)", title="time before falling")
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@torch.no_grad()
def plot_perception(model: Perception, test: SensorDataset, pre: list[float], ft: list[float], path: Path) -> None:
    """Loss curves, estimated vs true angle (IMU, image), camera-class confusion matrix."""
    n = min(len(test), 2000)
    imu_est, img_est, logits = model.eval()(test.imu[:n], test.image[:n])
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    if pre:
        axes[0].semilogy(pre, label="pretrain (self-supervised)", alpha=0.8)
    axes[0].semilogy(np.arange(len(ft)) + len(pre), ft, label="fine-tune", alpha=0.8)
    axes[0].set(xlabel="step", ylabel="loss", title="perception training")
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
