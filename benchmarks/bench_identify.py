"""Identification on known twins: ``hw excite --twin`` then ``sim identify``, errors per parameter and fit time.

Draws ``--twins`` devices (fixed seed) whose pendulum damping, arm damping and motor
resistance span the held-out zoo's ranges (configs/zoo.yaml: Dp 0.3-12x, Dr 0.3-8x, Rm
0.4-1.5x the config's), plays each exactly (``--twin-nominal``) over a real pty in real time
for an excitation of ``--duration`` s, fits the log with ``sim identify`` from the config's
values, and compares every value it writes with the twin's truth. Prints one line per twin
and, per parameter, the median and worst error over the twins whose fit named it identifiable
(a parameter the fit declines is counted, not scored). Run it alone: the excitation is
real time and the fit uses both cores.

    python -m benchmarks.bench_identify [--twins 10] [--duration 30] [--json identify.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from sensorimotor.sim.config import DeviceConfig

FACTORS = {"Dp": (0.3, 12.0), "Dr": (0.3, 8.0), "Rm": (0.4, 1.5)}  # the zoo's spans (docs/sim-to-real.md)
SEED = 20261205


def twins(n: int) -> list[dict[str, float]]:
    """``n`` devices' true values, log-uniform over :data:`FACTORS` of the config's (the same every call)."""
    base = DeviceConfig().physics
    rng = np.random.default_rng(SEED)
    out = []
    for _ in range(n):
        out.append({k: float(f"{getattr(base, k) * np.exp(rng.uniform(np.log(lo), np.log(hi))):.6g}")
                    for k, (lo, hi) in FACTORS.items()})  # fmt: skip
    return out


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=900)


def one(truth: dict[str, float], folder: Path, duration: float, seed: int) -> dict:
    """Excite the twin playing ``truth``, identify, compare; the row."""
    log, out = folder / "excite.mcap", folder / "device.yaml"
    sets = [a for k, v in truth.items() for a in ("--set", f"device.physics.{k}={v}")]
    excite = _cli("sensorimotor.cli.hw", "excite", "--twin", "--twin-nominal", "--out", str(log),
                  "--duration", str(duration), "--seed", str(seed), *sets)  # fmt: skip
    if excite.returncode != 0:
        return {"truth": truth, "error": f"hw excite exit {excite.returncode}: {excite.stderr.strip()[-300:]}"}
    t0 = time.perf_counter()
    fit = _cli("sensorimotor.cli.sim", "identify", str(log), "--out", str(out), "--seed", str(seed))
    seconds = time.perf_counter() - t0
    if fit.returncode != 0:
        return {"truth": truth, "seconds": seconds, "error": f"sim identify exit {fit.returncode}: "
                f"{fit.stderr.strip()[-300:]}"}  # fmt: skip
    data = yaml.safe_load(out.read_text())
    found = (data.get("device") or {}).get("physics") or {}
    declined = data.get("identification", {}).get("not_identifiable", {})
    errors = {k: found[k] / v - 1 for k, v in truth.items() if k in found}
    return {"truth": truth, "found": found, "errors": errors, "declined": declined, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--twins", type=int, default=10, help="how many known twins (default: 10)")
    ap.add_argument("--duration", type=float, default=30.0, help="excitation length, s (default: 30)")
    ap.add_argument("--json", type=Path, default=None, help="write every row here")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, truth in enumerate(twins(args.twins)):
            folder = Path(tmp) / f"twin-{i}"
            folder.mkdir()
            row = one(truth, folder, args.duration, seed=i)
            rows.append(row)
            base = DeviceConfig().physics
            where = " ".join(f"{k} {v / getattr(base, k):.2f}x" for k, v in truth.items())
            if "error" in row:
                print(f"twin {i}: {where}: FAILED: {row['error']}", flush=True)
                continue
            errs = " ".join(f"{k} {e:+.1%}" for k, e in row["errors"].items())
            skip = "; declined " + ", ".join(row["declined"]) if row["declined"] else ""
            print(f"twin {i}: {where}: {errs}{skip}  ({row['seconds']:.0f} s fit)", flush=True)
    print(
        f"\n{'parameter':<10} {'scored':>6} {'declined':>8} {'median |err|':>12} {'worst |err|':>11} {'within 10%':>10}"
    )
    summary = {}
    for k in FACTORS:
        errs = [abs(r["errors"][k]) for r in rows if k in r.get("errors", {})]
        declined = sum(1 for r in rows if k in r.get("declined", {}))
        med, worst = (float(np.median(errs)), max(errs)) if errs else (float("nan"), float("nan"))
        within = sum(e <= 0.10 for e in errs)
        summary[k] = {"scored": len(errs), "declined": declined, "median": med, "worst": worst, "within_10": within}
        print(f"{k:<10} {len(errs):>6} {declined:>8} {med:>12.1%} {worst:>11.1%} {within:>7}/{len(errs)}")
    fits = [r["seconds"] for r in rows if "seconds" in r]
    failed = sum(1 for r in rows if "error" in r)
    print(f"fit time: median {np.median(fits):.0f} s, worst {max(fits):.0f} s over {len(fits)} fits; "
          f"{failed} of {len(rows)} twins failed")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary, "duration_s": args.duration}, indent=2))


if __name__ == "__main__":
    main()
