"""device.yaml: a device's values in the config's own field names (``sim identify`` writes one).

A ``device:`` section like the config's, holding only the values that differ (e.g.
``device.physics.Dp``), and an optional ``identification:`` section that records how they
were found (ignored when loading). ``sim robustness --device`` and ``sim train --from RUN
--device`` apply it over a run's config, validated like any config (the field named).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from sensorimotor.configs.schema import ConfigError, read_yaml

SECTIONS = ("device", "identification")


def read_device_file(path: Path) -> dict[str, Any]:
    """``{"device.physics.Dp": 0.0005, ...}``: every value of the file's ``device:`` section by its path."""
    data = read_yaml(path)
    unknown = [k for k in data if k not in SECTIONS]
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown section (a device file has {' and '.join(SECTIONS)})")
    device = data.get("device")
    if not isinstance(device, Mapping) or not device:
        raise ConfigError(f"{path}: no device: section with values (write it as sim identify does)")
    return dict(_flatten(device, "device"))


def _flatten(node: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in node.items():
        path = f"{prefix}.{key}"
        out += _flatten(value, path) if isinstance(value, Mapping) else [(path, value)]
    return out


def write_device_file(path: Path, values: Mapping[str, Any], identification: Mapping[str, Any], header: str) -> None:
    """Write ``values`` (flat paths) as a ``device:`` section, ``identification`` beside it, ``header`` as comments."""
    device: dict[str, Any] = {}
    for dotted, value in values.items():
        keys = dotted.removeprefix("device.").split(".")
        node = device
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = yaml.safe_dump({"device": device, "identification": dict(identification)}, sort_keys=False)
    path.write_text(comments + body)


def identified_device(path: Path) -> str | None:
    """The device name ``sim identify`` recorded (``identification.device``), or None for a hand-written file."""
    ident = read_yaml(path).get("identification")
    name = ident.get("device") if isinstance(ident, Mapping) else None
    return str(name) if name is not None else None
