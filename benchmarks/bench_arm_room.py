"""How much arm a swing-up needs on a device, and how much a run's policy uses there.

The feasibility oracle (:mod:`sensorimotor.control.oracle`, true state, gains tuned by CMA-ES)
is tuned again with the arm's cable limit narrowed to each of ``--limits``: the narrowest limit
at which it still succeeds is the arm travel a swing-up needs on that device. With a RUN, the
run's ``policy.onnx`` is then simulated on the same device at the run's own limit, and its
success and the farthest its arm went are printed beside: a policy that fails where the oracle
succeeds either keeps its arm inside the travel the oracle needs, or uses that travel badly;
how close to upright it comes in each second, how often its command sits at the actuator range
and how far its arm goes once the swing-up is under way say which.

    python -m benchmarks.bench_arm_room [RUN] [--set device.physics.Dp=0.0002] [--limits 1,1.5,2,2.5]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from sensorimotor.control import oracle
from sensorimotor.control.config import ExperimentConfig, load_experiment
from sensorimotor.control.evaluate import onnx_policy
from sensorimotor.sim.furuta import wrap_angle
from sensorimotor.sim.task import SuccessTracker, make_task

BUDGET = oracle.OracleBudget(popsize=16, generations=30, episodes=8, verify_episodes=32)  # > sim train's
START_ARM_RAD = 0.5  # every limit starts the arm within +-this, so only the room to swing changes


def oracle_rows(cfg: ExperimentConfig, limits: list[float]) -> list[tuple[float, float]]:
    """(arm limit, the tuned oracle's success on fresh episodes) for each limit."""
    rows = []
    for lim in limits:
        task = dataclasses.replace(cfg.task, arm_limit_rad=lim, start_arm_rad=min(START_ARM_RAD, 0.9 * lim))
        _, rate = oracle.tune(cfg.device, task, BUDGET, cfg.seed)
        rows.append((lim, rate))
        print(f"  oracle, arm limit {lim:4.2f} rad: {rate:4.0%} of {BUDGET.verify_episodes} episodes", flush=True)
    return rows


@dataclasses.dataclass
class PolicyRow:
    """What the run's policy did on the device: success, arm travel, and where a swing-up stalls."""

    success: float  # of the episodes
    farthest: np.ndarray  # farthest |theta| of each episode (rad)
    closest_deg: np.ndarray  # (seconds,) median over episodes of each second's closest approach to upright (deg)
    saturated: float  # share of control steps at the actuator range
    arm_late: float  # median over episodes of the farthest |theta| after the third second (rad)


def policy_row(run: Path, cfg: ExperimentConfig, episodes: int) -> PolicyRow:
    """The run's policy on the device ``cfg`` describes (its own arm limit, nothing randomized)."""
    policy = onnx_policy(run / "policy.onnx")
    policy.reset()
    task = make_task(cfg.task)
    sim = task.sim(cfg.device, episodes, seed=cfg.seed + 70_000, randomize=False)
    sim.reset()
    dt = 1.0 / cfg.device.stream_rate_hz
    per_s = round(1.0 / dt)
    steps = round(task.eval_episode_s() / dt)
    tracker = SuccessTracker(task, episodes, dt)
    farthest, arm_late = np.zeros(episodes), np.zeros(episodes)
    closest = np.full((-(-steps // per_s), episodes), 180.0)
    saturated = 0
    for k in range(steps):
        raw = sim.observation()
        raw["state"] = sim.state
        volts = np.asarray(policy(raw), dtype=np.float64).reshape(episodes)
        sim.step(volts)
        tracker.update(sim.state, volts / cfg.device.v_max)
        theta = np.abs(sim.state[:, 0])
        farthest = np.maximum(farthest, theta)
        if k >= 3 * per_s:
            arm_late = np.maximum(arm_late, theta)
        off = np.degrees(np.abs(wrap_angle(sim.state[:, 1])))
        closest[k // per_s] = np.minimum(closest[k // per_s], off)
        saturated += int(np.sum(np.abs(volts) >= 0.98 * cfg.device.v_max))
    return PolicyRow(float(tracker.success.mean()), farthest, np.median(closest, axis=1), saturated / (steps * episodes),
                     float(np.median(arm_late)))  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?", default=None, help="a sim train run folder (config.yaml, policy.onnx)")
    ap.add_argument("--config", type=Path, default=None, help="without RUN: the config (default: the shipped one)")
    ap.add_argument("--preset", default="quick", help="without RUN: the preset (default: %(default)s)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                    help="change the device, e.g. --set device.physics.Dp=0.0002 (repeatable)")  # fmt: skip
    ap.add_argument("--limits", default="1.0,1.5,2.0,2.5", help="arm limits (rad), comma-separated")
    ap.add_argument("--episodes", type=int, default=16, help="policy episodes (default: %(default)s)")
    args = ap.parse_args()
    if args.run is not None and not (args.run / "policy.onnx").is_file():
        ap.error(f"{args.run} is not a run folder (no policy.onnx); pass one sim train wrote")
    try:
        limits = [float(x) for x in args.limits.split(",")]
    except ValueError:
        ap.error(f"--limits {args.limits!r}: expected numbers in rad, comma-separated, e.g. 1,1.5,2")
    try:
        if args.run is not None:
            cfg = load_experiment(args.run / "config.yaml", overrides=args.sets)
        else:
            cfg = load_experiment(args.config, preset=args.preset, overrides=args.sets)
    except ValueError as exc:
        ap.error(str(exc))
    print(f"device: {' '.join(args.sets) or 'as configured'}; swing-up from hanging, +-{cfg.device.v_max:g} V")
    t0 = time.perf_counter()
    rows = oracle_rows(cfg, limits)
    need = next((lim for lim, rate in rows if rate >= oracle.PASS_RATE), None)
    print(f"the oracle needs an arm limit of {need:g} rad" if need else "the oracle fails at every limit tried")
    if args.run is not None:
        row = policy_row(args.run, cfg, args.episodes)
        far = row.farthest
        print(
            f"{args.run}: {row.success:.0%} of {args.episodes} episodes at its limit {cfg.task.arm_limit_rad:g} rad; "
            f"farthest |theta| median {np.median(far):.2f}, max {far.max():.2f} rad"
        )
        print(
            "  closest to upright in each second (deg, median of the episodes): "
            + " ".join(f"{c:.0f}" for c in row.closest_deg)
        )
        print(f"  volts at the range {row.saturated:.0%} of the steps; after 3 s the arm within "
              f"+-{row.arm_late:.2f} rad (median)")  # fmt: skip
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
