"""The exported controller on the twin over the serial path: success over N twin seeds.

Each run is ``hw run --twin --config RUN/config.yaml --model RUN/policy.onnx --seed K`` in real
time: the twin (a separate process on a pseudo-terminal, randomized physics and sensors drawn
from its seed, the run's task) and the host loop (onnxruntime, the real protocol). The twin's
ground truth decides success by the task's criterion (docs/tasks.md). Prints one line per seed
and the count.

    python benchmarks/bench_twin_runs.py runs/full [--runs 20] [--first-seed 1] [--set device.physics.Dp=0.0002]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from sensorimotor.configs.schema import load_section
from sensorimotor.sim.task import TaskConfig, make_task


def twin_run(folder: Path, seed: int, duration: float, extra: list[str] | None = None, label: str = "") -> dict:
    """One ``hw run --twin`` of the run's policy (``extra``: more arguments, e.g. ``--set``); its row, printed."""
    label = label or f"seed {seed:3d}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        proc = subprocess.run(
            [sys.executable, "-m", "sensorimotor.hardware.cli", "run", "--twin", "--config",
             str(folder / "config.yaml"), "--model", str(folder / "policy.onnx"), "--duration", str(duration),
             "--seed", str(seed), "--json", str(out), *(extra or [])],
            capture_output=True, text=True, timeout=duration + 120,
        )  # fmt: skip
        if not out.is_file():
            print(f"{label}: hw run failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}", flush=True)
            return {"seed": seed, "success": False, "error": proc.stderr[-300:]}
        twin = json.loads(out.read_text())["twin"]
    row = {"seed": seed, "success": bool(twin["success"]), "time_to_upright_s": twin.get("time_to_upright_s"),
           "arm_past_limit": twin.get("arm_past_limit"), "exit": proc.returncode}  # fmt: skip
    ttu = row["time_to_upright_s"]
    print(f"{label}: {'success' if row['success'] else 'FAILED '}"
          + (f", upright after {ttu:.2f} s" if ttu is not None else ""), flush=True)  # fmt: skip
    return row


def window_s(folder: Path) -> tuple[str, float]:
    """(task name, seconds a twin run needs to decide success: the task's window and a little)."""
    task = make_task(load_section(folder / "config.yaml", "task", TaskConfig))
    return task.name, task.eval_episode_s() + 1.0


def run(
    folder: Path, runs: int = 20, first_seed: int = 1, duration: float | None = None, sets: list[str] | None = None
) -> dict:
    name, window = window_s(folder)
    duration = duration or window
    extra = [a for s in sets or () for a in ("--set", s)]
    rows = [twin_run(folder, seed, duration, extra) for seed in range(first_seed, first_seed + runs)]
    ok = sum(r["success"] for r in rows)
    print(f"\n{ok} of {len(rows)} twin runs succeeded ({name}, {duration:.0f} s each)")
    return {"task": name, "runs": rows, "successes": ok, "duration_s": duration}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a sim train run folder (config.yaml, policy.onnx)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=None, help="seconds per run (default: the task's window + 1 s)")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="PATH=VALUE",
                    help="change the twin, e.g. device.physics.Dp=0.0002 (repeatable)")  # fmt: skip
    args = ap.parse_args()
    result = run(args.run, args.runs, args.first_seed, args.duration, args.sets)
    sys.exit(0 if result["successes"] >= 0.95 * len(result["runs"]) else 1)


if __name__ == "__main__":
    main()
