"""A device's policy observation from its raw sensors: IMU targets, the newest IMU sample, each encoder's angle and rate.

The observation model of a device described by its spec and its IMU targets (the balancer's
pitch and pitch rate), with nothing of any one device in it: the IMU window goes through the
device's :class:`~sensorimotor.perception.imu_targets.ImuEstimator`; the newest IMU sample
goes to the policy as it is too (a gyro reads a rate far more precisely than a learned head
estimates it from the window: docs/results.md, the balancer); each encoder's newest
count gives its angle (rad), the least-squares slope of its last ``rate_samples`` counts its
rate (rad/s), a fixed linear filter so the exported graph stays pure. An unbounded encoder (a
wheel) reads the angle it has turned since the device started counting.

Observation layout (:meth:`DeviceObservation.names`)::

    <target>...                  the estimator's values, in the device's target order
    <channel>...                 the newest IMU sample, one value per channel (SI units)
    <encoder>_angle...           rad, one per encoder, in the spec's order
    <encoder>_rate...            rad/s
    <derived>...                 the device's linear combinations of the above (the balancer's
                                 distance travelled, m: the wheels' mean angle plus the pitch
                                 times the wheel radius), so the policy need not learn them
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from sensorimotor.perception.imu_targets import ImuEstimator
from sensorimotor.perception.models import slope_weights


class DeviceObservation(nn.Module):
    """(imu (B, C, W), encoder (B, E, W)) -> observation (B, T + C + 2E)."""

    slope: torch.Tensor  # (rate_samples,) buffer: slope weights in rad/s per count at cpr = 1 rev/count
    rad_per_count: torch.Tensor  # (1, E) buffer
    mix: torch.Tensor  # (D, F) buffer: the derived values from the base observation

    def __init__(
        self, estimator: ImuEstimator, channels: Sequence[str], encoders: Sequence[str], cpr: Sequence[int],
        imu_rate_hz: float, rate_samples: int = 16, derived: Sequence[tuple[str, Mapping[str, float]]] = (),
    ) -> None:  # fmt: skip
        """``derived``: (name, {base observation name: coefficient}) of each value appended to the observation."""
        super().__init__()
        if len(encoders) != len(cpr):
            raise ValueError(f"{len(encoders)} encoder names for {len(cpr)} counts per revolution")
        self.estimator = estimator
        self.channels = tuple(channels)
        self.encoders = tuple(encoders)
        self.rate_samples = rate_samples
        self.register_buffer("rad_per_count", torch.tensor([[2.0 * math.pi / c for c in cpr]]))
        self.register_buffer("slope", slope_weights(rate_samples) * imu_rate_hz)
        self.derived = tuple(name for name, _ in derived)
        base = self.base_names
        mix = torch.zeros(len(base), len(derived), dtype=torch.float64)
        for j, (name, terms) in enumerate(derived):
            for term, coeff in terms.items():
                if term not in base:
                    raise ValueError(f"derived observation {name!r}: no {term!r} to take (known: {', '.join(base)})")
                mix[base.index(term), j] = coeff
        self.register_buffer("mix", mix.float())

    @property
    def base_names(self) -> tuple[str, ...]:
        targets = tuple(t.name for t in self.estimator.targets)
        encoders = tuple(f"{e}_angle" for e in self.encoders) + tuple(f"{e}_rate" for e in self.encoders)
        return targets + self.channels + encoders

    @property
    def names(self) -> tuple[str, ...]:
        return self.base_names + self.derived

    def forward(self, imu: torch.Tensor, encoder: torch.Tensor) -> torch.Tensor:
        est = self.estimator(imu)
        newest = encoder[:, :, -1]
        angle = newest * self.rad_per_count
        # relative to the newest count: the weights sum to zero, and float32 keeps its digits on large counts
        recent = encoder[:, :, -self.rate_samples :] - newest[:, :, None]
        rate = (recent * self.slope).sum(-1) * self.rad_per_count
        base = torch.cat([est, imu[:, :, -1], angle, rate], dim=-1)
        if not self.derived:
            return base
        return torch.cat([base, base @ self.mix], dim=-1)
