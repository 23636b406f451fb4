"""benchmarks/bench_framing.py runs and prints the CRC-32 against CRC-16 cost of every frame type (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_framing_prints_the_crc_ratio_per_frame_type() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_framing"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "encode + decode per frame, v3 (CRC-32) against v2 (CRC-16), same run:" in proc.stdout
    rows = re.findall(r"^  ([A-Z]+) +(\d+) B body +CRC-32 +[\d.]+ us +CRC-16 +[\d.]+ us +ratio ([\d.]+)x$",
                      proc.stdout, re.MULTILINE)  # fmt: skip
    assert [(name, int(body)) for name, body, _ in rows] == [
        ("COMMAND", 17), ("STATUS", 25), ("REFERENCE", 61), ("DESCRIBE", 214), ("SENSOR", 293), ("IMAGE", 4110),
    ], proc.stdout  # fmt: skip
    assert all(float(ratio) > 0 for _, _, ratio in rows)
    assert re.search(r"crc32 costs [\d.]+x crc16", proc.stdout), proc.stdout
