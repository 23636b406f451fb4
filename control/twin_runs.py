"""A run's exported controller on the twin over the serial path, as a user runs it: success over N twin seeds.

Each run is ``hw run --twin --config RUN/config.yaml --model RUN/policy.onnx --seed K`` in real
time, in its own process (the command line, not an import: the twin and the host loop are
separate processes on a pseudo-terminal, with randomized physics and sensors drawn from the
seed). The twin's ground truth decides success by the task's criterion (docs/tasks.md).
:func:`check` runs seeds ``first_seed ..``; :func:`save` writes ``RUN/twin_runs.json``, which
``sim sweep``'s summary reads beside ``report.json`` (``twin_success``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sensorimotor.sim.config import load_device
from sensorimotor.sim.task import TaskConfig, make_task

TWIN_FILE = "twin_runs.json"
Log = Callable[[str], None]


def twin_run(folder: Path, seed: int, duration: float, extra: Sequence[str] = (), label: str = "",
             log: Log = print) -> dict[str, Any]:  # fmt: skip
    """One ``hw run --twin`` of the run's policy (``extra``: more arguments, e.g. ``--set``); its row, logged."""
    label = label or f"seed {seed:3d}"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        proc = subprocess.run(
            [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--config",
             str(folder / "config.yaml"), "--model", str(folder / "policy.onnx"), "--duration", str(duration),
             "--seed", str(seed), "--json", str(out), *extra],
            capture_output=True, text=True, timeout=duration + 120,
        )  # fmt: skip
        if not out.is_file():
            log(f"{label}: hw run failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
            return {"seed": seed, "success": False, "error": proc.stderr[-300:]}
        summary = json.loads(out.read_text())
    twin = summary["twin"]
    row = {"seed": seed, "success": bool(twin["success"]), "time_to_upright_s": twin.get("time_to_upright_s"),
           "arm_past_limit": twin.get("arm_past_limit"), "exit": proc.returncode,
           "physics": twin.get("physics"), "latency_us_p50": summary["latency_us_p50"]}  # fmt: skip
    ttu = row["time_to_upright_s"]
    log(f"{label}: {'success' if row['success'] else 'FAILED '}" + (f", upright after {ttu:.2f} s" if ttu else ""))
    return row


def window_s(folder: Path) -> tuple[str, float]:
    """(task name, seconds a twin run needs to decide success: the task's window and a little)."""
    device, task_cfg = load_device(folder / "config.yaml")
    if isinstance(task_cfg, TaskConfig):  # the Furuta's: swing-up's window is its reach and hold
        task = make_task(task_cfg)
        return task.name, task.eval_episode_s() + 1.0
    return device.make_task(task_cfg).name, float(task_cfg.episode_s) + 1.0


def check(
    folder: Path, runs: int = 20, first_seed: int = 1, duration: float | None = None, extra: Sequence[str] = (),
    log: Log = print,
) -> dict[str, Any]:  # fmt: skip
    """``runs`` twin seeds from ``first_seed``: every row, the count, the task and each run's length."""
    name, window = window_s(folder)
    duration = duration or window
    rows = [twin_run(folder, seed, duration, extra, log=log) for seed in range(first_seed, first_seed + runs)]
    ok = sum(r["success"] for r in rows)
    log(f"{ok} of {len(rows)} twin runs succeeded ({name}, {duration:.0f} s each)")
    return {"task": name, "runs": rows, "successes": ok, "duration_s": duration}


def save(folder: Path, result: dict[str, Any]) -> None:
    """``RUN/twin_runs.json``: the check of the run as it was trained (no --set, no --nominal)."""
    (folder / TWIN_FILE).write_text(json.dumps(result, indent=2))


def figures(folder: Path) -> dict[str, float]:
    """``twin_success`` (fraction of the saved twin runs) and ``twin_runs``; empty without a saved check."""
    path = folder / TWIN_FILE
    if not path.is_file():
        return {}
    saved = json.loads(path.read_text())
    n = len(saved["runs"])
    return {"twin_success": saved["successes"] / n, "twin_runs": float(n)} if n else {}
