"""Typed YAML configuration: dataclasses filled from YAML, validated at load.

Every command shares one YAML file (``configs/furuta.yaml``). Each layer owns the
dataclass of the section it uses (``device`` in :mod:`sensorimotor.sim.config`, ``loop`` here,
``perception`` / ``control`` higher up) and validates only that, so the light runtime
path never imports the training stack.

A bad value fails at load with the field's path in the message::

    configs/furuta.yaml: device.imu.rate_hz: expected an integer, got 'fast'

Field documentation lives in ``field(metadata={"help": ...})``; it doubles as the
configuration reference in ``docs/configs.md``.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message names the file and field."""


def doc(help_text: str, default: Any = dataclasses.MISSING, **kw: Any) -> Any:
    """A dataclass field with a help text (shown in docs and error messages)."""
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata={"help": help_text}, **kw)
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: default, metadata={"help": help_text})
    return dataclasses.field(default=default, metadata={"help": help_text})


def nested(cls: type, help_text: str) -> Any:
    """A nested-section field whose default is the section's defaults."""
    return dataclasses.field(default_factory=cls, metadata={"help": help_text})


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """Host control loop (``hw run``)."""

    rate_hz: float = doc("Control loop rate (cycles per second).", 100.0)
    handshake_timeout_s: float = doc(
        "Give up when the device does not describe itself within this time.", 1.0
    )
    sensor_timeout_s: float = doc(
        "Send a zero command and stop when no sensor frame arrives for this long.", 0.25
    )
    baudrate: int = doc("Serial baud rate (ignored by pseudo-terminals).", 2_000_000)
    v_limit: float = doc("Host-side voltage clamp (V); the tighter of this and the device range wins.", 5.0)

    def __post_init__(self) -> None:
        _check_positive(self, "rate_hz", "handshake_timeout_s", "sensor_timeout_s", "baudrate", "v_limit")


def _check_positive(obj: Any, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ValueError(f"{name}: must be > 0, got {value!r}")


# ----------------------------------------------------------------------------- loading


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into a ConfigError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file (try configs/furuta.yaml)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``override`` into ``base`` (override wins; mappings merge)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_preset(data: Mapping[str, Any], preset: str | None, source: str = "config") -> dict[str, Any]:
    """Merge ``presets.<preset>`` over the base; drop the ``presets`` section."""
    presets = data.get("presets") or {}
    base = {k: v for k, v in data.items() if k != "presets"}
    if preset is None:
        return base
    if preset not in presets:
        known = ", ".join(sorted(presets)) or "none defined"
        raise ConfigError(f"{source}: unknown preset {preset!r} (known: {known})")
    return deep_merge(base, presets[preset])


def load_section(path: str | Path, section: str, cls: type[T], preset: str | None = None) -> T:
    """Load one top-level section of a YAML config into dataclass ``cls``."""
    data = apply_preset(read_yaml(path), preset, str(path))
    raw = data.get(section, {})
    return build(cls, raw, source=str(path), prefix=section)


def build(cls: type[T], raw: Any, *, source: str = "config", prefix: str = "") -> T:
    """Build dataclass ``cls`` from plain data, raising ConfigError with the field path."""
    try:
        return _build(cls, raw, prefix)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix or '<root>'}: expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in raw:
        if key not in fields:
            close = difflib.get_close_matches(str(key), list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(fields)})"
            raise ConfigError(f"{_join(prefix, str(key))}: unknown field{hint}")
    kwargs = {}
    for name in fields:
        if name in raw:
            kwargs[name] = _coerce(hints[name], raw[name], _join(prefix, name))
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{prefix or '<root>'}: {exc}") from None
    except ValueError as exc:  # __post_init__ range checks
        raise ConfigError(f"{_join(prefix, str(exc))}") from None


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ConfigError(f"{path}: expected one of {choices}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin is tuple:
        return _coerce_tuple(tp, value, path)
    return _coerce_scalar(tp, value, path)


def _coerce_tuple(tp: Any, value: Any, path: str) -> tuple:
    args = get_args(tp)
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_coerce(args[0], v, f"{path}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise ConfigError(f"{path}: expected a list of {len(args)} values, got {len(value)}")
    return tuple(_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value)))


def _coerce_scalar(tp: Any, value: Any, path: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{path}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    raise ConfigError(f"{path}: unsupported field type {tp!r}")


def to_dict(obj: Any) -> Any:
    """A dataclass config as plain data (for the resolved-config YAML and reports)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


def field_docs(cls: type, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(path, help, default) for every leaf field: the configuration reference."""
    rows: list[tuple[str, str, Any]] = []
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        path = _join(prefix, f.name)
        if dataclasses.is_dataclass(hints[f.name]):
            rows.extend(field_docs(hints[f.name], path))
        else:
            rows.append((path, f.metadata.get("help", ""), to_dict(getattr(defaults, f.name))))
    return rows
