"""A controller scored on the held-out zoo (:mod:`sensorimotor.sim.zoo`): the gap between sim and a real unit.

Each zoo device runs ``episodes`` episodes of the run's task with its own physics, delays
and sensor conditions fixed (no randomization on top). A device counts only when it is
feasible: where the controller succeeds that is shown; where it fails, the oracle
(:mod:`sensorimotor.control.oracle`) decides, so an impossible device is reported with the
actuator range it would need instead of being held against the policy. A device whose
values all lie inside the run's training ranges is not held out from it: reported, not counted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from tqdm import tqdm

from sensorimotor.control.config import ExperimentConfig
from sensorimotor.control.evaluate import Policy, evaluate
from sensorimotor.control.oracle import OracleBudget, feasibility
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.zoo import ZooDevice, devices, load_zoo

PASS_RATE = 0.8  # a device is passed when the controller succeeds in this share of its episodes


@dataclass
class DeviceScore:
    """One zoo device: the controller's success there and whether any controller could succeed."""

    name: str
    success_rate: float
    episodes: int
    passed: bool
    feasible: bool
    verdict: str  # the oracle's line, or "the controller succeeds" when it was not needed
    outside: int  # values outside this run's training ranges (0: not held out, not counted)


def score_device(policy: Policy, cfg: ExperimentConfig, device: DeviceConfig, episodes: int, seed: int) -> float:
    """Success rate of ``policy`` on one fixed device (``evaluation.episode_s``, else the task's evaluation length)."""
    ev = evaluate(policy, device, cfg.task, episodes, cfg.evaluation.episode_s or None, seed=seed, randomize=False)
    return ev.success_rate


def score_zoo(
    policy: Policy, cfg: ExperimentConfig, episodes: int, zoo: Sequence[ZooDevice] | None = None,
    budget: OracleBudget | None = None, progress: bool = True,
    on_device: Callable[[DeviceScore], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every zoo device scored; the figures a report carries (``heldout_success`` among them)."""
    zoo = devices(load_zoo(), cfg.device) if zoo is None else zoo
    rows = []
    for i, zd in enumerate(tqdm(zoo, desc="held-out zoo", unit="device", disable=not progress, leave=False)):
        device = zd.apply(cfg.device)
        rate = score_device(policy, cfg, device, episodes, seed=cfg.seed + 30_000 + 97 * i)
        passed = rate >= PASS_RATE
        if passed:
            feasible, verdict = True, "the controller succeeds"
        else:
            f = feasibility(device, cfg.task, budget, seed=cfg.seed + 40_000 + i)
            feasible, verdict = f.feasible, f.verdict()
        row = DeviceScore(zd.name, rate, episodes, passed, feasible, verdict, len(zd.outside))
        rows.append(row)
        if on_device:
            on_device(row)
    return summarize(rows)


def summarize(rows: Sequence[DeviceScore]) -> dict[str, Any]:
    """``heldout_success``: mean success over counted devices (feasible, held out); passed / counted; every row."""
    counted = [r for r in rows if r.feasible and r.outside > 0]
    return {
        "heldout_success": sum(r.success_rate for r in counted) / len(counted) if counted else float("nan"),
        "heldout_passed": sum(r.passed for r in counted),
        "heldout_counted": len(counted),
        "heldout_infeasible": sum(not r.feasible for r in rows),
        "heldout_devices": len(rows),
        "heldout_pass_rate": PASS_RATE,
        "heldout": [asdict(r) for r in rows],
    }


def line(row: DeviceScore) -> str:
    """One line per device for a person."""
    mark = "pass" if row.passed else ("FAIL" if row.feasible else "n/a ")
    mark = mark if row.outside else "in  "  # inside the training ranges: not held out
    return f"  {mark} {row.name:18s} {row.success_rate:6.0%} of {row.episodes}  {row.verdict}"


def headline(summary: dict[str, Any]) -> str:
    """The zoo's figures in one line."""
    return (
        f"held-out zoo: success {summary['heldout_success']:.1%} over {summary['heldout_counted']} devices, "
        f"{summary['heldout_passed']} passed (>= {PASS_RATE:.0%} of episodes); "
        f"{summary['heldout_devices'] - summary['heldout_counted']} not counted "
        f"({summary['heldout_infeasible']} infeasible at their actuator range, the rest inside the training ranges)"
    )
