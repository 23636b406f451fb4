"""A run's exported controller on the held-out zoo: in simulation, and through the twin over the pty.

For every zoo device (configs/zoo.yaml, drawn from the run's config): the oracle's verdict
(can any controller do it at the device's actuator range?), the success rate of the run's
``policy.onnx`` over ``--episodes`` simulated episodes (onnxruntime, the artifact ``hw run``
loads), and with ``--twin`` one ``hw run --twin`` per device in real time over a pseudo-terminal,
the twin playing exactly that device (``--set`` its values, ``--twin-nominal``: nothing
randomized on top). Infeasible devices are reported with the range they would need and not
counted. Prints one line per device and the counts; ``--json`` writes every row.

    python benchmarks/bench_zoo.py runs/full [--twin] [--episodes 10] [--json zoo.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from benchmarks.bench_twin_runs import twin_run, window_s
from sensorimotor.control.config import load_experiment
from sensorimotor.control.evaluate import onnx_policy
from sensorimotor.control.heldout import PASS_RATE, score_device, score_devices
from sensorimotor.control.oracle import feasibility
from sensorimotor.sim.zoo import devices, load_zoo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a sim train run folder (config.yaml, policy.onnx)")
    ap.add_argument("--episodes", type=int, default=10, help="simulated episodes per device")
    ap.add_argument("--twin", action="store_true", help="also one hw run --twin per feasible device (real time)")
    ap.add_argument("--zoo", type=Path, default=None, help="zoo file (default: the shipped configs/zoo.yaml)")
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    args = ap.parse_args()
    cfg = load_experiment(args.run / "config.yaml")
    policy = onnx_policy(args.run / "policy.onnx")
    _, duration = window_s(args.run)
    rows = []
    t0 = time.time()
    # an adapted run (sim train --from) is scored on its source run's zoo, as its report is
    report = args.run / "report.json"
    source = json.loads(report.read_text()).get("adapted_from") if report.is_file() else None
    base = load_experiment(Path(source) / "config.yaml").device if source else cfg.device
    zoo = devices(load_zoo(args.zoo), base, training=cfg.device)
    applied = [zd.apply(base) for zd in zoo]
    # every device in one batched simulation, as sim train scores it (one by one only if they cannot share one)
    batched = score_devices(policy, cfg, applied, args.episodes, seed=cfg.seed + 30_000)
    print(f"policy on {len(zoo)} devices x {args.episodes} episodes in {time.time() - t0:.0f} s", flush=True)
    for i, zd in enumerate(zoo):
        device = applied[i]
        f = feasibility(device, cfg.task, seed=cfg.seed + 40_000 + i)
        rate = (
            batched[i] if batched else score_device(policy, cfg, device, args.episodes, seed=cfg.seed + 30_000 + 97 * i)
        )
        row = {"device": zd.name, "outside": len(zd.outside), "feasible": f.feasible, "oracle": f.verdict(),
               "sim_success_rate": rate, "sim_passed": rate >= PASS_RATE}  # fmt: skip
        line = f"{zd.name:18s} outside {len(zd.outside):2d}  sim {rate:5.0%}  {f.verdict()}"
        if args.twin and f.feasible:
            twin = twin_run(args.run, seed=1 + i, duration=duration, extra=[*(a for s in zd.set_args() for a in ("--set", s)), "--twin-nominal"],
                            label=f"{zd.name:18s} twin")  # fmt: skip
            row["twin_success"] = twin["success"]
            line += f"  twin {'success' if twin['success'] else 'FAILED'}"
        rows.append(row)
        print(line, flush=True)
    counted = [r for r in rows if r["feasible"] and r["outside"] > 0]
    sim_ok = sum(r["sim_passed"] for r in counted)
    print(
        f"\nheld-out zoo ({len(rows)} devices, {len(rows) - len(counted)} not counted: infeasible or inside training)"
    )
    print(f"simulation: {sim_ok} of {len(counted)} devices passed (>= {PASS_RATE:.0%} of {args.episodes} episodes), "
          f"mean success {sum(r['sim_success_rate'] for r in counted) / max(1, len(counted)):.1%}")  # fmt: skip
    if args.twin:
        twin_ok = sum(bool(r.get("twin_success")) for r in counted)
        print(f"twin over the pty: {twin_ok} of {len(counted)} devices swung up and held")
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
