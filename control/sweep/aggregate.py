"""Multi-seed results as RL papers now report them (rliable, Agarwal et al. 2021): per configuration, the
mean, standard deviation, interquartile mean (IQM) and percentile-bootstrap 95 % confidence intervals of
each headline figure over seeds; a Markdown and a JSON table.

Reads the trials' own report.json files (and twin_runs.json where the twin check ran), so it works on any
folder of runs, finished or not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from sensorimotor.control.sweep.spec import DEVICE_METRICS, GYM_METRICS, metric_value
from sensorimotor.control.twin_runs import figures as twin_figures

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass
class Spread:
    """One figure over seeds."""

    n: int
    mean: float
    std: float  # sample standard deviation (ddof 1); nan for one seed
    iqm: float  # mean of the middle 50 % (scipy.stats.trim_mean, 25 % cut each side)
    median: float
    low: float
    high: float
    mean_ci: tuple[float, float]  # percentile bootstrap, 95 %
    iqm_ci: tuple[float, float]
    values: list[float]


def iqm(values: Sequence[float] | np.ndarray) -> float:
    return float(stats.trim_mean(np.asarray(values, dtype=float), 0.25))


def spread(values: Sequence[float], seed: int = 0) -> Spread:
    """Mean, std, IQM and bootstrap CIs of ``values`` (nans dropped); the resampling is seeded."""
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    nan = float("nan")
    if len(x) == 0:
        return Spread(0, nan, nan, nan, nan, nan, nan, (nan, nan), (nan, nan), [])

    def ci(statistic: Any) -> tuple[float, float]:
        if len(x) < 2 or np.ptp(x) == 0:  # nothing to resample: the interval is the value itself
            v = float(statistic(x, axis=-1))
            return (v, v) if len(x) >= 2 else (nan, nan)
        res = stats.bootstrap((x,), statistic, n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=CONFIDENCE,
                              method="percentile", rng=np.random.default_rng(seed))  # fmt: skip
        return float(res.confidence_interval.low), float(res.confidence_interval.high)

    return Spread(
        n=len(x), mean=float(x.mean()), std=float(x.std(ddof=1)) if len(x) > 1 else nan, iqm=iqm(x),
        median=float(np.median(x)), low=float(x.min()), high=float(x.max()),
        mean_ci=ci(np.mean), iqm_ci=ci(lambda a, axis: stats.trim_mean(a, 0.25, axis=axis)), values=x.tolist(),
    )  # fmt: skip


def read_reports(runs: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """``runs/<point>/seed<N>/report.json`` -> {point: {seed: report}}; unfinished trials are left out."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(runs.glob("*/seed*/report.json")):
        try:
            seed = int(path.parent.name.removeprefix("seed"))
            report = json.loads(path.read_text()) | twin_figures(path.parent)  # twin_success when checked
            found.setdefault(path.parent.parent.name, {})[seed] = report
        except (ValueError, OSError):
            continue
    return found


def summarize(runs: Path) -> dict[str, Any]:
    """Every configuration's spread of every figure its runs report."""
    table: dict[str, Any] = {}
    for point, by_seed in read_reports(runs).items():
        first = next(iter(by_seed.values()))
        metrics = GYM_METRICS if "mean_return" in first else DEVICE_METRICS
        seeds = sorted(by_seed)
        table[point] = {
            "seeds": seeds,
            "metrics": {m: asdict(spread([metric_value(by_seed[s], m) for s in seeds])) for m in metrics},
        }
    return table


def _fmt(v: float, metric: str) -> str:
    if math.isnan(v):
        return "-"
    if metric.endswith(("_rate", "_success")):
        return f"{v:.1%}"
    if metric.endswith("_diff"):
        return f"{v:.1e}"
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"


def markdown(table: dict[str, Any], metrics: Sequence[str] | None = None) -> str:
    """One row per configuration and figure: n, mean ± std, IQM with its CI, mean CI, range."""
    lines = ["| configuration | figure | seeds | mean ± std | IQM [95 % CI] | mean [95 % CI] | min – max |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for point, entry in table.items():
        for m, s in entry["metrics"].items():
            if (metrics and m not in metrics) or s["n"] == 0:
                continue
            f = lambda v, m=m: _fmt(v, m)  # noqa: E731
            lines.append(
                f"| {point} | {m} | {s['n']} | {f(s['mean'])} ± {f(s['std'])} | {f(s['iqm'])} [{f(s['iqm_ci'][0])}, "
                f"{f(s['iqm_ci'][1])}] | {f(s['mean'])} [{f(s['mean_ci'][0])}, {f(s['mean_ci'][1])}] | "
                f"{f(s['low'])} – {f(s['high'])} |"
            )
    return "\n".join(lines) + "\n"


def write(out: Path) -> dict[str, Any]:
    """DIR/summary.json and DIR/summary.md from DIR/runs; the table."""
    table = summarize(out / "runs")
    (out / "summary.json").write_text(json.dumps(table, indent=2))
    (out / "summary.md").write_text(
        f"# Sweep {out.name}: spread over seeds\n\nIQM: mean of the middle 50 % of seeds; CIs: percentile bootstrap "
        f"({BOOTSTRAP_RESAMPLES} resamples, seeded). From `sim sweep`, read from {out / 'runs'}/*/seed*/report.json.\n\n"
        + markdown(table)
    )
    return table
