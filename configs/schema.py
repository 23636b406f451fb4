"""Typed YAML configuration: dataclasses filled from YAML, validated at load.

Every command shares one YAML file (the default, ``configs/furuta.yaml``, ships inside the
package beside this module). Each layer owns the dataclass of the section it uses (``device``
in :mod:`sensorimotor.sim.config`, ``loop`` in :mod:`sensorimotor.hardware.config`,
``perception`` / ``rl`` higher up) and validates only that, so the light runtime path never
imports the training stack. This module is the framework they share and imports nothing of
the package.

A field declares its help text and its allowed range in one place::

    rate_hz: float = doc("Control loop rate (Hz).", 100.0, gt=0)

and a bad value fails at load with the file, the field's path and the allowed range::

    configs/furuta.yaml: device.stream_rate_hz: 0 is out of range (allowed: > 0)

Cross-field rules (a rate that must divide another, an ordered range) live in each
section's ``check()``. Values come from the YAML file, then ``presets.<name>``, then
``--set a.b.c=VALUE`` overrides (parsed as YAML, validated like the file). The field
table in ``docs/configs.md`` is generated from the same metadata (``make docs``).
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.metadata
import importlib.util
import math
import sys
import types
import typing
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")

#: The config shipped with the package: commands use it when no --config is given.
DEFAULT_CONFIG = Path(__file__).resolve().parent / "furuta.yaml"


class ConfigError(ValueError):
    """A configuration file or value is wrong; the message names the file and field."""


def doc(
    help_text: str, default: Any = dataclasses.MISSING, *, gt: float | None = None, ge: float | None = None,
    lt: float | None = None, le: float | None = None,
) -> Any:  # fmt: skip
    """A dataclass field with a help text and optional bounds (checked at construction).

    Bounds apply to a number, or to every element of a tuple of numbers.
    """
    bounds = {k: v for k, v in (("gt", gt), ("ge", ge), ("lt", lt), ("le", le)) if v is not None}
    metadata = {"help": help_text, "bounds": bounds}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, (list, dict)) or dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=lambda: default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def nested(cls: type, help_text: str) -> Any:
    """A nested-section field whose default is the section's defaults."""
    return dataclasses.field(default_factory=cls, metadata={"help": help_text})


_SYMBOLS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def bounds_text(bounds: Mapping[str, float]) -> str:
    """Human form of a field's bounds, e.g. ``> 0`` or ``>= 0 and <= 1``."""
    return " and ".join(
        f"{_SYMBOLS[k]} {v:g}" if isinstance(v, float) else f"{_SYMBOLS[k]} {v}" for k, v in bounds.items()
    )


def _in_bounds(value: float, bounds: Mapping[str, float]) -> bool:
    checks = {"gt": value > bounds.get("gt", 0), "ge": value >= bounds.get("ge", 0),
              "lt": value < bounds.get("lt", 0), "le": value <= bounds.get("le", 0)}  # fmt: skip
    return all(checks[k] for k in bounds)  # NaN fails every comparison, so it is refused


class Section:
    """Mixin of every config dataclass: field bounds and finiteness, then ``check()``.

    ``check()`` holds cross-field rules; it raises ``ValueError("field: what is wrong")``
    and the loader prefixes the section path and the file.
    """

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            items = value if isinstance(value, tuple) else (value,)
            for item in items:
                if isinstance(item, float) and not math.isfinite(item):
                    raise ValueError(f"{f.name}: must be a finite number, got {item!r}")
            bounds = f.metadata.get("bounds")
            if bounds and not all(_in_bounds(v, bounds) for v in items if isinstance(v, (int, float))):
                raise ValueError(f"{f.name}: {value!r} is out of range (allowed: {bounds_text(bounds)})")
        self.check()

    def check(self) -> None:
        """Cross-field rules; override in sections that have them."""


class Choice(Section):
    """A section whose class its ``type`` key picks, from a registry of subclasses (LeRobot's
    ``@RobotConfig.register_subclass``).

    The registry's root names an entry-point group and a default::

        class DeviceSection(Choice, registry="sensorimotor.devices", default="furuta"): ...

        @DeviceSection.register_subclass("furuta")
        class FurutaConfig(DeviceSection): ...

    and a config selects one with ``device: {type: furuta, ...}``. A name the registry does not hold is
    looked up in the entry-point group (a third-party package declares
    ``[project.entry-points."sensorimotor.devices"] mydevice = "mypkg.config:MyDeviceConfig"``), then
    read as ``module:Class`` or ``path/to/file.py:Class`` (a device in a folder, no package).
    """

    _root: ClassVar[type[Choice]]
    _choices: ClassVar[dict[str, type[Choice]]]
    _group: ClassVar[str]
    _default: ClassVar[str]
    _name: ClassVar[str | None] = None

    def __init_subclass__(cls, registry: str | None = None, default: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if registry is not None:
            if default is None:
                raise TypeError(f"{cls.__name__}: a registry needs a default choice")
            cls._root, cls._choices, cls._group, cls._default = cls, {}, registry, default

    @property
    def type_name(self) -> str:
        """The name this section's class is registered under (its ``type`` key)."""
        return self._name or type(self).__name__

    @classmethod
    def is_root(cls) -> bool:
        return getattr(cls, "_root", None) is cls

    @classmethod
    def register_subclass(cls, name: str) -> Callable[[type[C]], type[C]]:
        """Class decorator: register a subclass of this registry's root under ``name``."""

        def register(sub: type[C]) -> type[C]:
            root = cls._root
            if not (isinstance(sub, type) and issubclass(sub, root)):
                raise TypeError(f"{sub!r} is not a subclass of {root.__name__}")
            known = root._choices.get(name)
            if known is not None and known is not sub:
                raise ValueError(
                    f"{root.__name__}: {name!r} is already registered ({known.__module__}.{known.__name__})"
                )
            root._choices[name] = sub
            sub._name = name
            return sub

        return register

    @classmethod
    def choices(cls) -> list[str]:
        """The registered names and those the entry-point group offers."""
        offered = {ep.name for ep in importlib.metadata.entry_points(group=cls._root._group)}
        return sorted(set(cls._root._choices) | offered)

    @classmethod
    def lookup(cls, name: str) -> type[Choice]:
        """The class registered as ``name``: registered, then the entry-point group, then ``module:Class``."""
        root = cls._root
        if name in root._choices:
            return root._choices[name]
        found = importlib.metadata.entry_points(group=root._group, name=name)
        if found:
            obj = _load(next(iter(found)).value, name)
        elif ":" in name:
            obj = _load(name, name)
        else:
            close = difflib.get_close_matches(name, root.choices(), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"type: unknown {name!r} ({hint}known: {', '.join(root.choices())}; one of your own: "
                             f"an entry point in the group {root._group!r}, or module:Class, or file.py:Class)")  # fmt: skip
        if not (isinstance(obj, type) and issubclass(obj, root)):
            raise ValueError(f"type: {name!r} is {obj!r}, not a subclass of {root.__name__}")
        if obj._name is None:  # loaded by its path or entry point, not registered by its module: register it
            root.register_subclass(name)(obj)
        return obj


C = TypeVar("C", bound=Choice)


def _load(target: str, name: str) -> Any:
    """``module:attr`` or ``path/to/file.py:attr``; ValueError naming what failed."""
    where, _, attr = target.rpartition(":")
    try:
        if where.endswith(".py"):
            path = Path(where).expanduser().resolve()
            if not path.is_file():
                raise ValueError(f"type: {name!r}: no such file {path}")
            module_name = f"sensorimotor_plugin_{path.stem}_{zlib.crc32(str(path).encode()):08x}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # dataclasses look their module up while building the class
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except ValueError:
        raise
    except Exception as exc:  # the plug-in's own import failed: say which and how
        raise ValueError(f"type: {name!r}: cannot import {where} ({type(exc).__name__}: {exc})") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"type: {name!r}: {where} has no {attr!r}") from None


# ----------------------------------------------------------------------------- loading


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, turning every failure into a ConfigError naming the file."""
    path = Path(path)
    if path.is_dir():
        inside = path / "config.yaml"  # a run folder holds the config it was trained with
        hint = f"did you mean {inside}?" if inside.is_file() else "give a YAML file"
        raise ConfigError(f"{path}: is a directory, not a config file; {hint}")
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file (omit --config to use the default shipped with sensorimotor)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}:{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level, got {type(data).__name__}")
    return data


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[8, 0]"]`` -> ``{"a": {"b": 1}, "c": [8, 0]}``; values are parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items:
        path, sep, text = item.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(k.strip() for k in keys):
            raise ConfigError(f"--set {item!r}: expected a.b.c=VALUE, e.g. --set device.stream_rate_hz=100")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: {text!r} is not a valid YAML value") from None
        node = out
        for key in keys[:-1]:
            child = node.setdefault(key.strip(), {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {key} is set to a value elsewhere and cannot also be a section")
            node = child
        node[keys[-1].strip()] = value
    return out


def resolve(
    path: str | Path | None, preset: str | None = None, overrides: Sequence[str] = ()
) -> tuple[dict[str, Any], str]:
    """(data, source label): the YAML file with a preset and ``--set`` overrides merged in.

    ``path`` None means :data:`DEFAULT_CONFIG`. The label names the file and the overrides,
    for error messages.
    """
    path = Path(path) if path is not None else DEFAULT_CONFIG
    raw = read_yaml(path)
    check_top_level(raw, str(path))
    data = apply_preset(raw, preset, str(path))
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    extra = parse_overrides(overrides)
    check_top_level(extra, source)
    return deep_merge(data, extra), source


#: The top-level keys of a config: the fields of ``sensorimotor.control.config.ExperimentConfig``
#: (not imported here: it pulls in the training stack; a test keeps the two equal), and ``presets``.
TOP_LEVEL_KEYS = ("seed", "device", "task", "perception", "pretrain", "rl", "classical", "evaluation", "loop")


def check_top_level(data: Mapping[str, Any], source: str) -> None:
    """Refuse an unknown top-level section, in the file or in one of its presets, as a typo in a section is.

    A command reads only the sections it needs, so without this a misspelt ``lop:`` would
    silently run with the ``loop`` defaults.
    """
    presets = data.get("presets")
    scopes = [("", data)] + [
        (f"presets.{name}.", p) for name, p in (presets.items() if isinstance(presets, Mapping) else ())
        if isinstance(p, Mapping)
    ]  # fmt: skip
    for prefix, scope in scopes:
        for key in scope:
            if key in TOP_LEVEL_KEYS or (key == "presets" and not prefix):
                continue
            close = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(TOP_LEVEL_KEYS)}, presets"
            raise ConfigError(f"{source}: {prefix}{key}: unknown section ({hint})")


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


def load_section(
    path: str | Path | None, section: str, cls: type[T], preset: str | None = None, overrides: Sequence[str] = ()
) -> T:
    """Load one top-level section of a YAML config into dataclass ``cls`` (``path`` None: the default)."""
    data, source = resolve(path, preset, overrides)
    return build(cls, data.get(section, {}), source=source, prefix=section)


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
    if isinstance(cls, type) and issubclass(cls, Choice):
        cls, raw = _choose(cls, raw, prefix)
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


def _choose(cls: type[Choice], raw: Mapping[str, Any], prefix: str) -> tuple[type, dict[str, Any]]:
    """The class a Choice section's ``type`` key picks, and the section without that key."""
    rest = dict(raw)
    name = rest.pop("type", None)
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"{_join(prefix, 'type')}: expected a name, got {name!r}")
    try:
        chosen = cls.lookup(name) if name is not None else (cls if not cls.is_root() else cls.lookup(cls._default))
    except ValueError as exc:
        raise ConfigError(_join(prefix, str(exc))) from None
    if not issubclass(chosen, cls):  # a field typed with one kind of section: this code serves only that kind
        raise ConfigError(f"{_join(prefix, 'type')}: {name!r} is not a {cls._name!r} section, the only kind read here")
    return chosen, rest


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
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
    return tuple(_coerce(a, v, f"{path}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=False)))


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
        chosen: dict[str, Any] = (
            {"type": obj.type_name} if isinstance(obj, Choice) else {}
        )  # read back as the same class
        return chosen | {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_dict(v) for v in obj]
    return obj


def field_docs(cls: type, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(path, help, default, allowed range) for every leaf field: the configuration reference."""
    rows: list[tuple[str, str, Any, str]] = []
    if issubclass(cls, Choice) and prefix:
        help_text = (f"Which kind of `{prefix}` section this is: a registered name, an entry point in the group "
                     f"`{cls._root._group}`, `module:Class` or `file.py:Class`.")  # fmt: skip
        rows.append((_join(prefix, "type"), help_text, cls._name or cls._default, ", ".join(cls.choices())))
    hints = typing.get_type_hints(cls)
    defaults = cls()
    for f in dataclasses.fields(cls):
        path = _join(prefix, f.name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            rows.extend(field_docs(tp, path))  # type: ignore[arg-type]
            continue
        allowed = bounds_text(f.metadata.get("bounds") or {})
        if get_origin(tp) is Literal:
            allowed = ", ".join(repr(a) for a in get_args(tp))
        rows.append((path, f.metadata.get("help", ""), to_dict(getattr(defaults, f.name)), allowed))
    return rows
