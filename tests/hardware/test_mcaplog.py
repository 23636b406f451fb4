"""Tests for sensorimotor.hardware.mcaplog: round trips, counts, truncated and invalid logs."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader

from sensorimotor.hardware.mcaplog import (
    FRAME_ENCODING,
    TOPIC_COMMAND,
    TOPIC_EVENT,
    TOPIC_RX,
    TOPIC_TX,
    LogError,
    LogMessage,
    LogWriter,
    iter_log,
    read_metadata,
    summarize_log,
)


def _compact(obj: object) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _write_sample(path: Path, n: int = 60, chunk_size: int = 512) -> list[LogMessage]:
    """Write `n` cycles of rx/tx frames and a command; return the expected messages."""
    expected: list[LogMessage] = []
    with LogWriter(path, chunk_size=chunk_size, metadata={"sensorimotor": "0.1.0"}) as log:
        for i in range(n):
            t = 1_000 * (3 * i)
            rx, tx = bytes([i % 256, 0xAA]) * 9, bytes([0x55, i % 256]) * 5
            cmd = {"cycle": i, "volts": [0.25 * i, -1.5], "clamped": i % 2 == 0}
            log.write_frame(TOPIC_RX, rx, log_time_ns=t, seq=i)
            log.write_frame(TOPIC_TX, tx, log_time_ns=t + 1_000, seq=i + 7)
            log.write_json(TOPIC_COMMAND, cmd, log_time_ns=t + 2_000, seq=i)
            expected += [
                LogMessage(TOPIC_RX, t, i, rx),
                LogMessage(TOPIC_TX, t + 1_000, i + 7, tx),
                LogMessage(TOPIC_COMMAND, t + 2_000, i, _compact(cmd)),
            ]
    return expected


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[LogMessage]]:
    path = tmp_path_factory.mktemp("log") / "run.mcap"
    return path, _write_sample(path)


def _truncated(src: Path, dst: Path, size: int) -> Path:
    dst.write_bytes(src.read_bytes()[:size])
    return dst


def _chunk_ends(path: Path) -> list[tuple[int, int]]:
    """(byte offset just past each chunk, log time of its last message), via the index."""
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    chunks = summary.chunk_indexes
    return [(c.chunk_start_offset + c.chunk_length, c.message_end_time) for c in chunks]


def test_round_trip_preserves_bytes_values_and_order(sample: tuple[Path, list[LogMessage]]) -> None:
    path, expected = sample
    got = list(iter_log(path))
    assert got == expected
    assert got[2].json() == {"cycle": 0, "volts": [0.0, -1.5], "clamped": True}


def test_counts_summary_and_metadata(tmp_path: Path) -> None:
    path = tmp_path / "run.mcap"
    with LogWriter(path, metadata={"sensorimotor": "0.1.0"}) as log:
        for i in range(5):
            log.write_frame(TOPIC_RX, b"\x01\x02", log_time_ns=i, seq=i)
        log.write_json(TOPIC_EVENT, {"kind": "start", "message": "go"}, log_time_ns=9)
    assert log.counts == {TOPIC_RX: 5, TOPIC_EVENT: 1}
    assert summarize_log(path) == log.counts
    assert read_metadata(path)["sensorimotor"] == "0.1.0"


def test_channels_are_foxglove_friendly(sample: tuple[Path, list[LogMessage]]) -> None:
    path, _ = sample
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    by_topic = {c.topic: c for c in summary.channels.values()}
    assert by_topic[TOPIC_RX].message_encoding == FRAME_ENCODING
    assert by_topic[TOPIC_RX].schema_id == 0
    command = by_topic[TOPIC_COMMAND]
    assert command.message_encoding == "json"
    assert summary.schemas[command.schema_id].encoding == "jsonschema"


def test_sample_spans_several_chunks(sample: tuple[Path, list[LogMessage]]) -> None:
    assert len(_chunk_ends(sample[0])) >= 5


def test_truncation_at_chunk_boundaries_yields_whole_chunks(
    sample: tuple[Path, list[LogMessage]], tmp_path: Path
) -> None:
    path, expected = sample
    previous_end_time = -1
    for end, end_time in _chunk_ends(path):
        complete = [m for m in expected if m.log_time_ns <= end_time]
        before = [m for m in expected if m.log_time_ns <= previous_end_time]
        assert list(iter_log(_truncated(path, tmp_path / "a.mcap", end))) == complete
        assert list(iter_log(_truncated(path, tmp_path / "b.mcap", end - 1))) == before
        previous_end_time = end_time


def test_truncation_anywhere_yields_a_growing_prefix(sample: tuple[Path, list[LogMessage]], tmp_path: Path) -> None:
    path, expected = sample
    size = path.stat().st_size
    offsets = [*range(0, 40), *range(40, size, 37), size - 1, size]
    lengths = []
    for offset in offsets:
        got = list(iter_log(_truncated(path, tmp_path / "t.mcap", offset)))
        assert got == expected[: len(got)]
        lengths.append(len(got))
    assert lengths == sorted(lengths)
    assert lengths[-2:] == [len(expected), len(expected)]  # only the footer/magic is missing


def test_writer_that_never_closed_is_readable(tmp_path: Path) -> None:
    path = tmp_path / "crash.mcap"
    log = LogWriter(path, chunk_size=256, metadata={"sensorimotor": "0.1.0"})
    sent = [bytes([i]) * 40 for i in range(40)]
    for i, body in enumerate(sent):
        log.write_frame(TOPIC_RX, body, log_time_ns=i, seq=i)
    got = [m.data for m in iter_log(path)]  # footer missing, open chunk still in memory
    assert 0 < len(got) < len(sent)
    assert got == sent[: len(got)]
    assert read_metadata(path)["sensorimotor"] == "0.1.0"
    log.close()
    log.close()  # idempotent
    assert [m.data for m in iter_log(path)] == sent


def test_not_mcap_raises_log_error_naming_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.mcap"
    path.write_text("hello, this is not a log\n")
    with pytest.raises(LogError, match=r"notes\.mcap.*bad magic"):
        list(iter_log(path))
    with pytest.raises(LogError, match="notes.mcap"):
        summarize_log(path)


def test_missing_file_raises_log_error_naming_file(tmp_path: Path) -> None:
    with pytest.raises(LogError, match=r"nowhere\.mcap.*does not exist"):
        list(iter_log(tmp_path / "nowhere.mcap"))
    with pytest.raises(LogError, match="nowhere.mcap"):
        read_metadata(tmp_path / "nowhere.mcap")


def test_corrupt_chunk_raises_log_error(sample: tuple[Path, list[LogMessage]], tmp_path: Path) -> None:
    path, _ = sample
    data = bytearray(path.read_bytes())
    end, _ = _chunk_ends(path)[1]
    data[end - 20] ^= 0xFF  # inside the compressed data of the second chunk
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(bytes(data))
    with pytest.raises(LogError, match=r"bad\.mcap.*corrupt"):
        list(iter_log(bad))


def test_numpy_values_are_serialized(tmp_path: Path) -> None:
    path = tmp_path / "np.mcap"
    obj = {
        "cycle": np.int64(3),
        "volts": np.array([0.5, -1.25], dtype=np.float32),
        "clamped": np.bool_(True),
        "estimates": {"angle": np.float32(0.25), "speed": np.float64(2.0)},
    }
    with LogWriter(path, compression="none") as log:
        log.write_json(TOPIC_COMMAND, obj, log_time_ns=1)
    (message,) = iter_log(path)
    estimates = {"angle": 0.25, "speed": 2.0}
    assert message.data == _compact({"cycle": 3, "volts": [0.5, -1.25], "clamped": True, "estimates": estimates})


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_compressions_round_trip(tmp_path: Path, compression: str) -> None:
    path = tmp_path / f"{compression}.mcap"
    with LogWriter(path, chunk_size=64, compression=compression) as log:  # type: ignore[arg-type]
        for i in range(10):
            log.write_frame(TOPIC_TX, bytes(range(i)), log_time_ns=i, seq=i)
    assert [m.data for m in iter_log(path)] == [bytes(range(i)) for i in range(10)]


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="compression"):
        LogWriter(tmp_path / "x.mcap", compression="gzip")  # type: ignore[arg-type]
    with LogWriter(tmp_path / "y.mcap") as log:
        log.write_frame(TOPIC_RX, b"\x00", log_time_ns=0, seq=0)
        with pytest.raises(ValueError, match="json"):
            log.write_json(TOPIC_RX, {}, log_time_ns=1)
        with pytest.raises(ValueError, match="uint32"):
            log.write_frame(TOPIC_RX, b"\x00", log_time_ns=2, seq=-1)
    with pytest.raises(ValueError, match="closed"):
        log.write_frame(TOPIC_RX, b"\x00", log_time_ns=3, seq=0)


_frames = st.lists(
    st.tuples(st.sampled_from([TOPIC_RX, TOPIC_TX]), st.binary(max_size=64), st.integers(0, 2**32 - 1)),
    max_size=40,
)


@settings(max_examples=30, deadline=None)
@given(frames=_frames, chunk_size=st.integers(16, 2048))
def test_any_frames_round_trip(frames: list[tuple[str, bytes, int]], chunk_size: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.mcap"
        with LogWriter(path, chunk_size=chunk_size) as log:
            for t, (topic, body, seq) in enumerate(frames):
                log.write_frame(topic, body, log_time_ns=t, seq=seq)
        got = [(m.topic, m.data, m.sequence, m.log_time_ns) for m in iter_log(path)]
    assert got == [(topic, body, seq, t) for t, (topic, body, seq) in enumerate(frames)]
