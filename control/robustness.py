"""``sim robustness RUN``: where the run's exported controller breaks, one or two parameters at a time.

Each axis is a config path (the device's own field names) with multipliers of its value,
e.g. ``device.physics.Dp=0.25:12:7`` (7 multipliers from 0.25x to 12x, log-spaced). Every
cell is the device with those values, nothing randomized on top, run for ``episodes``
episodes by onnxruntime on ``policy.onnx`` (the artifact ``hw run`` loads). Cells where it
fails are checked by the oracle (:mod:`sensorimotor.control.oracle`), so the map tells
"the policy breaks here" from "nothing can do this at the device's actuator range".
Writes ``robustness.png`` (a heat map), ``robustness.md`` and ``robustness.json``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from tqdm import tqdm

from sensorimotor.configs.schema import ConfigError
from sensorimotor.control.config import ExperimentConfig
from sensorimotor.control.evaluate import Policy, onnx_policy
from sensorimotor.control.heldout import PASS_RATE, score_device
from sensorimotor.control.oracle import PASS_RATE as ORACLE_PASS
from sensorimotor.control.oracle import OracleBudget, feasibility, tune, with_range
from sensorimotor.sim.zoo import with_values

DEFAULT_AXES = ("device.physics.Dp=0.25:12:7", "device.physics.Rm=0.4:1.5:5")


@dataclass(frozen=True)
class Axis:
    """A config path and the multipliers of its value to try."""

    path: str
    factors: tuple[float, ...]

    @property
    def label(self) -> str:
        return self.path.removeprefix("device.")


def parse_axis(text: str) -> Axis:
    """``PATH=LO:HI[:N]`` (N log-spaced multipliers, default 5) or ``PATH=F1,F2,...`` -> Axis."""
    path, sep, spec = text.partition("=")
    try:
        if not sep:
            raise ValueError
        if ":" in spec:
            parts = spec.split(":")
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2]) if len(parts) > 2 else 5
            if len(parts) > 3 or not (0 < lo <= hi) or n < 1:
                raise ValueError
            factors = tuple(float(f) for f in np.geomspace(lo, hi, n))
        else:
            factors = tuple(float(f) for f in spec.split(","))
            if not factors or min(factors) <= 0 or not all(map(math.isfinite, factors)):
                raise ValueError
    except ValueError:
        raise ConfigError(
            f"--axis {text!r}: expected PATH=LO:HI[:N] or PATH=F1,F2,... with multipliers > 0, "
            "e.g. --axis device.physics.Dp=0.25:12:7"
        ) from None
    return Axis(path.strip(), factors)


def cell_values(cfg: ExperimentConfig, axes: tuple[Axis, ...], index: tuple[int, ...]) -> dict[str, Any]:
    """The config values of one cell: each axis's path at its multiplier of the config's value."""
    out = {}
    for axis, i in zip(axes, index, strict=True):
        node: Any = cfg
        for key in axis.path.split("."):
            if not hasattr(node, key):
                raise ConfigError(f"--axis {axis.path}: unknown config field {key!r}")
            node = getattr(node, key)
        f = axis.factors[i]
        out[axis.path] = [v * f for v in node] if isinstance(node, tuple) else node * f
    return out


def feasible_here(cfg: ExperimentConfig, device: Any, budget: OracleBudget, seed: int) -> bool:
    """The oracle at the device's own range only (no ladder: a map has many cells)."""
    return tune(with_range(device, device.v_max), cfg.task, budget, seed)[1] >= ORACLE_PASS


def sweep(
    policy: Policy, cfg: ExperimentConfig, axes: tuple[Axis, ...], episodes: int, budget: OracleBudget,
    progress: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Success rate and the oracle's verdict in every cell of the grid (first axis = rows)."""
    shape = tuple(len(a.factors) for a in axes)
    success = np.zeros(shape)
    feasible = np.ones(shape, bool)
    cells = list(np.ndindex(*shape))
    for k, index in enumerate(tqdm(cells, desc="robustness map", unit="cell", disable=not progress)):
        device = with_values(cfg.device, cell_values(cfg, axes, index), source=f"cell {index}")
        success[index] = score_device(policy, cfg, device, episodes, seed=cfg.seed + 50_000 + k)
        if success[index] < PASS_RATE:
            feasible[index] = feasible_here(cfg, device, budget, seed=cfg.seed + 60_000 + k)
    return {
        "axes": [{"path": a.path, "factors": list(a.factors)} for a in axes],
        "episodes": episodes,
        "success_rate": success.tolist(),
        "feasible": feasible.tolist(),
        "pass_rate": PASS_RATE,
    }


def centre_line(run: Path, cfg: ExperimentConfig, episodes: int, budget: OracleBudget | None = None) -> str:
    """One line on ``cfg``'s own device: the run's success there and, where it fails, whether anything can succeed."""
    rate = score_device(onnx_policy(run / "policy.onnx"), cfg, cfg.device, episodes, seed=cfg.seed + 70_000)
    head = f"this device: {run.name}'s policy succeeds at {cfg.task.name} in {rate:.0%} of {episodes} episodes"
    if rate >= PASS_RATE:
        return head
    return f"{head}; {feasibility(cfg.device, cfg.task, budget, seed=cfg.seed + 80_000).verdict()}"


def run(run_dir: Path, cfg: ExperimentConfig, axes: tuple[Axis, ...], episodes: int) -> dict[str, Any]:
    """The map of ``run_dir``'s exported model (onnxruntime) around ``cfg``'s device."""
    return sweep(onnx_policy(run_dir / "policy.onnx"), cfg, axes, episodes, OracleBudget())


def table(result: dict[str, Any]) -> str:
    """The map as Markdown: success per cell, 'n/a' where the oracle also fails."""
    axes = result["axes"]
    success, feasible = np.array(result["success_rate"]), np.array(result["feasible"])
    if len(axes) == 1:
        success, feasible = success[:, None], feasible[:, None]
        cols = ["success"]
    else:
        cols = [f"{f:.2g}x" for f in axes[1]["factors"]]
    rows_label = axes[0]["path"].removeprefix("device.")
    head = f"| {rows_label} \\ {axes[1]['path'].removeprefix('device.') if len(axes) > 1 else ''} | " + " | ".join(cols)
    lines = [head + " |", "|---|" + "---|" * len(cols)]
    for i, f in enumerate(axes[0]["factors"]):
        cells = [f"{success[i, j]:.0%}" + ("" if feasible[i, j] else " (n/a)") for j in range(len(cols))]
        lines.append(f"| {f:.2g}x | " + " | ".join(cells) + " |")
    return (
        "\n".join(lines)
        + "\n\n(n/a): the oracle fails there too: no controller found at the device's actuator range.\n"
    )


def plot(result: dict[str, Any], path: Path, title: str) -> None:
    """A heat map of success (one axis: a bar chart); cells the oracle cannot do are hatched."""
    axes = result["axes"]
    success, feasible = np.array(result["success_rate"]), np.array(result["feasible"])
    fig, ax = plt.subplots(figsize=(7.5, 5))
    xs = [f"{f:.2g}x" for f in axes[0]["factors"]]
    if len(axes) == 1:
        colors = [
            "tab:green" if s >= PASS_RATE else ("tab:gray" if not ok else "tab:red")
            for s, ok in zip(success, feasible, strict=True)
        ]
        ax.bar(xs, success, color=colors)
        ax.set(xlabel=f"{axes[0]['path']} (x config)", ylabel="success rate", ylim=(0, 1.05))
    else:
        im = ax.imshow(success, vmin=0, vmax=1, cmap="RdYlGn", origin="lower", aspect="auto")
        ax.set_yticks(range(len(xs)), xs)
        ax.set_xticks(range(len(axes[1]["factors"])), [f"{f:.2g}x" for f in axes[1]["factors"]])
        ax.set(ylabel=f"{axes[0]['path']} (x config)", xlabel=f"{axes[1]['path']} (x config)")
        for (i, j), s in np.ndenumerate(success):
            ax.text(j, i, f"{s:.0%}" if feasible[i, j] else "n/a", ha="center", va="center", fontsize=8)
            if not feasible[i, j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//", edgecolor="gray"))
        fig.colorbar(im, ax=ax, label="success rate")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict[str, Any], out: Path, title: str) -> None:
    """robustness.json, robustness.md and robustness.png into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "robustness.json").write_text(json.dumps(result, indent=2))
    (out / "robustness.md").write_text(f"# {title}\n\n" + table(result))
    plot(result, out / "robustness.png", title)
