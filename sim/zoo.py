"""The held-out device zoo: devices drawn outside the training ranges, fixed by one file and a seed.

``configs/zoo.yaml`` lists config paths (the device's own field names, e.g.
``device.physics.Dp``) with how far each is drawn from the config's value, plus named
devices from published numbers. :func:`load_zoo` reads it; :func:`devices` draws the same
devices every time for a given config; :meth:`ZooDevice.apply` turns one into the
:class:`DeviceConfig` the simulator and the twin run (``--set`` arguments for the twin:
:meth:`ZooDevice.set_args`). :func:`training_span` says what the training distribution
covers for a path, so each device knows which of its values lie outside it.

Light: numpy and yaml only (the twin's side of the stack may read it).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.configs.schema import DEFAULT_CONFIG, ConfigError, build, read_yaml, to_dict
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import ranges
from sensorimotor.sim.furuta import PARAM_NAMES

DEFAULT_ZOO = DEFAULT_CONFIG.parent / "zoo.yaml"  # shipped beside furuta.yaml (package data)
KINDS = ("factor", "integer")
MAX_REDRAWS = 1000  # per device, before the spec is declared unsatisfiable
Value = float | int | tuple[float, ...] | list[float]


@dataclass(frozen=True)
class Draw:
    """How one config path is drawn: a log-uniform factor on its value, or a uniform integer."""

    path: str
    kind: str  # "factor" | "integer"
    low: float
    high: float


@dataclass(frozen=True)
class ZooSpec:
    """The zoo file: the seed, how many devices to draw, the draws and the named devices."""

    seed: int
    count: int
    min_outside: int
    draws: tuple[Draw, ...]
    named: tuple[tuple[str, dict[str, Any]], ...]  # (name, {path: value})
    source: str = "zoo"


@dataclass(frozen=True)
class ZooDevice:
    """One held-out device: its name, the config values it changes and which of them lie outside training."""

    name: str
    values: dict[str, Any]  # path -> value (the config's type: a float, an int, a [min, max] pair)
    factors: dict[str, float]  # path -> value / the config's value (1.0 where not a multiple)
    outside: tuple[str, ...]  # paths whose value the training distribution never reaches

    def apply(self, device: DeviceConfig, **changes: Any) -> DeviceConfig:
        """``device`` with this device's values set (and any top-level DeviceConfig ``changes``), validated."""
        return with_values(device, self.values, source=f"zoo device {self.name}", **changes)

    def set_args(self) -> list[str]:
        """``--set path=value`` arguments that make a twin this device (with ``--nominal``)."""
        return [f"{path}={json.dumps(_plain(v))}" for path, v in self.values.items()]


def load_zoo(path: str | Path | None = None) -> ZooSpec:
    """Read and check a zoo file (``path`` None: the shipped configs/zoo.yaml)."""
    path = Path(path) if path is not None else DEFAULT_ZOO
    data = read_yaml(path)
    unknown = set(data) - {"seed", "count", "min_outside", "draw", "named"}
    if unknown:
        raise ConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (known: seed, count, min_outside, draw, named)")
    draws = []
    for key, rule in (data.get("draw") or {}).items():
        if not isinstance(rule, Mapping) or len(rule) != 1 or next(iter(rule)) not in KINDS:
            raise ConfigError(f"{path}: draw.{key}: expected {{factor: [low, high]}} or {{integer: [low, high]}}")
        kind, span = next(iter(rule.items()))
        if not (isinstance(span, list) and len(span) == 2 and 0 <= float(span[0]) <= float(span[1])):
            raise ConfigError(f"{path}: draw.{key}.{kind}: expected [low, high] with 0 <= low <= high, got {span!r}")
        if kind == "factor" and float(span[0]) <= 0:
            raise ConfigError(f"{path}: draw.{key}.factor: low must be > 0 (log-uniform), got {span[0]}")
        draws.append(Draw(str(key), kind, float(span[0]), float(span[1])))
    named = tuple((str(d["name"]), dict(d.get("set") or {})) for d in data.get("named") or ())
    return ZooSpec(
        seed=int(data.get("seed", 0)), count=int(data.get("count", 20)), min_outside=int(data.get("min_outside", 1)),
        draws=tuple(draws), named=named, source=str(path),
    )  # fmt: skip


def devices(spec: ZooSpec, device: DeviceConfig, training: DeviceConfig | None = None) -> list[ZooDevice]:
    """The zoo's devices for this config: the named ones, then ``spec.count`` drawn ones (same every call).

    The draws depend on the seed and the config's nominal values only, never on its
    training ranges: widening the training must not move the zoo. Each device's ``outside``
    is measured against ``device``'s ranges; ``spec.min_outside`` is what the shipped
    config leaves outside (a test checks it), and a device left with none outside a run's
    ranges is not held out from that run (:mod:`sensorimotor.control.heldout` does not count it).
    ``training``: measure ``outside`` against these ranges instead (a run adapted from ``device``'s).
    """
    training = training or device
    out = [_device(name, values, device, spec.source, training) for name, values in spec.named]
    rng = np.random.default_rng(spec.seed)
    for i in range(spec.count):
        why = ""
        for _ in range(MAX_REDRAWS):  # rejection: a draw must be a valid device (nothing else: see the docstring)
            values = {d.path: _draw(d, _get(device, d.path), rng) for d in spec.draws}
            try:
                out.append(_device(f"zoo-{i:02d}", values, device, spec.source, training))
                break
            except ConfigError as exc:  # e.g. breakaway friction drawn below Coulomb friction
                why = str(exc)
        else:
            raise ConfigError(f"{spec.source}: no valid draw for device {i} in {MAX_REDRAWS} tries (last: {why})")
    return out


def training_span(device: DeviceConfig, path: str) -> tuple[float, float]:
    """The [low, high] a path's value takes in training (its per-episode randomization; a fixed value otherwise)."""
    section, _, name = path.removeprefix("device.").rpartition(".")
    if section == "physics" and name in PARAM_NAMES:
        r = ranges(device)
        i = PARAM_NAMES.index(name)
        lo, hi = r.nominal[i] * r.scale[i]
        return float(min(lo, hi)), float(max(lo, hi))
    if section == "imu" and name == "noise_scale":
        spread = device.randomization.imu_noise
        return device.imu.noise_scale * (1 - spread), device.imu.noise_scale * (1 + spread)
    return _span(_get(device, path))


def with_values(device: DeviceConfig, values: Mapping[str, Any], source: str = "zoo", **changes: Any) -> DeviceConfig:
    """``device`` with each ``path: value`` set (paths start with ``device.``), validated like a config file."""
    data = to_dict(dataclasses.replace(device, **changes))
    for path, value in values.items():
        keys = _keys(path)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                raise ConfigError(f"{source}: {path}: unknown section {k!r}")
            node = node[k]
        if keys[-1] not in node:
            close = difflib.get_close_matches(keys[-1], list(node), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{source}: {path}: unknown field{hint}")
        node[keys[-1]] = _plain(value)
    return build(DeviceConfig, data, source=source, prefix="device")


def _device(name: str, values: dict[str, Any], device: DeviceConfig, source: str, training: DeviceConfig) -> ZooDevice:
    applied = with_values(device, values, source=f"{source}: {name}")
    factors, outside = {}, []
    for path in values:
        lo, hi = _span(_get(applied, path))
        base_lo, base_hi = _span(_get(device, path))
        factors[path] = hi / base_hi if base_hi else (lo / base_lo if base_lo else 1.0)
        t_lo, t_hi = training_span(training, path)
        if lo < t_lo * (1 - 1e-9) or hi > t_hi * (1 + 1e-9):
            outside.append(path)
    return ZooDevice(name, values, factors, tuple(outside))


def _draw(d: Draw, current: Any, rng: np.random.Generator) -> Any:
    if d.kind == "integer":
        k = int(rng.integers(int(d.low), int(d.high) + 1))
        return [k, k] if isinstance(current, tuple | list) else k
    f = float(np.exp(rng.uniform(np.log(d.low), np.log(d.high))))
    if isinstance(current, tuple | list):
        return [_round(min(1.0, v * f)) for v in current]  # ranges of fractions (noise sigma) stay <= 1
    return _round(current * f)


def _round(x: float) -> float:
    """Six significant digits: a zoo value reads back the same from YAML or a --set argument."""
    return float(f"{x:.6g}")


def _keys(path: str) -> list[str]:
    keys = path.split(".")
    if keys[0] != "device" or len(keys) < 2:
        raise ConfigError(f"zoo path {path!r}: expected device.<field>, e.g. device.physics.Dp")
    return keys[1:]


def _get(device: DeviceConfig, path: str) -> Any:
    node: Any = device
    for k in _keys(path):
        if not hasattr(node, k):
            raise ConfigError(f"zoo path {path!r}: unknown field {k!r}")
        node = getattr(node, k)
    return node


def _span(value: Any) -> tuple[float, float]:
    if isinstance(value, tuple | list):
        return float(min(value)), float(max(value))
    return float(value), float(value)


def _cell(d: ZooDevice, path: str) -> str:
    if path not in d.values:
        return ""
    value = d.values[path]
    text = str(value[0]) if isinstance(value, list) and len(set(value)) == 1 else f"{d.factors[path]:.2g}x"
    return text + ("*" if path in d.outside else "")


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe(zoo: Sequence[ZooDevice]) -> str:
    """A Markdown table: each device's values as multiples of the config's, those outside training starred."""
    paths = sorted({p for d in zoo for p in d.values})
    short = [p.rsplit(".", 1)[1] for p in paths]
    lines = ["| device | " + " | ".join(short) + " |", "|---|" + "---|" * len(paths)]
    for d in zoo:
        cells = [_cell(d, p) for p in paths]
        lines.append(f"| {d.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
