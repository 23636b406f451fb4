"""What a sweep runs: its seeds, grid points or Optuna search space, the metric, and each trial's name.

Light (no Ray, no torch): the CLI checks everything here before Ray starts, so a bad
``--grid`` or ``--seeds`` costs a line, not a cluster.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import socket
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sensorimotor.configs.schema import ConfigError

# What a run's report.json carries, and which way is better. Device runs (the swing-up through perception)
# and Gymnasium runs (rl.env) report different figures; a metric no run of the config reports is refused.
DEVICE_METRICS: dict[str, str] = {
    "heldout_success": "max",  # mean success over the held-out zoo's counted devices
    "heldout_passed": "max",  # zoo devices passed (>= 80 % of episodes)
    "eval_success_rate": "max",  # the run's own randomized evaluation
    "time_to_upright_s": "min",  # mean over successful episodes (report.json: evaluation)
    "imu_angle_rmse_deg": "min",
    "image_angle_rmse_deg": "min",
    "onnx_parity_max_abs_diff": "min",
    "seconds_total": "min",
    "twin_success": "max",  # hw run --twin over the pty, --twin-runs seeds (RUN/twin_runs.json)
}
GYM_METRICS: dict[str, str] = {"mean_return": "max", "onnx_parity_max_abs_diff": "min", "seconds_total": "min"}
SWEEP_FILE = "sweep.json"  # the sweep's own arguments, so --resume needs nothing else


class SweepError(ValueError):
    """A sweep that cannot start as asked; the message names what was wrong and what to do."""


def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0..4]; ``"0,2,7"``; ``"3"``; mixed ``"0-2,9"``. Refuses empty, reversed or repeated seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if m is None:
            raise SweepError(f"--seeds {text!r}: {part.strip()!r} is not a seed or a range; use e.g. 0-4 or 0,2,7")
        lo, hi = int(m[1]), int(m[2]) if m[2] is not None else int(m[1])
        if hi < lo:
            raise SweepError(f"--seeds {text!r}: the range {lo}-{hi} runs backwards; use {hi}-{lo}")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: a seed is listed twice")
    return seeds


@dataclass(frozen=True)
class Axis:
    """One ``--grid key=...`` entry: listed values, or (Optuna only) a float range ``lo..hi`` or ``lo..hi:log``."""

    key: str
    values: tuple[Any, ...] = ()
    low: float | None = None
    high: float | None = None
    log: bool = False

    @property
    def is_range(self) -> bool:
        return self.low is not None


def parse_axis(item: str) -> Axis:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key or not text.strip() or not all(k.strip() for k in key.split(".")):
        raise SweepError(f"--grid {item!r}: expected a.b.c=V1,V2 (or a.b.c=LOW..HIGH[:log] with --optuna)")
    m = re.fullmatch(r"\s*([^,]+?)\s*\.\.\s*([^,:]+?)\s*(:log)?\s*", text)
    if m:
        try:
            low, high = float(m[1]), float(m[2])
        except ValueError:
            raise SweepError(f"--grid {item!r}: {m[1]!r}..{m[2]!r} is not a range of numbers") from None
        if not low < high or (m[3] and low <= 0):
            raise SweepError(f"--grid {item!r}: a range needs LOW < HIGH" + (" and LOW > 0 for :log" if m[3] else ""))
        return Axis(key, low=low, high=high, log=bool(m[3]))
    try:
        values = tuple(yaml.safe_load(v) for v in _split_values(text))
    except yaml.YAMLError:
        raise SweepError(f"--grid {item!r}: {text!r} is not a list of YAML values") from None
    if len(set(map(json.dumps, values))) != len(values):
        raise SweepError(f"--grid {item!r}: a value is listed twice")
    return Axis(key, values=values)


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets: ``1,[2, 3],4`` -> ``1``, ``[2, 3]``, ``4``."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in [*parts, cur]]


def override(key: str, value: Any) -> str:
    """``--set`` text for one value (YAML flow style, so lists and strings survive the round trip)."""
    return f"{key}={yaml.safe_dump(value, default_flow_style=True).strip().removesuffix('...').strip()}"


def point_name(point: dict[str, Any]) -> str:
    """A grid point as a folder-safe name: ``rl.gamma=0.98,rl.n_envs=16``; ``base`` for no axes."""
    if not point:
        return "base"
    text = ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in point.items())
    return re.sub(r"[^A-Za-z0-9_.,=+\-]", "_", text)


@dataclass
class SweepSpec:
    """A sweep as the CLI gave it; written to DIR/sweep.json and read back by ``--resume``."""

    out: str
    config: str | None
    preset: str | None
    seeds: list[int]
    grid: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    optuna: int = 0
    metric: str = "heldout_success"
    cpus_per_trial: float = 1.0
    prune: bool = True
    twin_runs: int = 0  # after training, hw run --twin on this many twin seeds (twin_success)
    inject_fault: str = ""  # tests: POINT/seedN[:always] crashes that trial once (or every time)

    @property
    def axes(self) -> list[Axis]:
        return [parse_axis(g) for g in self.grid]

    def points(self) -> list[dict[str, Any]]:
        """The grid's points (every combination of the axes' values); one empty point without a grid."""
        axes = self.axes
        return [
            dict(zip([a.key for a in axes], combo, strict=True))
            for combo in itertools.product(*[a.values for a in axes])
        ]

    def trial_overrides(self, point: dict[str, Any], seed: int) -> list[str]:
        return [*self.overrides, *(override(k, v) for k, v in point.items()), f"seed={seed}"]

    def run_dir(self, point: dict[str, Any], seed: int) -> Path:
        """The trial's ordinary run folder: DIR/runs/<point>/seed<N>."""
        return Path(self.out) / "runs" / point_name(point) / f"seed{seed}"

    def save(self) -> None:
        (Path(self.out) / SWEEP_FILE).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, out: Path) -> SweepSpec:
        path = out / SWEEP_FILE
        if not path.is_file():
            raise SweepError(f"--resume {out}: no {SWEEP_FILE} there (is it a sim sweep folder?)")
        spec = cls(**json.loads(path.read_text()))
        spec.out = str(out.resolve())  # the folder may have moved since; trials run in Ray's own cwd
        return spec


def check(spec: SweepSpec, metrics_for: dict[str, str]) -> None:
    """Everything that can be known before a trial starts: axes, metric, and every trial's config loads.

    ``metrics_for``: the metrics a run of this config reports (:data:`DEVICE_METRICS` or :data:`GYM_METRICS`).
    """
    from sensorimotor.control.config import load_experiment

    axes = spec.axes
    if spec.optuna <= 0 and any(a.is_range for a in axes):
        bad = next(a for a in axes if a.is_range)
        raise SweepError(f"--grid {bad.key}={bad.low:g}..{bad.high:g}: a range is searched with --optuna N; "
                         "a grid lists values (a.b=1,2,3)")  # fmt: skip
    if spec.optuna > 0 and not axes:
        raise SweepError("--optuna N searches the --grid axes: give at least one, e.g. --grid rl.gamma=0.95..0.999")
    if spec.metric not in metrics_for:
        raise SweepError(f"--metric {spec.metric}: no run of this config reports it; one of {', '.join(metrics_for)}")
    if spec.twin_runs < 0 or (spec.twin_runs and "twin_success" not in metrics_for):
        raise SweepError(
            f"--twin-runs {spec.twin_runs}: give a count >= 0, on the device (a Gymnasium env has no twin)"
        )
    if spec.metric == "twin_success" and not spec.twin_runs:
        raise SweepError("--metric twin_success: measured only with --twin-runs N (e.g. 20)")
    if not spec.cpus_per_trial > 0:
        raise SweepError(f"--cpus-per-trial {spec.cpus_per_trial:g}: must be > 0")
    # every combination the sweep can try must load; for ranges, both ends
    probes = (
        [dict(zip([a.key for a in axes], c, strict=True)) for c in itertools.product(*[a.values or (a.low, a.high) for a in axes])]
        if axes else [{}]
    )  # fmt: skip
    for point in probes:
        try:
            load_experiment(spec.config, spec.preset, spec.trial_overrides(point, spec.seeds[0]))
        except ConfigError as exc:
            where = ", ".join(f"{k}={v}" for k, v in point.items()) or "the base config"
            raise SweepError(f"grid point {where}: {exc}") from None


def metric_value(report: dict[str, Any], metric: str) -> float:
    """``metric`` from a report.json (``time_to_upright_s`` lives under ``evaluation``); nan when absent."""
    value: Any = report.get(metric, (report.get("evaluation") or {}).get(metric))
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def metrics_of(config: str | None, preset: str | None, overrides: Sequence[str]) -> dict[str, str]:
    """The metrics a run of this config reports (a Gymnasium env or the device)."""
    from sensorimotor.control.config import load_experiment
    from sensorimotor.control.names import DEVICE_ENV

    cfg = load_experiment(config, preset, overrides)
    return DEVICE_METRICS if cfg.rl.env == DEVICE_ENV else GYM_METRICS


def check_address(address: str | None) -> None:
    """An unreachable cluster is named before Ray spends its own timeouts on it."""
    if not address or address == "auto":
        return
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise SweepError(f"--address {address}: expected HOST:PORT (the head node's, e.g. 10.0.0.5:6379) or auto")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        raise SweepError(f"--address {address}: nothing answers there ({exc.strerror or exc}); is `ray start "
                         "--head` running on that host, and is the port open?") from None  # fmt: skip
