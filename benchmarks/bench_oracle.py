"""The feasibility oracle on the whole held-out zoo: every device's search in shared batches vs one by one.

``sim train`` asks the oracle about every zoo device its controller fails (an untrained or
narrow controller: most of them). Both ways run the same CMA-ES per device from the same
seed; they differ in which episodes share a simulation, so a verdict near the pass line may
differ between them. Prints each device's verdicts, the agreement and the time ratio.

    python -m benchmarks.bench_oracle [--preset quick] [--devices 22] [--generations 12]
"""

from __future__ import annotations

import argparse
import time

from sensorimotor.control.config import load_experiment
from sensorimotor.control.oracle import OracleBudget, feasibility, feasibility_many
from sensorimotor.sim.zoo import devices, load_zoo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="quick", help="config preset whose task and device (default: %(default)s)")
    ap.add_argument("--devices", type=int, default=None, help="only the first N zoo devices (default: all)")
    ap.add_argument("--generations", type=int, default=12, help="CMA-ES generations per device (default: %(default)s)")
    args = ap.parse_args()
    if args.devices is not None and args.devices < 1:
        ap.error(f"--devices {args.devices}: give at least 1")
    if args.generations < 1:
        ap.error(f"--generations {args.generations}: give at least 1")
    cfg = load_experiment(preset=args.preset)
    zoo = devices(load_zoo(), cfg.device, training=cfg.trained_device())[: args.devices]
    applied = [zd.apply(cfg.device) for zd in zoo]
    budget = OracleBudget(generations=args.generations)
    seed = cfg.seed + 40_000

    t0 = time.perf_counter()
    batched = feasibility_many(applied, cfg.task, budget, seed=seed)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = [feasibility(d, cfg.task, budget, seed=seed + i) for i, d in enumerate(applied)]
    t_single = time.perf_counter() - t0

    agree = 0
    for zd, b, s in zip(zoo, batched, single, strict=True):
        agree += b.feasible == s.feasible and b.needed_v == s.needed_v
        print(f"{zd.name:18s} batched: {b.verdict():60s} one by one: {s.verdict()}")
    print(f"\n{len(zoo)} devices ({args.preset}, task {cfg.task.name}, {args.generations} generations): "
          f"{agree} same verdict and range; batched {t_batched:.1f} s, one by one {t_single:.1f} s: "
          f"{t_single / t_batched:.1f}x faster")  # fmt: skip


if __name__ == "__main__":
    main()
