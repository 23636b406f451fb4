"""The exported controller on the twin over the serial path: success over N twin seeds.

Each run is ``hw run --twin --config RUN/config.yaml --model RUN/policy.onnx --seed K`` in real
time: the twin (a separate process on a pseudo-terminal, randomized physics and sensors drawn
from its seed, the run's task) and the host loop (onnxruntime, the real protocol). The twin's
ground truth decides success by the task's criterion (docs/tasks.md). Prints one line per seed
and the count. With ``--oracle`` the feasibility oracle (docs/sim-to-real.md) is tuned on each
seed's drawn device as well, and the count is also given over the devices it can swing up:
randomizing around a device at the edge of the actuator range draws some that nothing can do.
``--save`` keeps the result in ``RUN/twin_runs.json`` for ``sim sweep``'s summary
(:mod:`sensorimotor.control.twin_runs` runs the seeds). With ``--firmware PATH`` each seed also runs through the C firmware in the loop (its native
build speaking the protocol, docs/firmware.md), right after the Python twin's run of the same
seed: both counts, and the median sensor-to-command latency p50 of each with their ratio.

    python -m benchmarks.bench_twin_runs runs/full [--runs 20] [--first-seed 1] [--set device.physics.Dp=0.0002] [--oracle]
    python -m benchmarks.bench_twin_runs runs/quick --firmware firmware/build/native/smp_native
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.control.config import load_experiment
from sensorimotor.control.twin_runs import check, save, twin_run, window_s
from sensorimotor.sim.config import load_device


def run(
    folder: Path, runs: int = 20, first_seed: int = 1, duration: float | None = None, sets: list[str] | None = None,
    oracle: bool = False, nominal: bool = False, firmware: Path | None = None,
) -> dict:  # fmt: skip
    extra = [a for s in sets or () for a in ("--set", s)] + (["--twin-nominal"] if nominal else [])
    if firmware is None:
        result = check(folder, runs, first_seed, duration, extra)
    else:  # each seed through the C firmware right after the Python twin's run: the same machine load
        name, window = window_s(folder)
        duration = duration or window
        rows, fw_rows = [], []
        for seed in range(first_seed, first_seed + runs):
            rows.append(twin_run(folder, seed, duration, extra))
            fw_rows.append(
                twin_run(folder, seed, duration, [*extra, "--firmware", str(firmware)], f"seed {seed:3d} fw")
            )
        ok = sum(r["success"] for r in rows)
        print(f"\n{ok} of {len(rows)} twin runs succeeded ({name}, {duration:.0f} s each)")
        result = {"task": name, "runs": rows, "successes": ok, "duration_s": duration}
        fw_ok = sum(r["success"] for r in fw_rows)
        p50 = [float(np.median([r["latency_us_p50"] for r in rs if "latency_us_p50" in r])) for rs in (rows, fw_rows)]
        print(f"{fw_ok} of {len(fw_rows)} succeeded through the C firmware in the loop; latency p50 (median over "
              f"runs) {p50[1]:.0f} us against the Python twin's {p50[0]:.0f} us: {p50[1] / p50[0]:.2f}x")  # fmt: skip
        result |= {"firmware_runs": fw_rows, "firmware_successes": fw_ok, "latency_us_p50_twin": p50[0],
                   "latency_us_p50_firmware": p50[1], "latency_ratio": p50[1] / p50[0]}  # fmt: skip
    if oracle:
        result |= judge(folder, result["runs"], sets or [])
    return result


def drawn_physics(base: Any, drawn: dict[str, float]) -> Any:
    """``base`` (the config's physics section) with the twin's drawn values.

    The randomization draws each friction value on its own, so a draw can put the breakaway
    below the Coulomb level, which the config refuses; it is raised to it (a difference of
    well under a milli-newton-metre).
    """
    values = dict(drawn)
    for joint in ("r", "p"):
        values[f"static_{joint}"] = max(values[f"static_{joint}"], values[f"coulomb_{joint}"])
    return dataclasses.replace(base, **values)


def judge(folder: Path, rows: list[dict], sets: list[str]) -> dict:
    """The oracle's verdict on the device each run's twin drew (its ground-truth physics); the count over feasible ones."""
    from sensorimotor.control.oracle import feasibility_many

    cfg = load_experiment(folder / "config.yaml", overrides=sets)
    played = [r for r in rows if r.get("physics")]
    devices = [dataclasses.replace(cfg.device, physics=drawn_physics(cfg.device.physics, r["physics"])) for r in played]
    verdicts = feasibility_many(devices, cfg.task, seed=cfg.seed + 50_000)
    base = load_experiment(folder / "config.yaml").device.physics  # multipliers of the run's own values, not --set's
    for r, v in zip(played, verdicts, strict=True):
        r["feasible"], r["oracle"] = v.feasible, v.verdict()
        drawn = ", ".join(f"{k} x{r['physics'][k] / getattr(base, k):.2f}" for k in ("Dp", "Dr", "Rm", "mp"))
        print(f"seed {r['seed']:3d}: {'success' if r['success'] else 'FAILED '}  {drawn}  oracle: {v.verdict()}")
    feasible = [r for r in played if r["feasible"]]
    ok = sum(r["success"] for r in feasible)
    print(f"\n{len(feasible)} of {len(rows)} drawn devices feasible at +-{cfg.device.v_max:g} V; "
          f"the policy succeeded on {ok} of them")  # fmt: skip
    return {"feasible": len(feasible), "feasible_successes": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a sim train run folder (config.yaml, policy.onnx)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=None, help="seconds per run (default: the task's window + 1 s)")
    ap.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="change the twin, e.g. device.physics.Dp=0.0002 (repeatable)",
    )
    ap.add_argument(
        "--nominal",
        action="store_true",
        help="the twin plays exactly the configured device (with --set): only noise and the start vary",
    )
    ap.add_argument("--firmware", type=Path, default=None, metavar="PATH",
                    help="also run each seed through the C firmware in the loop (`make firmware` builds it)")  # fmt: skip
    ap.add_argument("--save", action="store_true",
                    help="write RUN/twin_runs.json (the run as trained: not with --set, --nominal or --firmware); "
                         "`sim sweep`'s summary reads it as twin_success")  # fmt: skip
    ap.add_argument("--oracle", action="store_true",
                    help="also tune the feasibility oracle on each drawn device and count over the feasible ones")  # fmt: skip
    args = ap.parse_args()
    if not (args.run / "policy.onnx").is_file():
        ap.error(f"{args.run} is not a run folder (no policy.onnx); pass one sim train wrote")
    if args.firmware is not None and not args.firmware.is_file():
        ap.error(f"--firmware {args.firmware}: no such file; `make firmware` builds it")
    if args.save and (args.sets or args.nominal or args.firmware):
        ap.error("--save records the run as trained: drop --set, --nominal and --firmware")
    if args.runs < 1:
        ap.error(f"--runs {args.runs}: give at least 1")
    try:  # the twin would refuse a bad --set too, but once per seed and after a compile
        load_device(args.run / "config.yaml", args.sets)
    except ValueError as exc:
        ap.error(str(exc))
    result = run(
        args.run, args.runs, args.first_seed, args.duration, args.sets, args.oracle, args.nominal, args.firmware
    )
    if args.save:
        save(args.run, result)
        print(f"wrote {args.run / 'twin_runs.json'}")
    passed, out_of = (
        (result["feasible_successes"], result["feasible"]) if args.oracle else (result["successes"], args.runs)
    )
    sys.exit(0 if passed >= 0.95 * out_of else 1)


if __name__ == "__main__":
    main()
