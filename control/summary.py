"""Print the summary of a demo run folder: training report, twin run and replay (``make demo``'s last step)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from sensorimotor.sim.verdict import twin_verdict


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def summarize(run: Path) -> str:
    rep, hw, rp = _load(run / "report.json"), _load(run / "run.json"), _load(run / "replay.json")
    lines = [f"== sensorimotor demo summary ({run}) =="]
    if rep:
        ev = rep["evaluation"]
        lat = rep["latency_batch1"]
        lines += [
            f"perception   IMU angle RMSE {rep['imu_angle_rmse_deg']:.2f} deg | image angle RMSE "
            f"{rep['image_angle_rmse_deg']:.2f} deg | camera-health accuracy {rep['classification_accuracy']:.1%}",
            f"controller   {rep.get('task', 'balance')}: success {ev['success_rate']:.1%} of {ev['episodes']} "
            f"simulated episodes ({ev['episode_s']:.0f} s), RMS alpha {ev['rms_alpha_deg']:.2f} deg while balancing",
            f"export       policy.onnx, parity max |ort - torch| {rep['onnx_parity_max_abs_diff']:.1e} over "
            f"{rep['onnx_parity_inputs']} inputs; batch-1 latency ort {lat['onnxruntime_us_p50']:.0f} us, "
            f"torch {lat['torch_us_p50']:.0f} us ({lat['torch_over_onnxruntime']:.1f}x)",
            f"training     {rep['seconds_total']:.0f} s total",
        ]
    if hw:
        twin = hw.get("twin", {})
        lines += [
            f"hw run       {hw['achieved_rate_hz']:.1f} Hz achieved, latency p50 {hw['latency_us_p50'] / 1e3:.2f} ms "
            f"p99 {hw['latency_us_p99'] / 1e3:.2f} ms, frames lost {hw['frames_lost']}, bad {hw['frames_bad']}",
            f"twin         upright {twin.get('upright_s', 0):.2f} s of {twin.get('streaming_s', 0):.2f} s -> "
            + twin.get("verdict", twin_verdict(twin)).upper(),  # older run.json files carry no verdict
        ]
    if rp:
        lines.append(
            f"replay       {rp['commands']} actions recomputed, max divergence {rp['max_divergence_v']:.2g} V -> "
            + ("reproduced" if rp["reproduced"] else "DIVERGED")
        )
    lines.append(f"artifacts    {run}/policy.onnx, report.json, run.mcap, *.png")
    return "\n".join(lines)


def main() -> int:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/quick")
    if not (run / "report.json").is_file():
        print(f"no report.json in {run}: run `make demo` (or sim train --out {run}) first", file=sys.stderr)
        return 2
    print(summarize(run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
