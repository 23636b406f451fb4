"""The zoo after a rig's own adaptation: hw excite -> sim identify -> sim train --from, per device, on the twin.

For every counted zoo device of a run (feasible and outside its training; the verdicts from
the run's report.json, so the oracle does not run again) or those named with ``--devices``,
the twin plays exactly that device (``--twin-nominal`` with the device's values) and the
user's procedure of docs/sim-to-real.md §5 runs as commands, each a subprocess:

1. ``hw run --twin`` of the run's own policy (16 s): the device before adaptation;
2. ``hw excite --twin`` (40 s in real time) -> ``excite.mcap``;
3. ``sim identify excite.mcap`` -> ``device.yaml`` (Dp, Dr, Rm fitted in the run's model);
4. ``sim train --from RUN --device device.yaml --steps N`` -> an adapted run;
5. ``hw run --twin`` of the adapted policy on the same device.

With ``--only-failing`` a device the run's policy already swings up is kept as it is (a user
adapts when the rig fails). Prints one line per device (identified / true for each fitted
value, before, after) and the counts; ``--out`` keeps every log, device file and adapted run; ``--json`` writes the rows.

    python -m benchmarks.bench_zoo_adapt runs/robust [--devices zoo-16,zoo-23] [--steps 1000000] --out runs/zoo-adapt
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_twin_runs import twin_run, window_s
from benchmarks.common import zoo_selection
from sensorimotor.control.config import load_experiment
from sensorimotor.sim.config import PhysicsConfig
from sensorimotor.sim.device_file import read_device_file
from sensorimotor.sim.zoo import ZooDevice, devices, load_zoo


class StepFailed(Exception):
    """A command of the procedure failed: the device keeps its run's policy (after = before)."""


def step(args: list[str], label: str) -> None:
    """Run one product command; StepFailed with the last line it printed when it fails."""
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        said = (proc.stdout + proc.stderr).strip().splitlines() or [""]  # hw excite reports a stop on stdout
        raise StepFailed(f"{label} failed (exit {proc.returncode}): {said[-1][-300:]}")


def adapt_one(
    run: Path,
    nominal: PhysicsConfig,
    zd: ZooDevice,
    seed: int,
    steps: int,
    folder: Path,
    duration: float,
    only_failing: bool = False,
    free: str | None = None,
) -> dict:
    """Before, excite, identify, adapt, after on one zoo device: its row (``only_failing``: a pass is kept as is).

    ``nominal``: the run's physics, the reference for parameters the device leaves as they are.
    """
    twin = [*(a for s in zd.set_args() for a in ("--set", s)), "--twin-nominal"]
    config = ["--config", str(run / "config.yaml")]
    before = twin_run(run, seed=seed, duration=duration, extra=twin, label=f"{zd.name:18s} before")
    t0 = time.perf_counter()
    if only_failing and before["success"]:
        return {"device": zd.name, "before": True, "after": True, "adapted": False, "identified_over_true": {},
                "seconds": 0.0}  # fmt: skip
    try:
        adapted = excite_identify_adapt(run, twin, config, seed, steps, folder, free)
    except StepFailed as exc:
        print(f"{zd.name:18s} {exc}", flush=True)
        return {"device": zd.name, "before": before["success"], "after": before["success"], "adapted": False,
                "error": str(exc), "identified_over_true": {}, "seconds": time.perf_counter() - t0}  # fmt: skip
    after = twin_run(adapted, seed=seed, duration=duration, extra=twin, label=f"{zd.name:18s} after")
    ratios = {path.rsplit(".", 1)[-1]: v / zd.values.get(path, getattr(nominal, path.rsplit(".", 1)[-1]))
              for path, v in read_device_file(folder / "device.yaml").items()
              if path.startswith("device.physics.")}  # fmt: skip
    return {"device": zd.name, "before": before["success"], "after": after["success"], "adapted": True,
            "identified_over_true": ratios, "seconds": time.perf_counter() - t0}  # fmt: skip


def excite_identify_adapt(
    run: Path, twin: list[str], config: list[str], seed: int, steps: int, folder: Path, free: str | None
) -> Path:
    """The three commands of docs/sim-to-real.md §5 on the twin (``free``: sim identify's --free): the adapted run."""
    log, device_yaml, adapted = folder / "excite.mcap", folder / "device.yaml", folder / "adapted"
    step(["sensorimotor.cli.hw", "excite", "--twin", *config, *twin, "--seed", str(seed), "--out", str(log)],
         "hw excite")  # fmt: skip
    chosen = ["--free", free] if free else []
    step(["sensorimotor.cli.sim", "identify", str(log), *config, *chosen, "--out", str(device_yaml)],
         "sim identify")  # fmt: skip
    step(["sensorimotor.cli.sim", "train", "--from", str(run), "--device", str(device_yaml), "--steps", str(steps),
          "--out", str(adapted)], "sim train --from")  # fmt: skip
    return adapted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a sim train run folder (config.yaml, policy.onnx, report.json)")
    ap.add_argument("--devices", default=None, help="zoo device names, comma-separated (default: every counted one)")
    ap.add_argument("--steps", type=int, default=1_000_000, help="adaptation steps (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True, help="folder for each device's log, device.yaml and run")
    ap.add_argument(
        "--only-failing",
        action="store_true",
        help="adapt only where the run's own policy fails on the twin, as a user would (sim-to-real.md §5)",
    )
    ap.add_argument("--free", default=None, help="sim identify's --free (default: its own, Dp,Dr,Rm)")
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    args = ap.parse_args()
    report_path = args.run / "report.json"
    if not (args.run / "policy.onnx").is_file() or not report_path.is_file():
        ap.error(f"{args.run} is not a finished run (policy.onnx and report.json); pass one sim train wrote")
    if args.out.exists() and any(args.out.iterdir()):
        ap.error(f"--out {args.out} is not empty: name a new folder (nothing is overwritten)")
    report = json.loads(report_path.read_text())
    counted = {r["name"] for r in report.get("heldout", []) if r["feasible"] and r["outside"]}
    device = load_experiment(args.run / "config.yaml").device
    zoo = {zd.name: zd for zd in devices(load_zoo(), device)}
    names = zoo_selection(ap, list(zoo), args.devices, [n for n in zoo if n in counted])
    _, duration = window_s(args.run)
    rows, t0 = [], time.perf_counter()
    for name in names:
        folder = args.out / name
        folder.mkdir(parents=True)
        row = adapt_one(args.run, device.physics, zoo[name], seed=1 + list(zoo).index(name), steps=args.steps,
                        folder=folder, duration=duration, only_failing=args.only_failing, free=args.free)  # fmt: skip
        if row["adapted"]:
            fit = ", ".join(f"{k} {r:.2f}x" for k, r in row["identified_over_true"].items())
            print(f"{name:18s} identified/true: {fit}; before {'ok' if row['before'] else 'FAILED'}, "
                  f"after {'ok' if row['after'] else 'FAILED'} ({row['seconds']:.0f} s)", flush=True)  # fmt: skip
        rows.append(row)
    print(f"\n{len(rows)} devices: before adaptation {sum(r['before'] for r in rows)} swung up and held, "
          f"after {sum(r['after'] for r in rows)} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
