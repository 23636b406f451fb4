"""The balancer's task: stand up and hold your place, as pure functions of batched states.

Episodes start on the wheels at the origin, tilted within ``device.initial`` (the robot is
released from an operator's hand); the robot must stay upright and come back to where it
started. Reward, failure and success read the balancer's state (:data:`STATE_NAMES`:
x, y, pitch, yaw, speed, pitch_rate, yaw_rate) and the normalized commands (N, 2) in
[-1, 1]; numpy only, so the twin (on the light runtime path) shares them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sensorimotor.configs.schema import Section, doc

Array = np.ndarray

X, Y, PITCH, YAW, SPEED, PITCH_RATE, YAW_RATE = range(7)


@dataclass(frozen=True)
class BalancerTaskConfig(Section):
    """Balance in place: stay upright, come back to the start and stay there."""

    episode_s: float = doc("Episode length (s).", 5.0, gt=0, le=3600)
    upright_deg: float = doc("|pitch| below this counts as upright (success: upright the whole episode).", 15.0,
                             gt=0, le=90)  # fmt: skip
    fall_deg: float = doc("Episodes end as a failure when |pitch| exceeds this (>= upright_deg).", 30.0, gt=0, le=90)
    hold_m: float = doc("Success: the axle within this distance of its start when the episode ends (m).", 0.1, gt=0)
    position_weight: float = doc("Reward penalty weight on the squared distance from the start (1/m^2).", 2.0, ge=0)
    speed_weight: float = doc("Reward penalty weight on the squared forward speed (s^2/m^2).", 0.5, ge=0)
    yaw_weight: float = doc("Reward penalty weight on the squared yaw rate (s^2/rad^2).", 0.05, ge=0)
    action_weight: float = doc("Reward penalty weight on the mean squared normalized command.", 0.05, ge=0)
    fall_penalty: float = doc("Reward on the step the robot falls (a penalty, <= 0).", -10.0, le=0)

    def check(self) -> None:
        if self.fall_deg < self.upright_deg:
            raise ValueError(
                f"fall_deg: {self.fall_deg} is below upright_deg {self.upright_deg} (allowed: >= upright_deg)"
            )


class BalanceInPlace:
    """Reward, failure and success of balancing in place."""

    name = "balance"

    def __init__(self, cfg: BalancerTaskConfig) -> None:
        self.cfg = cfg

    def distance(self, state: Array) -> Array:
        """How far the axle is from where the episode started (the origin), m."""
        return np.hypot(state[..., X], state[..., Y])

    def reward(self, state: Array, action: Array) -> Array:
        """``1 - 5 (1 - cos pitch) - pos d^2 - speed v^2 - yaw r^2 - 0.01 pitch_rate^2 - act mean(a^2)``;
        ``fall_penalty`` on the step it falls."""
        c = self.cfg
        r = (
            1.0
            - 5.0 * (1.0 - np.cos(state[..., PITCH]))
            - c.position_weight * np.square(self.distance(state))
            - c.speed_weight * np.square(state[..., SPEED])
            - c.yaw_weight * np.square(state[..., YAW_RATE])
            - 0.01 * np.square(state[..., PITCH_RATE])
            - c.action_weight * np.mean(np.square(action), axis=-1)
        )
        return np.where(self.failed(state), c.fall_penalty, r)

    def failed(self, state: Array) -> Array:
        """True where the body is past ``fall_deg``: it is falling (or lying on the floor)."""
        return np.abs(state[..., PITCH]) > np.deg2rad(self.cfg.fall_deg)

    def upright(self, state: Array) -> Array:
        return np.abs(state[..., PITCH]) < np.deg2rad(self.cfg.upright_deg)

    def success(self, upright_throughout: Array, final_state: Array) -> Array:
        """Upright at every step and, at the end, within ``hold_m`` of the start."""
        return upright_throughout & (self.distance(final_state) < self.cfg.hold_m)

    def measures(self, state: Array) -> dict[str, Array]:
        """What the twin reports of a run beside its verdict, by name with the unit (larger is worse)."""
        return {"|pitch| (deg)": np.rad2deg(np.abs(state[..., PITCH])), "distance from home (m)": self.distance(state)}

    def why_failed(self, upright_throughout: bool, final_state: Array) -> str:
        """The twin's verdict on a failed run, in words."""
        if not upright_throughout:
            return f"left upright (|pitch| > {self.cfg.upright_deg:g} deg)"
        return f"ended {float(self.distance(final_state)):.2f} m from its start (allowed {self.cfg.hold_m:g} m)"
