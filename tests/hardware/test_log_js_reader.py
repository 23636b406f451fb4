"""A second implementation reads our logs: Foxglove's TypeScript reader (@mcap/core, under node) against the Python reader.

``tests/js`` pins @mcap/core and fzstd (its zstd decompression) in package-lock.json; the first
test of a session runs ``npm ci`` there when ``tests/js/node_modules`` is missing. Skipped only
when node or npm is not on PATH.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from sensorimotor.hardware.log.mcaplog import (
    FRAME_ENCODING,
    SCHEMAS,
    TOPIC_RX,
    TOPIC_TX,
    LogReader,
    read_metadata,
    summarize_log,
)

JS = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="session")
def read_log_js() -> list[str]:
    """The command that prints what @mcap/core reads in a log (installs the pinned packages once)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are needed to run Foxglove's MCAP reader (@mcap/core); they are not on PATH")
    if not (JS / "node_modules" / "@mcap" / "core").is_dir():
        proc = subprocess.run(
            [npm, "ci", "--prefix", str(JS), "--no-audit", "--no-fund"], capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, f"npm ci in {JS} failed:\n{proc.stderr}"
    return [node, str(JS / "read_log.mjs")]


def _read(command: list[str], log: Path) -> dict[str, Any]:
    proc = subprocess.run([*command, str(log)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _channels(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["topic"]: c for c in found["channels"]}


def test_foxglove_reader_sees_the_same_channels_schemas_and_counts(read_log_js, recorded_run) -> None:
    counts = summarize_log(recorded_run.log)
    assert counts == recorded_run.counts  # what the writer says it wrote is what the Python reader finds
    assert set(counts) == {TOPIC_RX, TOPIC_TX, *SCHEMAS}  # a real run fills every topic
    js = _read(read_log_js, recorded_run.log)
    indexed, streamed = js["indexed"], js["streamed"]
    assert indexed["profile"] == streamed["profile"] == "sensorimotor"
    assert indexed["counts"] == indexed["statistics"] == streamed["counts"] == counts
    assert indexed["jsonFailures"] == streamed["jsonFailures"] == []  # every JSON message parses in JS too
    assert streamed["done"] is True
    assert indexed["metadata"] == {"sensorimotor": read_metadata(recorded_run.log)}
    channels = _channels(indexed)
    assert channels == _channels(streamed)
    for topic in (TOPIC_RX, TOPIC_TX):
        assert channels[topic] == {"topic": topic, "messageEncoding": FRAME_ENCODING, "schemaId": 0}
    for topic, schema in SCHEMAS.items():
        found = channels[topic]
        assert found["messageEncoding"] == "json" and found["schemaEncoding"] == "jsonschema"
        assert found["schemaName"] == schema["title"]
        assert found["schemaParses"] and found["schemaHasProperties"], topic


@pytest.mark.parametrize("cut", ["no footer", "mid-record"])
def test_foxglove_streaming_reader_agrees_on_a_crashed_log(read_log_js, recorded_run, tmp_path: Path, cut: str) -> None:
    data = recorded_run.log.read_bytes()
    size = len(data) // 2
    if cut == "no footer":  # end exactly after a whole record: where the Python reader stopped at `size`
        probe = tmp_path / "probe.mcap"
        probe.write_bytes(data[:size])
        reader = LogReader(probe)
        list(reader)
        assert reader.end is not None
        size = reader.end.offset
    log = tmp_path / "crash.mcap"
    log.write_bytes(data[:size])
    counts = summarize_log(log)
    assert 0 < sum(counts.values()) < sum(recorded_run.counts.values())
    js = _read(read_log_js, log)
    assert "error" in js["indexed"]  # no summary and footer: Foxglove reads such a file as a stream
    assert js["streamed"]["counts"] == counts and js["streamed"]["done"] is False
