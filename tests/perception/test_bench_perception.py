"""The perception benchmark runs end to end (smoke budget) and writes every section, so it cannot rot unnoticed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_perception_quick_writes_every_section(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_perception.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "bench_perception.json").read_text())
    assert {r["init"] for r in result["label_efficiency"]} == {"pretrained", "scratch"}
    assert len(result["robustness"]) == 9 and "held-out set (all of the above shifts)" in result["robustness"]
    calibrated = result["robustness"]["camera roll calibrated at rest (image alone)"]
    assert 0 < calibrated["image_calibrated_deg"] < 180 and calibrated["rigs"] > 0
    # the single frame is measured in the same run, as the mirror average's reference
    assert 0 < calibrated["single_frame_image_calibrated_deg"] < 180
    assert calibrated["single_frame_image_calibrated_deg"] != calibrated["image_calibrated_deg"]
    assert {"vqf", "madgwick", "learned (stateless)"} <= set(result["filters"]["swing-up and balance, gyro bias"])
    assert all(v["onnxruntime_us"] > 0 and v["torch_us"] > 0 for v in result["latency"].values())
    assert (tmp_path / "label_efficiency.png").stat().st_size > 0


def test_bench_augment_runs_both_arms_on_every_condition(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_augment.py"), "--train", "800", "--test", "200",
         "--steps", "20", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "bench_augment.json").read_text())["results"]
    assert set(results) == {"augment on", "augment off"}
    for arm in results.values():
        assert len(arm) == 5 and all(0 <= m["image_angle_rmse_deg"] < 180 for m in arm.values())
    assert results["augment on"] != results["augment off"]  # the switch reaches fine-tuning
