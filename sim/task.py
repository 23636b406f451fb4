"""The balancing task as pure functions: reward, termination, success.

Shared by the Gymnasium env, the vectorized training env and evaluation, so every
place that scores a run scores it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorimotor.hardware.config import Section, doc
from sensorimotor.sim.furuta import wrap_angle

Array = np.ndarray


@dataclass(frozen=True)
class TaskConfig(Section):
    """Balance upright, keep the arm near centre."""

    episode_s: float = doc("Episode length (s).", 5.0, gt=0, le=3600)
    upright_deg: float = doc(
        "|alpha| below this counts as upright; an episode succeeds if it never leaves.", 20.0, gt=0, le=180
    )
    fall_deg: float = doc("Training episodes end when |alpha| exceeds this (>= upright_deg).", 30.0, gt=0, le=180)
    arm_limit_rad: float = doc("Episodes end when |theta| exceeds this (cable limits).", 2.5, gt=0)
    arm_weight: float = doc("Reward penalty weight on theta^2.", 0.5, ge=0)
    action_weight: float = doc("Reward penalty weight on (V / v_max)^2.", 0.05, ge=0)

    def check(self) -> None:
        if self.fall_deg < self.upright_deg:
            raise ValueError(
                f"fall_deg: {self.fall_deg} is below upright_deg {self.upright_deg} (allowed: >= upright_deg)"
            )


def balance_reward(state: Array, action: Array, cfg: TaskConfig) -> Array:
    """Per-step reward in [-inf, 1]: 1 when upright, centred and still; penalties grow quadratically.

    ``action`` is the normalized command in [-1, 1].
    """
    alpha = wrap_angle(state[..., 1])
    return (
        1.0
        - 5.0 * (1.0 - np.cos(alpha))
        - cfg.arm_weight * state[..., 0] ** 2
        - 0.002 * state[..., 3] ** 2
        - cfg.action_weight * np.square(action)
    )


def fallen(state: Array, cfg: TaskConfig) -> Array:
    """True where the pendulum fell past ``fall_deg`` or the arm passed its limit."""
    alpha = np.abs(wrap_angle(state[..., 1]))
    return (alpha > np.deg2rad(cfg.fall_deg)) | (np.abs(state[..., 0]) > cfg.arm_limit_rad)


def upright(state: Array, cfg: TaskConfig) -> Array:
    """True where |alpha| < upright_deg."""
    return np.abs(wrap_angle(state[..., 1])) < np.deg2rad(cfg.upright_deg)
