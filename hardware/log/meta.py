"""What a run log's metadata record says about the software: library versions and the model file.

:func:`library_versions` is added to every log by :class:`sensorimotor.hardware.log.mcaplog.LogWriter`;
:func:`model_metadata` is for the caller to pass (``LogWriter(path, metadata=model_metadata(model))``).
The ONNX ``metadata_props`` are read straight from the protobuf wire format, so neither ``onnx``
nor an onnxruntime session is needed. Only the standard library: this is the light runtime path.
"""

from __future__ import annotations

import hashlib
import platform
import tomllib
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

#: Distributions whose versions every log records (besides ``python``).
VERSIONED = ("sensorimotor", "numpy", "onnxruntime", "mcap", "pyserial")
NOT_INSTALLED = "not installed"

_METADATA_PROPS = 14  # ModelProto.metadata_props, a repeated StringStringEntryProto {key = 1, value = 2}


def library_versions() -> dict[str, str]:
    """``python`` and each of :data:`VERSIONED` -> its version (``"not installed"`` when missing)."""
    versions = {"python": platform.python_version()}
    for dist in VERSIONED:
        versions[dist] = _version(dist)
    return versions


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return _source_tree_version() if dist == "sensorimotor" else NOT_INSTALLED


def _source_tree_version() -> str:
    """The version in pyproject.toml when this package runs from a source tree that is not installed."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text())["project"]
        if project["name"] == "sensorimotor":
            return f"{project['version']} (source tree, not installed)"
    except (OSError, KeyError, TypeError, tomllib.TOMLDecodeError):
        pass
    return NOT_INSTALLED


def model_metadata(path: str | Path) -> dict[str, str]:
    """``model`` (the path), ``model_sha256`` and ``model_metadata.<key>`` for each ONNX metadata entry.

    A file whose metadata cannot be read (not ONNX) still gets its path and hash.
    """
    data = Path(path).read_bytes()
    meta = {"model": str(path), "model_sha256": hashlib.sha256(data).hexdigest()}
    for key, value in onnx_metadata_props(data).items():
        meta[f"model_metadata.{key}"] = value
    return meta


def onnx_metadata_props(data: bytes) -> dict[str, str]:
    """The ``metadata_props`` of a serialized ONNX ModelProto ({} when ``data`` is not one)."""
    props: dict[str, str] = {}
    try:
        for field, value in _fields(memoryview(data)):
            if field == _METADATA_PROPS and isinstance(value, memoryview):
                entry = {f: bytes(v).decode() for f, v in _fields(value) if isinstance(v, memoryview)}
                props[entry.get(1, "")] = entry.get(2, "")
    except (ValueError, UnicodeDecodeError):
        return {}
    return props


def _fields(view: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of each top-level field of a protobuf message; fixed-size fields are skipped."""
    at = 0
    while at < len(view):
        key, at = _varint(view, at)
        field, wire = key >> 3, key & 7
        if field == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, at = _varint(view, at)
            yield field, value
        elif wire == 2:
            size, at = _varint(view, at)
            if at + size > len(view):
                raise ValueError("length-delimited field runs past the end")
            yield field, view[at : at + size]
            at += size
        elif wire in (1, 5):  # fixed 64 / 32 bits
            at += 8 if wire == 1 else 4
            if at > len(view):
                raise ValueError("fixed-size field runs past the end")
        else:  # groups (3, 4) are not used by ONNX; anything else is not protobuf
            raise ValueError(f"wire type {wire}")


def _varint(view: memoryview, at: int) -> tuple[int, int]:
    value = shift = 0
    while at < len(view) and shift < 64:
        byte = view[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
    raise ValueError("truncated or over-long varint")
