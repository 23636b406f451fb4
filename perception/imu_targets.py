"""IMU estimates of a device's named angles and rates: the shipped IMU encoder with a head of the device's own.

A device names what its policy needs from the IMU as :class:`Target` s — state values it
cannot read from an encoder (the balancer's pitch and pitch rate). :class:`ImuEstimator` is
the IMU encoder (the shipped pretrained weights, :data:`~sensorimotor.perception.weights.SHIPPED`,
when the window fits) and one linear head: each angle regressed as (sin, cos), so it wraps
cleanly, each rate as value / scale. Labelled windows come from any batched simulated
device that reports the true state at its newest received sample (``received()["imu_state"]``),
driven by the device's own exploring controller (:func:`simulate_windows`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from sensorimotor.perception.errors import WeightsError
from sensorimotor.perception.models import ImuEncoder
from sensorimotor.perception.weights import SHIPPED, mismatches, read_encoders

Array = np.ndarray


@dataclass(frozen=True)
class Target:
    """One estimated value: a state name of the device, an angle (rad) or a rate (rad/s, regressed / ``scale``)."""

    name: str
    kind: Literal["angle", "rate"]
    scale: float = 1.0


class ImuEstimator(nn.Module):
    """(B, 6, W) IMU window -> the targets' values (B, T), through the IMU encoder and one linear head."""

    def __init__(self, targets: Sequence[Target], window: int = 64, dim: int = 128) -> None:
        super().__init__()
        self.targets = tuple(targets)
        self.encoder = ImuEncoder(window, dim)
        self.head = nn.Linear(dim, sum(2 if t.kind == "angle" else 1 for t in self.targets))

    def forward(self, imu: torch.Tensor) -> torch.Tensor:
        """The targets' values (B, T): angles in rad (atan2 of the head's sin and cos), rates in rad/s."""
        return self.decode(self.head(self.encoder(imu)))

    def decode(self, raw: torch.Tensor) -> torch.Tensor:
        out, j = [], 0
        for t in self.targets:
            if t.kind == "angle":
                out.append(torch.atan2(raw[:, j], raw[:, j + 1]))
                j += 2
            else:
                out.append(raw[:, j] * t.scale)
                j += 1
        return torch.stack(out, dim=-1)

    def loss(self, imu: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the head's outputs against (sin, cos) of each angle and each rate / scale."""
        raw = self.head(self.encoder(imu))
        want = []
        for i, t in enumerate(self.targets):
            if t.kind == "angle":
                want += [torch.sin(labels[:, i]), torch.cos(labels[:, i])]
            else:
                want.append(labels[:, i] / t.scale)
        return torch.mean(torch.square(raw - torch.stack(want, dim=-1)))

    def load_shipped(self, path: Path = SHIPPED) -> dict[str, Any]:
        """Start the encoder from a pretrained encoders file (the shipped one by default); returns its metadata.

        Raises :class:`~sensorimotor.perception.errors.WeightsError` when the file does not fit (another
        window or width): re-pretrain for this input shape (`sim pretrain`).
        """
        blob = read_encoders(path)
        state = blob.get("imu_encoder")
        if not isinstance(state, dict):
            state, problems = {}, ["imu_encoder: missing from the file"]
        else:
            problems = mismatches(self.encoder, state, "imu_encoder")
        if problems:
            raise WeightsError(f"{path}: its IMU encoder does not fit this window ({'; '.join(problems[:3])}); "
                               "pretrain encoders for this device with `sim pretrain`")  # fmt: skip
        self.encoder.load_state_dict(state)
        meta = blob.get("meta")
        return meta if isinstance(meta, dict) else {}


@dataclass
class WindowDataset:
    """N IMU windows as the host receives them and the targets' true values at each window's newest sample."""

    imu: torch.Tensor  # (N, 6, W) float32
    labels: torch.Tensor  # (N, T) float32

    def __len__(self) -> int:
        return self.imu.shape[0]

    def split(self, val_fraction: float, seed: int) -> tuple[WindowDataset, WindowDataset]:
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_val = max(1, round(val_fraction * len(self)))
        val, train = perm[:n_val], perm[n_val:]
        return WindowDataset(self.imu[train], self.labels[train]), WindowDataset(self.imu[val], self.labels[val])


class SimulatedDevice(Protocol):
    """What :func:`simulate_windows` needs of a batched simulated device."""

    n: int

    def reset(self, idx: Array | None = None) -> None: ...
    def step(self, volts: Array) -> None: ...
    def received(self, count: int | None = None) -> dict[str, Array]: ...


def simulate_windows(
    sim: SimulatedDevice, drive: Callable[[], Array], columns: Sequence[int], n_samples: int, every: int = 5,
    restart: Callable[[], Array] | None = None, progress: bool = False,
) -> WindowDataset:  # fmt: skip
    """Step ``sim`` under ``drive()`` (commands for every env, once per control step), recording every ``every``
    steps each env's IMU window and the true state's ``columns`` at its newest sample; ``restart()`` names the envs
    to reset after a step (fallen, say). Deterministic given the sim's seed and the driver's."""
    sim.reset()
    imu, labels = [], []
    got, step = 0, 0
    bar = tqdm(total=n_samples, desc="simulate", unit="window", disable=not progress, leave=False)
    while got < n_samples:
        sim.step(drive())
        step += 1
        if step % every == 0:
            r = sim.received()
            imu.append(r["imu"])
            labels.append(r["imu_state"][:, list(columns)].astype(np.float32))
            got += sim.n
            bar.update(sim.n)
        if restart is not None:
            idx = restart()
            if len(idx):
                sim.reset(idx)
    bar.close()
    return WindowDataset(torch.from_numpy(np.concatenate(imu)[:n_samples]),
                         torch.from_numpy(np.concatenate(labels)[:n_samples]))  # fmt: skip


def finetune(
    est: ImuEstimator, train: WindowDataset, val: WindowDataset, steps: int, batch: int = 256, lr: float = 1e-3,
    seed: int = 0, progress: bool = False,
) -> list[tuple[int, float, float]]:  # fmt: skip
    """Adam on the whole estimator, cosine-decayed; returns (step, train loss, validation loss) every tenth."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(est.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history: list[tuple[int, float, float]] = []
    bar = tqdm(range(steps), desc="fine-tune", unit="step", disable=not progress, leave=False)
    for k in bar:
        est.train()
        b = torch.randint(len(train), (batch,), generator=gen)
        loss = est.loss(train.imu[b], train.labels[b])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if (k + 1) % max(1, steps // 10) == 0:
            est.eval()
            with torch.no_grad():
                v = float(est.loss(val.imu, val.labels))
            history.append((k + 1, loss.item(), v))
            bar.set_postfix(train=f"{loss.item():.4f}", val=f"{v:.4f}")
    est.eval()
    return history


@torch.no_grad()
def rms_errors(est: ImuEstimator, data: WindowDataset) -> dict[str, float]:
    """Each target's RMS error on ``data``: angles in degrees (wrapped), rates in deg/s."""
    got = est.eval()(data.imu)
    out = {}
    for i, t in enumerate(est.targets):
        err = got[:, i] - data.labels[:, i]
        if t.kind == "angle":
            err = torch.atan2(torch.sin(err), torch.cos(err))
        out[t.name] = math.degrees(float(torch.sqrt(torch.mean(torch.square(err)))))
    return out
