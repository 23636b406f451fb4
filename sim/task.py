"""Tasks: what an episode starts from, how it is rewarded, when it ends and when it succeeded.

A :class:`Task` is the one object every scorer uses: the Gymnasium env, the vector envs,
the training env with perception in the loop, ``sim eval`` and the twin's verdict. Pick one
with ``task.name`` in the config: ``balance`` (start near upright, keep it there) or
``swingup`` (start hanging, any arm angle within limits; swing up and balance). The arm's
cable limit ends every task's episode as a failure. docs/tasks.md explains each reward.

Everything here is numpy on batched states ``(..., 4)`` = [theta, alpha, theta_dot,
alpha_dot] (alpha = 0 upright) and normalized actions in [-1, 1]; no gymnasium, so the twin
(on the light runtime path) shares it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sensorimotor.configs.schema import Section, doc
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.furuta import wrap_angle

Array = np.ndarray
TASK_NAMES = ("balance", "swingup")


@dataclass(frozen=True)
class TaskConfig(Section):
    """The task: balance from near upright, or swing up from hanging and balance."""

    name: Literal["balance", "swingup"] = doc(
        "Which task: balance (start within device.initial.angle_deg of upright) or swingup (start hanging).",
        "balance",
    )
    episode_s: float = doc("Training episode length (s).", 5.0, gt=0, le=3600)
    upright_deg: float = doc("|alpha| below this counts as upright (success and twin verdict).", 20.0, gt=0, le=180)
    fall_deg: float = doc("balance: episodes end when |alpha| exceeds this (>= upright_deg).", 30.0, gt=0, le=180)
    arm_limit_rad: float = doc(
        "The arm's cable limit: |theta| past it ends the episode as a failure, in every task.", 2.5, gt=0, le=10
    )
    reach_s: float = doc("swingup success: upright within this long after the start (s).", 10.0, ge=0, le=3600)
    hold_s: float = doc("swingup success: then held upright this long without a break (s).", 5.0, gt=0, le=3600)
    hang_deg: float = doc("swingup: the pendulum starts within +-this of hanging.", 5.0, ge=0, le=90)
    start_arm_rad: float = doc(
        "swingup: the arm starts anywhere within +-this (< arm_limit_rad, leaving room to swing).", 1.0, ge=0, le=10
    )
    arm_weight: float = doc("Reward penalty weight on theta^2 (rad^2); swingup: only as far as it is up.", 0.5, ge=0)
    arm_upright_power: float = doc(
        "swingup: the arm and rate penalties weigh u**this (u: 0 hanging, 1 upright); above 1 they fade "
        "faster away from upright, leaving the arm free to swing wide while pumping a heavy pendulum.",
        1.0,
        ge=1,
        le=16,
    )
    action_weight: float = doc("Reward penalty weight on (V / v_max)^2.", 0.05, ge=0)
    limit_penalty: float = doc("Reward on the step the arm passes its cable limit (a penalty, <= 0).", -20.0, le=0)

    def check(self) -> None:
        if self.fall_deg < self.upright_deg:
            raise ValueError(
                f"fall_deg: {self.fall_deg} is below upright_deg {self.upright_deg} (allowed: >= upright_deg)"
            )
        if self.start_arm_rad >= self.arm_limit_rad:
            raise ValueError(
                f"start_arm_rad: {self.start_arm_rad} is not inside arm_limit_rad {self.arm_limit_rad} "
                "(allowed: < arm_limit_rad)"
            )


class Task:
    """Reset distribution, reward, termination and success of one task (subclasses fill them in)."""

    name: str = ""

    def __init__(self, cfg: TaskConfig) -> None:
        self.cfg = cfg

    # ------------------------------------------------------------------ episodes

    def initial_ranges(self, device: DeviceConfig) -> Array:
        """(4, 2) uniform [low, high] of [theta, alpha, theta_dot, alpha_dot] at release."""
        raise NotImplementedError

    def sim(
        self, device: DeviceConfig, n: int = 1, seed: int = 0, randomize: bool = True, **sensors: bool
    ) -> FurutaSim:
        """N simulated devices whose resets start this task's episodes (``sensors``: imu=, camera=)."""
        return FurutaSim(device, n, seed=seed, randomize=randomize, initial=self.initial_ranges(device), **sensors)

    def reward(self, state: Array, action: Array) -> Array:
        """Per-step reward of the state after the step and the normalized action that led there."""
        raise NotImplementedError

    def failed(self, state: Array) -> Array:
        """True where the episode ends as a failure now (the arm past its cable limit in every task)."""
        return self.past_limit(state)

    def upright(self, state: Array) -> Array:
        """True where |alpha| < upright_deg."""
        return np.abs(wrap_angle(state[..., 1])) < np.deg2rad(self.cfg.upright_deg)

    # ------------------------------------------------------------------ success

    def success_window_s(self) -> tuple[float, float | None]:
        """(reach_s, hold_s): success = upright by ``reach_s`` and held ``hold_s`` without a break.

        ``hold_s`` None: held to the end of the episode, however long it is.
        """
        raise NotImplementedError

    def eval_episode_s(self) -> float:
        """How long an evaluation episode lasts: long enough to decide success."""
        raise NotImplementedError

    def past_limit(self, state: Array) -> Array:
        """True where the arm is past its cable limit."""
        return np.abs(state[..., 0]) > self.cfg.arm_limit_rad


class Balance(Task):
    """Start near upright (``device.initial``); stay up, arm centred. Success: upright the whole episode."""

    name = "balance"

    def initial_ranges(self, device: DeviceConfig) -> Array:
        ini = device.initial
        a = np.deg2rad(ini.angle_deg)
        return np.array([[-ini.arm_rad, ini.arm_rad], [-a, a], [0.0, 0.0], [-ini.rate_rad_s, ini.rate_rad_s]])

    def reward(self, state: Array, action: Array) -> Array:
        """``1 - 5 (1 - cos alpha) - arm theta^2 - 0.002 alpha_dot^2 - act a^2``; ``limit_penalty`` past the cable limit."""
        alpha = wrap_angle(state[..., 1])
        r = (
            1.0
            - 5.0 * (1.0 - np.cos(alpha))
            - self.cfg.arm_weight * np.square(state[..., 0])
            - 0.002 * state[..., 3] ** 2
            - self.cfg.action_weight * np.square(action)
        )
        return np.where(self.past_limit(state), self.cfg.limit_penalty, r)

    def failed(self, state: Array) -> Array:
        """The arm past its limit, or the pendulum past ``fall_deg``."""
        fell = np.abs(wrap_angle(state[..., 1])) > np.deg2rad(self.cfg.fall_deg)
        return super().failed(state) | fell

    def success_window_s(self) -> tuple[float, float | None]:
        return 0.0, None  # up from the first step to the last

    def eval_episode_s(self) -> float:
        return 10.0


class SwingUp(Task):
    """Start hanging, arm anywhere within ``start_arm_rad``; swing up, then balance with the arm centred.

    Success: upright within ``reach_s`` and held ``hold_s``, the arm never past its limit.
    """

    name = "swingup"

    def initial_ranges(self, device: DeviceConfig) -> Array:
        h, arm = np.deg2rad(self.cfg.hang_deg), self.cfg.start_arm_rad
        return np.array([[-arm, arm], [np.pi - h, np.pi + h], [0.0, 0.0], [-0.1, 0.1]])

    def reward(self, state: Array, action: Array) -> Array:
        """``u - u^p (arm theta^2 + 0.001 alpha_dot^2) - act a^2`` with ``u = (1 + cos alpha) / 2``.

        ``u`` rises smoothly from 0 hanging to 1 upright, so pumping energy pays from the
        first swing; the arm and rate terms are weighted by ``u^p`` (``arm_upright_power``),
        so they ask for a centred arm and a still pendulum at the top and cost little while
        hanging; with ``p`` = 1 a wide arm still costs more than the height earns halfway up
        (docs/tasks.md). Passing the cable limit gives ``limit_penalty`` and ends the episode.
        """
        u = 0.5 * (1.0 + np.cos(state[..., 1]))
        arm, rate = self.cfg.arm_weight * np.square(state[..., 0]), 0.001 * np.square(state[..., 3])
        if self.cfg.arm_upright_power == 1.0:
            r = u * (1.0 - arm - rate)  # the published runs' exact arithmetic (seeded results stay to the digit)
        else:
            r = u - np.power(u, self.cfg.arm_upright_power) * (arm + rate)
        r = r - self.cfg.action_weight * np.square(action)
        return np.where(self.past_limit(state), self.cfg.limit_penalty, r)

    def success_window_s(self) -> tuple[float, float | None]:
        return self.cfg.reach_s, self.cfg.hold_s

    def eval_episode_s(self) -> float:
        return self.cfg.reach_s + self.cfg.hold_s


def make_task(cfg: TaskConfig) -> Task:
    """The task ``cfg.name`` names (the config's validation already refused other names)."""
    return {"balance": Balance, "swingup": SwingUp}[cfg.name](cfg)


@dataclass
class SuccessTracker:
    """Scores N episodes step by step with a task's success criterion.

    Success: a run of upright steps of at least ``hold`` steps that began by ``reach`` steps
    after the start, with the arm never past its limit (nor, for balance, the pendulum past
    ``fall_deg``). Also: when that run began (time to upright), and per-step squares of
    alpha and theta while balancing and of the action, for RMS figures.
    """

    task: Task
    n: int
    dt: float  # time per update (s)

    def __post_init__(self) -> None:
        reach_s, hold_s = self.task.success_window_s()
        self.reach = round(reach_s / self.dt)
        self.hold = None if hold_s is None else round(hold_s / self.dt)
        self.step = 0
        self.run = np.zeros(self.n, np.int64)  # consecutive upright steps so far
        self.run_start = np.zeros(self.n, np.int64)
        self.failed = np.zeros(self.n, bool)
        self.failed_arm = np.zeros(self.n, bool)  # failed by the cable limit
        self.held = np.zeros(self.n, bool)  # reached and held (before any failure)
        self.time_to_upright = np.full(self.n, np.nan)  # start of the successful run (s)
        self.sq_alpha = np.zeros(self.n)  # sums while balancing (after the successful run began)
        self.sq_theta = np.zeros(self.n)
        self.balancing_steps = np.zeros(self.n, np.int64)
        self.sq_action = np.zeros(self.n)

    def update(self, state: Array, action: Array) -> None:
        """After each step: the state reached and the normalized action applied."""
        self.step += 1
        self.failed |= self.task.failed(state)
        self.failed_arm |= self.task.past_limit(state)
        up = self.task.upright(state) & ~self.failed
        self.run_start = np.where(up & (self.run == 0), self.step - 1, self.run_start)
        self.run = np.where(up, self.run + 1, 0)
        if self.hold is None:  # upright since the start, to now
            self.held = ~self.failed & (self.run == self.step)
            self.time_to_upright = np.where(self.held, 0.0, np.nan)
        else:
            newly = ~self.held & ~self.failed & (self.run >= self.hold) & (self.run_start <= self.reach)
            self.time_to_upright = np.where(newly, self.run_start * self.dt, self.time_to_upright)
            self.held |= newly
        balancing = ~np.isnan(self.time_to_upright) & ~self.failed
        self.sq_alpha += np.where(balancing, np.square(wrap_angle(state[:, 1])), 0.0)
        self.sq_theta += np.where(balancing, np.square(state[:, 0]), 0.0)
        self.balancing_steps += balancing
        self.sq_action += np.square(action)

    @property
    def success(self) -> Array:
        """Per-episode success so far (a later failure undoes it: the arm must stay within its limit)."""
        return self.held & ~self.failed
