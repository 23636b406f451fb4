"""A run's exported controller on the held-out zoo: in simulation, and through the twin over the pty.

For every zoo device (configs/zoo.yaml, drawn from the run's config), scored as ``sim train``
scores it (:func:`sensorimotor.control.heldout.score_zoo`): the success rate of the run's
``policy.onnx`` over ``--episodes`` simulated episodes (onnxruntime, the artifact ``hw run``
loads) and, where it fails, the oracle's verdict (can any controller do it at the device's
actuator range? taken from the run's report.json when it has one), and with ``--twin`` one ``hw run --twin`` per device in real time over a pseudo-terminal,
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
from sensorimotor.control.heldout import DeviceScore, headline, known_verdicts, line, score_zoo
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
    _, duration = window_s(args.run)
    t0 = time.time()
    # an adapted run (sim train --from) is scored on its source run's zoo, as its report is; the oracle's
    # verdicts of the report are reused when the zoo is the shipped one (they depend on the device and task only)
    path = args.run / "report.json"
    report = json.loads(path.read_text()) if path.is_file() else {}
    source = report.get("adapted_from")
    base = load_experiment(Path(source) / "config.yaml").device if source else cfg.device
    zoo = devices(load_zoo(args.zoo), base, training=cfg.trained_device())
    known = known_verdicts(args.run, report) if args.zoo is None else None
    twins: dict[str, bool] = {}
    by_name = {zd.name: (i, zd) for i, zd in enumerate(zoo)}

    def on_device(row: DeviceScore) -> None:
        text = line(row)
        i, zd = by_name[row.name]
        if args.twin and row.feasible:
            extra = [*(a for s in zd.set_args() for a in ("--set", s)), "--twin-nominal"]
            twins[row.name] = twin_run(args.run, seed=1 + i, duration=duration, extra=extra,
                                       label=f"{zd.name:18s} twin")["success"]  # fmt: skip
            text += f"  twin {'success' if twins[row.name] else 'FAILED'}"
        print(text, flush=True)

    summary = score_zoo(onnx_policy(args.run / "policy.onnx"), cfg, args.episodes, zoo=zoo, progress=False,
                        on_device=on_device, base=base, known=known)  # fmt: skip
    rows = summary["heldout"]
    for r in rows:
        r["twin_success"] = twins.get(r["name"])
    print()
    print(headline(summary))
    if args.twin:
        counted = [r for r in rows if r["feasible"] and r["outside"] > 0]
        print(f"twin over the pty: {sum(bool(r['twin_success']) for r in counted)} of {len(counted)} devices "
              "swung up and held")  # fmt: skip
    print(f"({time.time() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    sys.exit(0)


if __name__ == "__main__":
    main()
