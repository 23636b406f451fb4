"""Tests for sensorimotor.hardware.log.meta: the versions every log records and the model's identity."""

from __future__ import annotations

import hashlib
import platform
from importlib.metadata import version
from pathlib import Path

import pytest

from sensorimotor.hardware.log.mcaplog import LogWriter, read_metadata
from sensorimotor.hardware.log.meta import VERSIONED, library_versions, model_metadata, onnx_metadata_props


def test_every_log_records_the_library_versions(tmp_path: Path) -> None:
    path = tmp_path / "v.mcap"
    LogWriter(path, metadata={"port": "/dev/ttyUSB0"}).close()
    meta = read_metadata(path)
    assert meta["python"] == platform.python_version()
    for dist in ("numpy", "onnxruntime", "mcap", "pyserial"):
        assert meta[dist] == version(dist)
    assert meta["sensorimotor"].startswith(version("sensorimotor"))
    assert meta["port"] == "/dev/ttyUSB0" and meta["log_format"] == "2"
    assert set(VERSIONED) | {"python"} <= set(meta)


def test_a_distribution_that_is_not_installed_is_said_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sensorimotor.hardware.log.meta.VERSIONED", ("numpy", "no-such-distribution-xyz"))
    assert library_versions()["no-such-distribution-xyz"] == "not installed"


def test_uninstalled_source_tree_reports_its_pyproject_version() -> None:
    from sensorimotor.hardware.log.meta import _source_tree_version

    assert _source_tree_version() == f"{version('sensorimotor')} (source tree, not installed)"


def test_model_metadata_has_the_hash_and_the_onnx_metadata(small_model: Path) -> None:
    import onnx

    meta = model_metadata(small_model)
    assert meta["model"] == str(small_model)
    assert meta["model_sha256"] == hashlib.sha256(small_model.read_bytes()).hexdigest()
    expected = {p.key: p.value for p in onnx.load(str(small_model)).metadata_props}
    assert expected and {k.removeprefix("model_metadata."): v for k, v in meta.items() if "." in k} == expected


def test_a_file_that_is_not_onnx_gets_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"\xff\xff\xff not a protobuf")
    assert model_metadata(path) == {"model": str(path), "model_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert onnx_metadata_props(b"\x72\x05ab") == {}  # field 14 whose length runs past the end
