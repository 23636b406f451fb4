"""Run every benchmark; print the table and write benchmarks/results.json (``make bench``)."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_framing, bench_inference, bench_loop, bench_pty, bench_sim


def main() -> None:
    results = {
        "host": {
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": __import__("os").cpu_count(),
        }
    }
    for name, mod in (
        ("framing", bench_framing),
        ("inference", bench_inference),
        ("sim", bench_sim),
        ("pty", bench_pty),
        ("loop", bench_loop),
    ):
        print(f"--- {name}")
        results[name] = mod.run()
    out = Path(__file__).with_name("results.json")
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
