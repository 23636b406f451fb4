"""The camera-roll calibration on the twin over the serial path: the image angle before and after ``hw calibrate``.

For each twin seed (a rig: its camera roll, lighting, physics drawn from the seed):

1. ``hw calibrate --twin --seed K`` with the pendulum hanging still, 3 s: the roll it measures
   against the twin's true one (the twin reports it when it stops);
2. ``hw run --twin --seed K --lockstep --calibration CAL --record LOG``: the run's own task
   (the full preset's: swing-up from hanging, then balance) with the twin's reference values on;
3. from LOG, each camera frame's image angle as the loop logged it (calibrated) against the
   frame's true angle at capture (``f_alpha``), over the frames the twin rendered fault-free;
   the uncalibrated angle is the logged one plus the roll.

Prints one line per seed and the RMSE over all frames, calibrated and not.

    python benchmarks/bench_calibrate.py runs/full [--runs 10] [--first-seed 1]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from sensorimotor.hardware.framing import FramingError, decode_body
from sensorimotor.hardware.log.mcaplog import TOPIC_ESTIMATE, TOPIC_RX, iter_log
from sensorimotor.hardware.messages import ImageFrame, MessageError, MessageReader, Reference
from sensorimotor.sim.sensors import CAMERA_OK

HW = [sys.executable, "-m", "sensorimotor.cli.hw"]


def frame_errors(log: Path) -> np.ndarray:
    """Logged image angle minus the frame's true angle (deg), one per fault-free camera frame the model saw."""
    images, truth, seen, logged = 0, {}, set(), {}
    read = MessageReader()
    for msg in iter_log(log):
        if msg.topic == TOPIC_RX:
            try:
                parsed = read(decode_body(msg.data))
            except (FramingError, MessageError):
                continue
            if isinstance(parsed, ImageFrame):
                images += 1
            elif isinstance(parsed, Reference) and "f_alpha" in parsed.as_dict():
                values = parsed.as_dict()
                truth[images] = (values["f_alpha"], values["f_class"])  # sent right after its IMAGE frame
        elif msg.topic == TOPIC_ESTIMATE and images not in seen:  # the first cycle that saw this frame
            seen.add(images)
            est = msg.json()["estimates"]
            logged[images] = math.atan2(est["img_sin"], est["img_cos"])
    errors = [logged[k] - truth[k][0] for k in logged if k in truth and truth[k][1] == CAMERA_OK]
    return np.degrees(np.mod(np.array(errors) + math.pi, 2 * math.pi) - math.pi)


def one_seed(folder: Path, seed: int, tmp: Path, duration: float) -> dict:
    config, model = str(folder / "config.yaml"), str(folder / "policy.onnx")
    cal, log, summary = tmp / f"cal{seed}.json", tmp / f"run{seed}.mcap", tmp / f"run{seed}.json"
    proc = subprocess.run([*HW, "calibrate", "--twin", "--seed", str(seed), "--config", config, "--model", model,
                           "--out", str(cal)], capture_output=True, text=True, timeout=120)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed}: hw calibrate failed: {proc.stderr.strip()}")
    c = json.loads(cal.read_text())
    proc = subprocess.run([*HW, "run", "--twin", "--seed", str(seed), "--config", config, "--model", model,
                           "--lockstep", "--duration", str(duration), "--calibration", str(cal), "--record", str(log),
                           "--json", str(summary), "--set", "device.reference=true"],
                          capture_output=True, text=True, timeout=duration + 300)  # fmt: skip
    if not summary.is_file():
        raise SystemExit(f"seed {seed}: hw run failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
    twin = json.loads(summary.read_text())["twin"]
    if abs(twin["image_roll_deg"] - c["twin_roll_deg"]) > 1e-9:
        raise SystemExit(f"seed {seed}: the run's twin is not the calibrated one ({twin['image_roll_deg']} deg)")
    after = frame_errors(log)
    before = after + c["roll_deg"]
    return {"seed": seed, "roll_deg": c["roll_deg"], "true_roll_deg": c["twin_roll_deg"],
            "spread_deg": c["spread_deg"], "ok_frames": c["ok_frames"], "frames": c["frames"],
            "success": bool(twin["success"]), "before": before, "after": after}  # fmt: skip


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def run(folder: Path, runs: int = 10, first_seed: int = 1, duration: float = 10.0) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(first_seed, first_seed + runs):
            r = one_seed(folder, seed, Path(tmp), duration)
            rows.append(r)
            print(f"seed {seed:3d}: roll {r['roll_deg']:+6.2f} deg measured, {r['true_roll_deg']:+6.2f} true "
                  f"(off {r['roll_deg'] - r['true_roll_deg']:+5.2f}; spread {r['spread_deg']:.2f}, "
                  f"{r['ok_frames']}/{r['frames']} ok)   image RMSE {rms(r['before']):5.2f} -> {rms(r['after']):5.2f} "
                  f"deg over {len(r['after'])} frames{'' if r['success'] else '  (swing-up FAILED)'}", flush=True)  # fmt: skip
    before, after = np.concatenate([r["before"] for r in rows]), np.concatenate([r["after"] for r in rows])
    off = np.array([r["roll_deg"] - r["true_roll_deg"] for r in rows])
    per_seed = np.array([rms(r["after"]) for r in rows])
    result = {
        "seeds": [r["seed"] for r in rows], "frames": len(after),
        "image_uncalibrated_rmse_deg": rms(before), "image_calibrated_rmse_deg": rms(after),
        "calibrated_per_seed_deg": [float(x) for x in per_seed],
        "roll_error_rms_deg": rms(off), "roll_error_max_deg": float(np.abs(off).max()),
        "true_roll_rms_deg": rms(np.array([r["true_roll_deg"] for r in rows])),
        "successes": sum(r["success"] for r in rows),
    }  # fmt: skip
    print(f"\n{len(rows)} twin rigs, {len(after)} fault-free camera frames over swing-up and balance:")
    print(f"  image angle RMSE uncalibrated {result['image_uncalibrated_rmse_deg']:.2f} deg, "
          f"after hw calibrate {result['image_calibrated_rmse_deg']:.2f} deg "
          f"(per rig {per_seed.min():.2f} .. {per_seed.max():.2f})")  # fmt: skip
    print(
        f"  roll measured at rest: {result['roll_error_rms_deg']:.2f} deg RMS off the truth "
        f"(max {result['roll_error_max_deg']:.2f}); the true rolls are {result['true_roll_rms_deg']:.2f} deg RMS"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="a sim train run folder (config.yaml, policy.onnx)")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of each run (default: %(default)s)")
    ap.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = ap.parse_args()
    result = run(args.run, args.runs, args.first_seed, args.duration)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
