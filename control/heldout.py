"""A controller scored on the held-out zoo (:mod:`sensorimotor.sim.zoo`): the gap between sim and a real unit.

Each zoo device runs ``episodes`` episodes of the run's task with its own physics, delays
and sensor conditions fixed (no randomization on top). A device counts only when it is
feasible: where the controller succeeds that is shown; where it fails, the oracle
(:mod:`sensorimotor.control.oracle`) decides, so an impossible device is reported with the
actuator range it would need instead of being held against the policy. A device whose
values all lie inside the run's training ranges is not held out from it: reported, not counted.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.control.config import ExperimentConfig
from sensorimotor.control.evaluate import Policy, evaluate
from sensorimotor.control.oracle import OracleBudget, feasibility_many
from sensorimotor.sim import core
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim, ranges
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


#: What a row of one batched simulation can differ in (the rest of the device must be the same in every row).
PER_ROW = ("physics", "randomization", "imu.noise_scale", "camera.noise_sigma")


def score_devices(
    policy: Policy, cfg: ExperimentConfig, devices_: Sequence[DeviceConfig], episodes: int, seed: int
) -> list[float] | None:
    """Success rate on each device, all in ONE batched simulation (a row per episode); None if they differ
    in more than :data:`PER_ROW` can express (then score them one by one).

    Each row gets its device's physics, delays (the shortest of each range, as ``randomize=False``
    does), IMU noise multiplier and camera pixel noise after the reset; one policy call per step
    serves every device, which is what makes scoring a zoo cheap.
    """
    base = cfg.device

    def longest(name: str) -> tuple[int, int]:
        return (0, max(getattr(d.randomization, name)[1] for d in devices_))

    widest = dataclasses.replace(
        base.randomization,
        action_delay_substeps=longest("action_delay_substeps"),
        imu_delay_substeps=longest("imu_delay_substeps"),
        camera_delay_substeps=longest("camera_delay_substeps"),
    )
    span = dataclasses.replace(base, randomization=widest)
    for d in devices_:
        same = dataclasses.replace(
            d, physics=base.physics, randomization=widest, imu=dataclasses.replace(d.imu, noise_scale=base.imu.noise_scale),
            camera=dataclasses.replace(d.camera, noise_sigma=base.camera.noise_sigma),
        )  # fmt: skip
        if same != span:
            return None
    rng = np.random.default_rng(seed)

    def setup(sim: FurutaSim) -> None:
        b = sim.buffers
        for i, d in enumerate(devices_):
            rows = slice(i * episodes, (i + 1) * episodes)
            r = ranges(d, randomize=False)
            b.params[rows] = r.nominal
            b.delay[rows] = r.delay[:, 0]
            b.imu_gain[rows] = d.imu.noise_scale / base.imu.noise_scale if base.imu.noise_scale else 1.0
            if sim.settings.use_camera and d.camera.randomize:
                b.cam_ep[rows, core.NOISE] = rng.uniform(*d.camera.noise_sigma, episodes)

    ev = evaluate(policy, span, cfg.task, episodes * len(devices_), cfg.evaluation.episode_s or None, seed=seed,
                  randomize=False, setup=setup)  # fmt: skip
    assert ev.success is not None
    return [float(ev.success[i * episodes : (i + 1) * episodes].mean()) for i in range(len(devices_))]


def score_zoo(
    policy: Policy, cfg: ExperimentConfig, episodes: int, zoo: Sequence[ZooDevice] | None = None,
    budget: OracleBudget | None = None, progress: bool = True,
    on_device: Callable[[DeviceScore], None] | None = None, base: DeviceConfig | None = None,
    known: Mapping[str, tuple[bool, str]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Every zoo device scored; the figures a report carries (``heldout_success`` among them).

    ``base``: draw and apply the zoo around this device instead of the config's (an adapted run
    is scored on its source run's zoo, so the two compare); held out is still judged against
    the config's training ranges. ``known``: feasibility already established for a device of
    the same zoo and task (name -> feasible, verdict; e.g. the source run's rows), so the
    oracle does not run again there.
    """
    base = base or cfg.device
    zoo = devices(load_zoo(), base, training=cfg.trained_device()) if zoo is None else zoo
    budget = budget or OracleBudget(generations=cfg.evaluation.oracle_generations)
    applied = [zd.apply(base) for zd in zoo]
    rates = score_devices(policy, cfg, applied, episodes, seed=cfg.seed + 30_000)
    if rates is None:  # devices that cannot share one batched simulation: one by one
        rates = [score_device(policy, cfg, d, episodes, seed=cfg.seed + 30_000 + 97 * i) for i, d in enumerate(applied)]
    verdicts: dict[int, tuple[bool, str]] = {}
    for i, (zd, rate) in enumerate(zip(zoo, rates, strict=True)):
        if rate >= PASS_RATE:
            verdicts[i] = (True, "the controller succeeds")
        elif known is not None and zd.name in known:
            verdicts[i] = known[zd.name]
    # the oracle only where the controller fails and nothing is known; all those devices in the same batches
    ask = [i for i in range(len(zoo)) if i not in verdicts]
    if ask:
        with _status(f"oracle on {len(ask)} devices the controller fails", progress):
            found = feasibility_many([applied[i] for i in ask], cfg.task, budget, seed=cfg.seed + 40_000)
        verdicts.update({i: (f.feasible, f.verdict()) for i, f in zip(ask, found, strict=True)})
    rows = []
    for i, (zd, rate) in enumerate(zip(zoo, rates, strict=True)):
        row = DeviceScore(zd.name, rate, episodes, rate >= PASS_RATE, *verdicts[i], len(zd.outside))
        rows.append(row)
        if on_device:
            on_device(row)
    return summarize(rows)


@contextmanager
def _status(what: str, show: bool) -> Iterator[None]:
    """``what ...`` then how long it took, on stderr (the oracle's batches take seconds to minutes)."""
    t0 = time.perf_counter()
    if show:
        print(f"held-out zoo: {what} ...", end="", file=sys.stderr, flush=True)
    yield
    if show:
        print(f" {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)


def known_verdicts(run: Path | str, report: Mapping[str, Any]) -> dict[str, tuple[bool, str]]:
    """The feasibility a run's report established per zoo device, as ``score_zoo(known=...)`` takes it."""
    return {
        r["name"]: (r["feasible"], r["verdict"] if not r["passed"] else f"feasible ({run}'s controller succeeds)")
        for r in report.get("heldout", [])
    }


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
    skipped = summary["heldout_devices"] - summary["heldout_counted"]
    inside = skipped - summary["heldout_infeasible"]
    return (
        f"held-out zoo: success {summary['heldout_success']:.1%} over {summary['heldout_counted']} devices, "
        f"{summary['heldout_passed']} passed (>= {PASS_RATE:.0%} of episodes); {skipped} not counted "
        f"({summary['heldout_infeasible']} infeasible at their actuator range, {inside} inside the training ranges)"
    )
