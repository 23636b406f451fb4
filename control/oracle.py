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
from collections.abc import Sequence
from dataclasses import dataclass

import cma
import numpy as np

from sensorimotor.control.classical import lqr_gain
from sensorimotor.control.config import ClassicalConfig
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import nominal_params, ranges
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
        self.v_max: float | np.ndarray = device.v_max
        self.cos_switch = math.cos(math.radians(cfg.switch_deg))
        self.g = gains

    @classmethod
    def stacked(cls, parts: Sequence[tuple[BatchEnergyLqr, int]]) -> BatchEnergyLqr:
        """One controller whose rows are ``rows`` of each part in turn (several devices in one batch)."""
        out = cls.__new__(cls)
        for name in ("b", "d", "a", "c", "e", "v_max"):
            setattr(out, name, np.concatenate([np.full(n, getattr(c, name), float) for c, n in parts]))
        out.k = np.concatenate([np.broadcast_to(c.k, (n, 4)) for c, n in parts])
        out.cos_switch = parts[0][0].cos_switch
        out.g = {k: np.concatenate([c.g[k] for c, _ in parts]) for k in parts[0][0].g}
        return out

    def __call__(self, state: np.ndarray) -> np.ndarray:
        theta, alpha, theta_dot, alpha_dot = state.T
        sin_a, cos_a = np.sin(alpha), np.cos(alpha)
        x = np.stack([theta, np.arctan2(sin_a, cos_a), theta_dot, alpha_dot], axis=-1)
        v_lqr = -(x * self.k).sum(axis=-1)
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


def score_batch(
    entries: Sequence[tuple[DeviceConfig, np.ndarray, int]], task: TaskConfig, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each entry (device, candidates ``x``, episodes) run as rows of ONE batched simulation.

    Returns (success rate, cost) per candidate of each entry. Cost: failures, plus how far short
    of upright the pendulum stayed (a slope for CMA-ES while nothing succeeds yet). The rows get
    their device's physics and shortest delays after the reset; devices that differ in anything
    else (rates, initial state) go to separate simulations.
    """
    groups: dict[str, list[int]] = {}
    for n, (device, _, _) in enumerate(entries):
        groups.setdefault(_sim_key(device), []).append(n)
    out: list[tuple[np.ndarray, np.ndarray]] = [(np.empty(0), np.empty(0))] * len(entries)
    for members in groups.values():
        for n, result in zip(members, _score_group([entries[n] for n in members], task, seed), strict=True):
            out[n] = result
    return out


def _sim_key(device: DeviceConfig) -> str:
    """What rows of one simulation must share: everything but the physics, delays and actuator range."""
    base = DeviceConfig()
    return repr(dataclasses.replace(device, physics=base.physics, randomization=base.randomization, v_max=base.v_max,
                                    imu=base.imu, camera=base.camera))  # fmt: skip


def _score_group(
    entries: Sequence[tuple[DeviceConfig, np.ndarray, int]], task: TaskConfig, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    sizes = [len(x) * episodes for _, x, episodes in entries]
    n = sum(sizes)
    span = with_range(entries[0][0], max(d.v_max for d, _, _ in entries))  # each row clips at its own range
    the_task = make_task(task)
    sim = the_task.sim(span, n, seed=seed, randomize=False, imu=False, camera=False)
    sim.reset()
    parts, start = [], 0
    for (device, x, episodes), size in zip(entries, sizes, strict=True):
        rows = slice(start, start + size)
        r = ranges(device, randomize=False)
        sim.buffers.params[rows] = r.nominal
        sim.buffers.delay[rows] = r.delay[:, 0]
        parts.append((BatchEnergyLqr(device, {k: np.repeat(v, episodes) for k, v in gains_of(x).items()}), size))
        start += size
    ctrl = BatchEnergyLqr.stacked(parts)
    dt = 1.0 / span.stream_rate_hz
    tracker = SuccessTracker(the_task, n, dt)
    closest = np.full(n, np.pi)
    for _ in range(round(the_task.eval_episode_s() / dt)):
        volts = ctrl(sim.state)
        sim.step(volts)
        tracker.update(sim.state, volts / ctrl.v_max)
        closest = np.minimum(closest, np.abs(np.arctan2(np.sin(sim.state[:, 1]), np.cos(sim.state[:, 1]))))
    out, start = [], 0
    for (_, x, episodes), size in zip(entries, sizes, strict=True):
        ok = tracker.success[start : start + size].reshape(len(x), episodes).mean(axis=1)
        near = (closest[start : start + size].reshape(len(x), episodes) / np.pi).mean(axis=1)
        out.append((ok, (1.0 - ok) + 0.5 * near))
        start += size
    return out


def score(
    device: DeviceConfig, task: TaskConfig, x: np.ndarray, episodes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Run each candidate (rows of ``x``) on ``episodes`` episodes at once: (success rate, cost) per candidate."""
    return score_batch([(device, x, episodes)], task, seed)[0]


class _Search:
    """CMA-ES over one device's swing-up gains, a generation at a time (so many devices share each batch)."""

    def __init__(self, device: DeviceConfig, budget: OracleBudget, seed: int) -> None:
        self.device, self.budget = device, budget
        self.start = coords_of(ClassicalConfig())
        self.es = cma.CMAEvolutionStrategy(
            self.start, 0.25, {"popsize": budget.popsize, "seed": seed + 1, "bounds": [0.0, 1.0], "verbose": -9}
        )
        self.best, self.best_cost = self.start, np.inf
        self.verified: tuple[np.ndarray, float] = (self.start, -1.0)
        self.gen, self.good = 0, False
        self.x = self.start[None]

    @property
    def searching(self) -> bool:
        return not self.good and self.gen < self.budget.generations

    def ask(self) -> np.ndarray:
        self.x = np.array(self.es.ask())
        return self.x

    def tell(self, ok: np.ndarray, cost: np.ndarray) -> np.ndarray | None:
        """The generation's scores; returns its best candidate when it succeeded in every episode (to verify)."""
        self.es.tell(list(self.x), cost.tolist())
        self.gen += 1
        i = int(np.argmin(cost))
        if cost[i] < self.best_cost:
            self.best, self.best_cost = self.x[i], float(cost[i])
        return self.x[i] if ok[i] == 1.0 else None

    def record(self, x: np.ndarray, rate: float) -> None:
        self.verified = max(self.verified, (x, rate), key=lambda c: c[1])
        self.good = rate >= GOOD_RATE


def _search_all(searches: Sequence[_Search], task: TaskConfig, seed: int) -> list[tuple[np.ndarray, float]]:
    """Run every search to its end, each generation of all of them in one batch: (best coordinates, rate) each.

    A candidate that succeeds in every episode of its generation is verified on fresh
    episodes at once; a search stops when one passes ``GOOD_RATE`` of them.
    """
    gen = 0
    while active := [s for s in searches if s.searching]:
        scores = score_batch([(s.device, s.ask(), s.budget.episodes) for s in active], task, seed + 1000 * gen)
        found = [(s, x) for s, sc in zip(active, scores, strict=True) if (x := s.tell(*sc)) is not None]
        _verify_all(found, task, seed)
        gen += 1
    _verify_all([(s, s.best) for s in searches if s.verified[1] < 0], task, seed)
    return [s.verified for s in searches]


def _verify_all(found: Sequence[tuple[_Search, np.ndarray]], task: TaskConfig, seed: int) -> None:
    """Each (search, candidate)'s success rate on fresh episodes (seeds the search never used), recorded."""
    if found:
        entries = [(s.device, x[None], s.budget.verify_episodes) for s, x in found]
        for (s, x), (ok, _) in zip(found, score_batch(entries, task, seed + 999_999), strict=True):
            s.record(x, float(ok[0]))


def tune(device: DeviceConfig, task: TaskConfig, budget: OracleBudget, seed: int) -> tuple[np.ndarray, float]:
    """CMA-ES over the swing-up gains: (best coordinates, their success rate on fresh episodes)."""
    return _search_all([_Search(device, budget, seed)], task, seed)[0]


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
    return feasibility_many([device], task, budget, seed)[0]


def feasibility_many(
    devices: Sequence[DeviceConfig], task: TaskConfig, budget: OracleBudget | None = None, seed: int = 0
) -> list[Feasibility]:
    """:func:`feasibility` of each device, the searches of all of them advancing in the same batches.

    Device ``i`` searches with seed ``seed + i``; the devices that fail climb the ladder
    together, one rung per round.
    """
    budget = budget or OracleBudget()
    first = _search_all([_Search(d, budget, seed + i) for i, d in enumerate(devices)], task, seed)
    needed: list[float | None] = [d.v_max if r >= PASS_RATE else None for d, (_, r) in zip(devices, first, strict=True)]
    ladder = {i: [v for v in V_LADDER if v > d.v_max] for i, d in enumerate(devices) if needed[i] is None}
    while climbing := [i for i, rungs in ladder.items() if rungs]:
        rung = [ladder[i].pop(0) for i in climbing]
        searches = [_Search(with_range(devices[i], v), budget, seed + i) for i, v in zip(climbing, rung, strict=True)]
        for i, v, (_, r) in zip(climbing, rung, _search_all(searches, task, seed), strict=True):
            if r >= PASS_RATE:
                needed[i], ladder[i] = v, []
    return [
        Feasibility(r >= PASS_RATE, r, d.v_max, needed[i], {k: float(v[0]) for k, v in gains_of(x[None]).items()})
        for i, (d, (x, r)) in enumerate(zip(devices, first, strict=True))
    ]
