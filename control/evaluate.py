"""Evaluate a sensors-to-volts chain on the batched simulator (one episode per env, in parallel).

Success = the pendulum stays within ``upright_deg`` of upright for the whole episode,
started within ``initial.angle_deg`` with physics randomized as in training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.furuta import wrap_angle
from sensorimotor.sim.task import TaskConfig, upright

Policy = Callable[[dict[str, np.ndarray]], np.ndarray]  # raw batch -> volts (N,)


@dataclass
class EvalResult:
    success_rate: float
    upright_fraction: float  # mean fraction of the episode spent upright
    mean_abs_alpha_deg: float  # while upright
    mean_abs_theta_rad: float
    episodes: int
    samples: dict[str, np.ndarray]  # raw sensor inputs collected along the way (for parity)

    def as_dict(self) -> dict[str, float]:
        return {k: v for k, v in self.__dict__.items() if k != "samples"}


def torch_policy(chain: torch.nn.Module) -> Policy:
    """Wrap a PolicyChain (raw tensors -> volts, estimates) as a numpy batch policy."""

    @torch.no_grad()
    def act(raw: dict[str, np.ndarray]) -> np.ndarray:
        volts, _ = chain(*(torch.from_numpy(raw[k]) for k in ("imu", "encoder", "image")))
        return volts.numpy()[:, 0]

    return act


def evaluate(
    policy: Policy, device: DeviceConfig, task: TaskConfig, episodes: int, episode_s: float, seed: int,
    collect: int = 0,
) -> EvalResult:  # fmt: skip
    """Run ``episodes`` parallel episodes; optionally collect ``collect`` raw inputs for parity checks."""
    sim = FurutaSim(device, episodes, seed=seed)
    sim.reset()
    steps = round(episode_s * device.stream_rate_hz)
    ok = np.ones(episodes, bool)
    up_steps = np.zeros(episodes)
    abs_alpha, abs_theta = [], []
    rng = np.random.default_rng(seed)
    samples: list[dict[str, np.ndarray]] = []
    per_step = max(1, int(np.ceil(collect / steps))) if collect else 0
    for _ in range(steps):
        raw = sim.observation()
        if per_step:
            pick = rng.choice(episodes, size=min(per_step, episodes), replace=False)
            samples.append({k: v[pick] for k, v in raw.items()})
        sim.step(policy(raw))
        is_up = upright(sim.state, task)
        ok &= is_up
        up_steps += ok
        abs_alpha.append(np.abs(wrap_angle(sim.state[ok, 1])))
        abs_theta.append(np.abs(sim.state[ok, 0]))
    merged = {k: np.concatenate([s[k] for s in samples])[:collect] for k in samples[0]} if samples else {}
    alpha = np.concatenate(abs_alpha)
    theta = np.concatenate(abs_theta)
    return EvalResult(
        success_rate=float(ok.mean()),
        upright_fraction=float(up_steps.mean() / steps),
        mean_abs_alpha_deg=float(np.rad2deg(alpha.mean())) if alpha.size else float("nan"),
        mean_abs_theta_rad=float(theta.mean()) if theta.size else float("nan"),
        episodes=episodes,
        samples=merged,
    )
