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
    assert len(result["robustness"]) == 8 and "held-out set (all of the above shifts)" in result["robustness"]
    assert {"vqf", "madgwick", "learned (stateless)"} <= set(result["filters"]["swing-up and balance, gyro bias"])
    assert all(v["onnxruntime_us"] > 0 and v["torch_us"] > 0 for v in result["latency"].values())
    assert (tmp_path / "label_efficiency.png").stat().st_size > 0
