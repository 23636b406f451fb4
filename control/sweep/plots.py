"""A sweep's plots: learning curves with bands over seeds, and each configuration's final figures seed by seed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from sensorimotor.control.sweep.aggregate import read_reports, spread
from sensorimotor.control.sweep.spec import metric_value


def _curve(report: dict[str, Any]) -> tuple[str, np.ndarray, np.ndarray] | None:
    """(label, timesteps, values): the periodic evaluation's success, else the training return."""
    raw = report.get("rl_curve") or {}
    ev = [p for p in raw.get("eval", []) if "success_rate" in p]
    if ev:
        return "evaluation success", np.array([p["timesteps"] for p in ev]), np.array([p["success_rate"] for p in ev])
    tr = [p for p in raw.get("train", []) if "return" in p]
    if tr:
        return "training return", np.array([p["timesteps"] for p in tr]), np.array([p["return"] for p in tr])
    return None


def learning_curves(runs: Path, path: Path) -> bool:
    """Per configuration: the mean over seeds and its 95 % bootstrap band (seeds interpolated onto one grid of
    steps over the range they share). False when no run has a curve."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    label = None
    for point, by_seed in read_reports(runs).items():
        curves = [c for c in (_curve(r) for r in by_seed.values()) if c is not None]
        if not curves:
            continue
        label = curves[0][0]
        end = min(c[1][-1] for c in curves)
        steps = np.linspace(max(c[1][0] for c in curves), end, 50)
        ys = np.stack([np.interp(steps, c[1], c[2]) for c in curves])
        bands = [spread(ys[:, i].tolist(), seed=i) for i in range(len(steps))]
        mean = np.array([b.mean for b in bands])
        line = ax.plot(steps, mean, label=f"{point} ({len(curves)} seeds)")[0]
        if len(curves) > 1:
            lo, hi = np.array([b.mean_ci[0] for b in bands]), np.array([b.mean_ci[1] for b in bands])
            ax.fill_between(steps, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if label is None:
        plt.close(fig)
        return False
    ax.set_xlabel("environment steps")
    ax.set_ylabel(label)
    ax.set_title("learning curves: mean over seeds, 95 % bootstrap band")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def final_figures(runs: Path, metrics: list[str], path: Path) -> bool:
    """One panel per figure: every seed as a dot, the IQM as a bar with its 95 % bootstrap interval."""
    reports = read_reports(runs)
    metrics = [
        m for m in metrics if any(not math.isnan(metric_value(r, m)) for s in reports.values() for r in s.values())
    ]
    if not reports or not metrics:
        return False
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 + 3 * len(metrics), 4), squeeze=False)
    names = list(reports)
    for ax, m in zip(axes[0], metrics, strict=True):
        for i, point in enumerate(names):
            vals = [metric_value(r, m) for r in reports[point].values()]
            s = spread(vals)
            ax.bar(i, s.iqm, color="C0", alpha=0.3)
            if not math.isnan(s.iqm_ci[0]):
                ax.errorbar(i, s.iqm, yerr=[[s.iqm - s.iqm_ci[0]], [s.iqm_ci[1] - s.iqm]], color="k", capsize=4)
            ax.scatter(np.full(len(vals), i) + np.linspace(-0.15, 0.15, len(vals)), vals, color="C1", zorder=3, s=14)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{m}: IQM, 95 % CI, seeds", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
