"""The feasibility oracle: can *any* controller do the task on this device, and at what actuator range?

A held-out device on which no controller succeeds says nothing about the policy, so the
zoo does not count it (docs/sim-to-real.md). The oracle is the classical energy swing-up +
LQR (:mod:`sensorimotor.control.classical`) on the **true state** with the LQR computed
from the device's **true parameters**, its swing-up gains tuned for that device by CMA-ES
(the ``cma`` package): each generation's candidates run as one batch of episodes on the
compiled simulator. A device passes when the tuned controller succeeds in at least
``PASS_RATE`` of fresh episodes. When it fails at the device's ``v_max`` the oracle tries
larger actuator ranges (the amplifier's saturation raised with them) and reports the
first that works: the range the device would need.

It is a lower bound on feasibility: a better controller might do with less.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import cma
import numpy as np

from sensorimotor.control.classical import lqr_gain
from sensorimotor.control.config import ClassicalConfig
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import nominal_params
from sensorimotor.sim.task import SuccessTracker, TaskConfig, make_task

# Tuned gains and their search bounds; CMA-ES works in [0, 1] per gain (log scale where `log`).
TUNED = ("energy_gain", "energy_target", "arm_kp", "arm_kd", "phase_rate")
BOUNDS = {"energy_gain": (1.0, 100.0), "energy_target": (-0.2, 0.8), "arm_kp": (0.2, 30.0),
          "arm_kd": (0.02, 3.0), "phase_rate": (0.1, 10.0)}  # fmt: skip
LOG = {"energy_gain", "arm_kp", "arm_kd", "phase_rate"}
PASS_RATE = 0.5  # of the fresh verification episodes: the device can be done
GOOD_RATE = 0.9  # the search stops at a candidate this good on fresh episodes
V_LADDER = (7.5, 10.0, 15.0, 24.0)  # actuator ranges (V) tried when the device's own fails


@dataclass(frozen=True)
class OracleBudget:
    """How hard the oracle tries: CMA-ES population and generations, episodes per candidate and to verify."""

    popsize: int = 12
    generations: int = 12
    episodes: int = 6
    verify_episodes: int = 16


@dataclass
class Feasibility:
    """The oracle's verdict on one device."""

    feasible: bool  # at the device's own v_max
    success_rate: float  # of the tuned controller on fresh episodes at the device's v_max
    v_max: float  # the device's actuator range (V)
    needed_v: float | None  # the smallest range on the ladder that worked (None: none did)
    gains: dict[str, float]  # the tuned swing-up gains at the device's v_max

    def verdict(self) -> str:
        """One line for a person."""
        if self.feasible:
            return f"feasible at +-{self.v_max:g} V (oracle {self.success_rate:.0%})"
        need = f"needs about +-{self.needed_v:g} V" if self.needed_v else f"not even at +-{V_LADDER[-1]:g} V"
        return f"cannot be done at +-{self.v_max:g} V (oracle {self.success_rate:.0%}); {need}"


class BatchEnergyLqr:
    """The energy swing-up + LQR of :class:`~sensorimotor.control.classical.EnergyLqrController` in numpy,
    with its swing-up gains per env: true states (N, 4) -> volts (N,)."""

    def __init__(self, device: DeviceConfig, gains: dict[str, np.ndarray], cfg: ClassicalConfig | None = None) -> None:
        cfg = cfg or ClassicalConfig()
        p = nominal_params(device)
        half = p.Lp / 2.0
        self.b, self.d = p.Jp + p.mp * half**2, p.mp * p.g * half
        self.a, self.c, self.e = p.Jr + p.mp * p.Lr**2, p.mp * p.Lr * half, p.mp * half**2
        self.k = lqr_gain(device, cfg)[0]  # (4,)
        self.v_max, self.cos_switch = device.v_max, math.cos(math.radians(cfg.switch_deg))
        self.g = gains

    def __call__(self, state: np.ndarray) -> np.ndarray:
        theta, alpha, theta_dot, alpha_dot = state.T
        sin_a, cos_a = np.sin(alpha), np.cos(alpha)
        x = np.stack([theta, np.arctan2(sin_a, cos_a), theta_dot, alpha_dot], axis=-1)
        v_lqr = -(x @ self.k)
        energy = 0.5 * self.b * alpha_dot**2 + self.d * (cos_a - 1.0)
        energy += 0.5 * (self.a + self.e * sin_a**2) * theta_dot**2 + self.c * cos_a * theta_dot * alpha_dot
        g = self.g
        phase = np.clip(alpha_dot * cos_a / g["phase_rate"], -1.0, 1.0)
        missing = (energy - g["energy_target"] * 2.0 * self.d) / (2.0 * self.d)
        pump = np.clip(g["energy_gain"] * self.v_max * missing * phase, -self.v_max, self.v_max)
        v_swing = pump - g["arm_kp"] * theta - g["arm_kd"] * theta_dot
        return np.clip(np.where(cos_a > self.cos_switch, v_lqr, v_swing), -self.v_max, self.v_max)


def gains_of(x: np.ndarray) -> dict[str, np.ndarray]:
    """CMA-ES coordinates (P, len(TUNED)) in [0, 1] -> gains, each (P,)."""
    out = {}
    for j, name in enumerate(TUNED):
        lo, hi = BOUNDS[name]
        u = np.clip(x[:, j], 0.0, 1.0)
        out[name] = lo * (hi / lo) ** u if name in LOG else lo + (hi - lo) * u
    return out


def coords_of(cfg: ClassicalConfig) -> np.ndarray:
    """The classical config's gains as CMA-ES coordinates (the search starts there)."""
    out = []
    for name in TUNED:
        lo, hi = BOUNDS[name]
        v = float(np.clip(getattr(cfg, name), lo, hi))
        out.append(math.log(v / lo) / math.log(hi / lo) if name in LOG else (v - lo) / (hi - lo))
    return np.array(out)


def score(
    device: DeviceConfig, task: TaskConfig, x: np.ndarray, episodes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Run each candidate (rows of ``x``) on ``episodes`` episodes at once: (success rate, cost) per candidate.

    Cost: failures, plus how far short of upright the pendulum stayed (a slope for CMA-ES
    while nothing succeeds yet).
    """
    p = len(x)
    gains = {k: np.repeat(v, episodes) for k, v in gains_of(x).items()}
    ctrl = BatchEnergyLqr(device, gains)
    the_task = make_task(task)
    sim = the_task.sim(device, p * episodes, seed=seed, randomize=False, imu=False, camera=False)
    sim.reset()
    dt = 1.0 / device.stream_rate_hz
    tracker = SuccessTracker(the_task, p * episodes, dt)
    closest = np.full(p * episodes, np.pi)
    for _ in range(round(the_task.eval_episode_s() / dt)):
        volts = ctrl(sim.state)
        sim.step(volts)
        tracker.update(sim.state, volts / device.v_max)
        closest = np.minimum(closest, np.abs(np.arctan2(np.sin(sim.state[:, 1]), np.cos(sim.state[:, 1]))))
    ok = tracker.success.reshape(p, episodes).mean(axis=1)
    return ok, (1.0 - ok) + 0.5 * (closest.reshape(p, episodes) / np.pi).mean(axis=1)


def tune(device: DeviceConfig, task: TaskConfig, budget: OracleBudget, seed: int) -> tuple[np.ndarray, float]:
    """CMA-ES over the swing-up gains: (best coordinates, their success rate on fresh episodes).

    A candidate that succeeds in every episode of its generation is verified on fresh
    episodes at once; the search stops when one passes ``GOOD_RATE`` of them.
    """
    start = coords_of(ClassicalConfig())
    es = cma.CMAEvolutionStrategy(
        start, 0.25, {"popsize": budget.popsize, "seed": seed + 1, "bounds": [0.0, 1.0], "verbose": -9}
    )
    best, best_cost, verified = start, np.inf, (start, -1.0)
    for gen in range(budget.generations):
        x = np.array(es.ask())
        ok, cost = score(device, task, x, budget.episodes, seed + 1000 * gen)
        es.tell(list(x), cost.tolist())
        i = int(np.argmin(cost))
        if cost[i] < best_cost:
            best, best_cost = x[i], float(cost[i])
        if ok[i] == 1.0:
            rate = verify(device, task, x[i], budget, seed)
            verified = max(verified, (x[i], rate), key=lambda c: c[1])
            if rate >= GOOD_RATE:
                break
    if verified[1] < 0:
        verified = (best, verify(device, task, best, budget, seed))
    return verified


def verify(device: DeviceConfig, task: TaskConfig, x: np.ndarray, budget: OracleBudget, seed: int) -> float:
    """Success rate of one candidate on fresh episodes (seeds the search never used)."""
    return float(score(device, task, x[None], budget.verify_episodes, seed + 999_999)[0][0])


def with_range(device: DeviceConfig, v: float) -> DeviceConfig:
    """The device with actuator range +-v (the amplifier's saturation at least as high)."""
    physics = dataclasses.replace(device.physics, v_sat=max(device.physics.v_sat, v))
    return dataclasses.replace(device, v_max=v, physics=physics)


def feasibility(
    device: DeviceConfig, task: TaskConfig, budget: OracleBudget | None = None, seed: int = 0
) -> Feasibility:
    """Tune the oracle on ``device``; when it fails, climb the actuator-range ladder until it succeeds."""
    budget = budget or OracleBudget()
    x, rate = tune(device, task, budget, seed)
    gains = {k: float(v[0]) for k, v in gains_of(x[None]).items()}
    feasible = rate >= PASS_RATE
    needed = device.v_max if feasible else None
    if not feasible:
        for v in (v for v in V_LADDER if v > device.v_max):
            _, r = tune(with_range(device, v), task, budget, seed)
            if r >= PASS_RATE:
                needed = v
                break
    return Feasibility(feasible, rate, device.v_max, needed, gains)
