"""Helpers for the benchmarks: medians over repeats, printed with ratios to a reference; zoo device selection."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

import numpy as np


def median_s(fn: Callable[[], object], repeats: int = 200, warmup: int = 10) -> float:
    """Median wall time of one call (s)."""
    for _ in range(warmup):
        fn()
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.median(times))


def report(name: str, value_s: float, reference_s: float | None = None, ref_name: str = "") -> dict[str, float]:
    line = f"{name:<48} {value_s * 1e6:10.1f} us"
    out = {"us": value_s * 1e6}
    if reference_s is not None:
        ratio = reference_s / value_s
        line += f"   {ratio:6.1f}x faster than {ref_name} ({reference_s * 1e6:.1f} us)"
        out["speedup_vs_reference"] = ratio
    print(line, flush=True)
    return out


def zoo_selection(ap: argparse.ArgumentParser, zoo: Sequence[str], named: str | None, default: list[str]) -> list[str]:
    """``--devices a,b`` checked against the zoo's names (argparse's exit 2 naming the unknown), else ``default``."""
    names = named.split(",") if named else default
    unknown = [n for n in names if n not in zoo]
    if unknown:
        ap.error(f"no zoo device {', '.join(unknown)} (the zoo has {', '.join(zoo)})")
    return names
