"""The exported controller on the twin over the serial path: success over N twin seeds.

Each run is ``hw run --twin --config RUN/config.yaml --model RUN/policy.onnx --seed K`` in real
time: the twin (a separate process on a pseudo-terminal, randomized physics and sensors drawn
from its seed, the run's task) and the host loop (onnxruntime, the real protocol). The twin's
ground truth decides success by the task's criterion (docs/tasks.md). Prints one line per seed
and the count. With ``--oracle`` the feasibility oracle (docs/sim-to-real.md) is tuned on each
seed's drawn device as well, and the count is also given over the devices it can swing up:
randomizing around a device at the edge of the actuator range draws some that nothing can do.
With ``--firmware PATH`` each seed also runs through the C firmware in the loop (its native
build speaking the protocol, docs/firmware.md), right after the Python twin's run of the same
seed: both counts, and the median sensor-to-command latency p50 of each with their ratio.

    python -m benchmarks.bench_twin_runs runs/full [--runs 20] [--first-seed 1] [--set device.physics.Dp=0.0002] [--oracle]
    python -m benchmarks.bench_twin_runs runs/quick --firmware firmware/build/native/smp_native
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.configs.schema import load_section
from sensorimotor.control.config import load_experiment
from sensorimotor.sim.task import TaskConfig, make_task


def twin_run(folder: Path, seed: int, duration: float, extra: list[str] | None = None, label: str = "") -> dict:
    """One ``hw run --twin`` of the run's policy (``extra``: more arguments, e.g. ``--set``); its row, printed."""
    label = label or f"seed {seed:3d}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        proc = subprocess.run(
            [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--config",
             str(folder / "config.yaml"), "--model", str(folder / "policy.onnx"), "--duration", str(duration),
             "--seed", str(seed), "--json", str(out), *(extra or [])],
            capture_output=True, text=True, timeout=duration + 120,
        )  # fmt: skip
        if not out.is_file():
            print(f"{label}: hw run failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}", flush=True)
            return {"seed": seed, "success": False, "error": proc.stderr[-300:]}
        summary = json.loads(out.read_text())
        twin = summary["twin"]
    row = {"seed": seed, "success": bool(twin["success"]), "time_to_upright_s": twin.get("time_to_upright_s"),
           "arm_past_limit": twin.get("arm_past_limit"), "exit": proc.returncode,
           "physics": twin.get("physics"), "latency_us_p50": summary["latency_us_p50"]}  # fmt: skip
    ttu = row["time_to_upright_s"]
    print(f"{label}: {'success' if row['success'] else 'FAILED '}"
          + (f", upright after {ttu:.2f} s" if ttu is not None else ""), flush=True)  # fmt: skip
    return row


def window_s(folder: Path) -> tuple[str, float]:
    """(task name, seconds a twin run needs to decide success: the task's window and a little)."""
    task = make_task(load_section(folder / "config.yaml", "task", TaskConfig))
    return task.name, task.eval_episode_s() + 1.0


def run(
    folder: Path, runs: int = 20, first_seed: int = 1, duration: float | None = None, sets: list[str] | None = None,
    oracle: bool = False, nominal: bool = False, firmware: Path | None = None,
) -> dict:  # fmt: skip
    name, window = window_s(folder)
    duration = duration or window
    extra = [a for s in sets or () for a in ("--set", s)] + (["--twin-nominal"] if nominal else [])
    rows, fw_rows = [], []
    for seed in range(first_seed, first_seed + runs):
        rows.append(twin_run(folder, seed, duration, extra))
        if firmware is not None:  # the same seed through the C firmware, right after: the same machine load
            fw_rows.append(
                twin_run(folder, seed, duration, [*extra, "--firmware", str(firmware)], f"seed {seed:3d} fw")
            )
    ok = sum(r["success"] for r in rows)
    print(f"\n{ok} of {len(rows)} twin runs succeeded ({name}, {duration:.0f} s each)")
    result = {"task": name, "runs": rows, "successes": ok, "duration_s": duration}
    if firmware is not None:
        fw_ok = sum(r["success"] for r in fw_rows)
        p50 = [float(np.median([r["latency_us_p50"] for r in rs if "latency_us_p50" in r])) for rs in (rows, fw_rows)]
        print(f"{fw_ok} of {len(fw_rows)} succeeded through the C firmware in the loop; latency p50 (median over "
              f"runs) {p50[1]:.0f} us against the Python twin's {p50[0]:.0f} us: {p50[1] / p50[0]:.2f}x")  # fmt: skip
        result |= {"firmware_runs": fw_rows, "firmware_successes": fw_ok, "latency_us_p50_twin": p50[0],
                   "latency_us_p50_firmware": p50[1], "latency_ratio": p50[1] / p50[0]}  # fmt: skip
    if oracle:
        result |= judge(folder, rows, sets or [])
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
    ap.add_argument("--oracle", action="store_true",
                    help="also tune the feasibility oracle on each drawn device and count over the feasible ones")  # fmt: skip
    args = ap.parse_args()
    if not (args.run / "policy.onnx").is_file():
        ap.error(f"{args.run} is not a run folder (no policy.onnx); pass one sim train wrote")
    if args.firmware is not None and not args.firmware.is_file():
        ap.error(f"--firmware {args.firmware}: no such file; `make firmware` builds it")
    if args.runs < 1:
        ap.error(f"--runs {args.runs}: give at least 1")
    try:  # the twin would refuse a bad --set too, but once per seed and after a compile
        load_experiment(args.run / "config.yaml", overrides=args.sets)
    except ValueError as exc:
        ap.error(str(exc))
    result = run(
        args.run, args.runs, args.first_seed, args.duration, args.sets, args.oracle, args.nominal, args.firmware
    )
    passed, out_of = (
        (result["feasible_successes"], result["feasible"]) if args.oracle else (result["successes"], args.runs)
    )
    sys.exit(0 if passed >= 0.95 * out_of else 1)


if __name__ == "__main__":
    main()
