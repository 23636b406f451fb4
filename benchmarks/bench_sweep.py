"""What Ray costs and gives: the same trainings as one ``sim sweep`` and one after another.

The reference is measured in the same run: each trial's ``sim train`` (the same config, preset and
seed, one CPU's worth of torch threads, as a sweep trial gets) run sequentially; then the sweep of
those trials on a local Ray instance over this machine's cores. Prints both wall times, their
ratio, and the sweep's overhead over an ideal split of the sequential time across its parallel
slots (Ray's start, the trials' Python and torch imports in fresh workers, the summary).

    python -m benchmarks.bench_sweep                                   # 4 tiny trials (2 seeds x 2 gammas)
    python -m benchmarks.bench_sweep --preset quick --seeds 0-1 --grid ""   # the quick preset over 2 seeds
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sensorimotor.control.sweep.spec import SweepSpec, parse_axis, parse_seeds


def _sim(args: list[str], log: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # what Ray gives a 1-CPU trial
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "sensorimotor.cli.sim", *args], stdout=f, stderr=f, env=env)
    if proc.returncode != 0:
        sys.exit(f"bench_sweep: `sim {' '.join(args)}` failed (exit {proc.returncode}); see {log}")
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--seeds", default="0-1")
    ap.add_argument("--grid", default="rl.gamma=0.95,0.99", help='one grid axis, or "" for none')
    ap.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="local Ray's CPUs (default: all)")
    ap.add_argument("--keep", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    grid = [args.grid] if args.grid else []
    spec = SweepSpec(out="", config=None, preset=args.preset, seeds=parse_seeds(args.seeds), grid=grid)
    for g in grid:
        parse_axis(g)
    trials = [(p, s) for p in spec.points() for s in spec.seeds]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    work.mkdir(parents=True, exist_ok=True)
    sequential = 0.0
    for i, (point, seed) in enumerate(trials):
        sets = [x for o in spec.trial_overrides(point, seed) for x in ("--set", o)]
        took = _sim(["train", "--preset", args.preset, *sets, "--out", str(work / f"seq-{i}")], work / f"seq-{i}.log")
        sequential += took
        print(f"sequential {i + 1}/{len(trials)} {point or 'base'} seed {seed}: {took:.1f} s", flush=True)
    sweep_args = ["sweep", "--preset", args.preset, "--seeds", args.seeds, "--out", str(work / "sweep"),
                  "--cpus", str(args.cpus), *[x for g in grid for x in ("--grid", g)]]  # fmt: skip
    swept = _sim(sweep_args, work / "sweep.log")
    slots = min(args.cpus, len(trials))
    ideal = math.ceil(len(trials) / slots)  # rounds of trials at once, were the overhead nil
    ideal_s = sequential / len(trials) * ideal
    print(f"{len(trials)} trials of the {args.preset} preset: one after another {sequential:.1f} s; as one sim sweep "
          f"on {args.cpus} CPUs {swept:.1f} s: {sequential / swept:.2f}x the sequential speed "
          f"(ideal {len(trials) / ideal:.2f}x: {ideal} rounds of {slots})")  # fmt: skip
    print(f"sweep overhead over the ideal split: {swept - ideal_s:+.1f} s ({swept / ideal_s:.2f}x the ideal "
          f"{ideal_s:.1f} s)")  # fmt: skip
    table = json.loads((work / "sweep" / "summary.json").read_text())
    configs = ", ".join(f"{p} ({len(e['seeds'])} seeds)" for p, e in table.items())
    print(f"summary: {configs} in {work / 'sweep'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
