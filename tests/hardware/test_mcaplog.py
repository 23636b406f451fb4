"""Tests for sensorimotor.hardware.log.mcaplog: round trips, counts, schemas, the writer thread, truncated and invalid logs."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcap.reader import make_reader
from mcap.writer import Writer

from sensorimotor.hardware.log.mcaplog import (
    FRAME_ENCODING,
    SCHEMAS,
    TOPIC_COMMAND,
    TOPIC_DEVICE,
    TOPIC_ESTIMATE,
    TOPIC_EVENT,
    TOPIC_META,
    TOPIC_RX,
    TOPIC_TX,
    Backend,
    LogError,
    LogMessage,
    LogReader,
    LogWriter,
    iter_log,
    read_metadata,
    schema_problems,
    summarize_log,
)


@pytest.fixture(params=["thread", "process"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Both ways of writing: a thread of this process, and a forked child process (what hw run uses)."""
    return request.param  # type: ignore[no-any-return]


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


def test_counts_summary_and_metadata(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "run.mcap"
    with LogWriter(path, metadata={"sensorimotor": "0.1.0"}, backend=backend) as log:
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
    schema = summary.schemas[command.schema_id]
    assert (schema.name, schema.encoding) == ("sensorimotor.Command", "jsonschema")
    assert json.loads(schema.data) == SCHEMAS[TOPIC_COMMAND]


@pytest.mark.parametrize("topic", sorted(SCHEMAS))
def test_every_schema_is_one_foxglove_reads(topic: str) -> None:
    schema = SCHEMAS[topic]
    assert schema_problems(schema) == []
    assert schema["title"] and schema["properties"]


def test_schemas_list_the_fields_the_loop_writes() -> None:
    command = {"cycle", "t_host_ns", "volts", "requested_volts", "clamped", "safe", "sensor_seq", "image_seq"}
    assert set(SCHEMAS[TOPIC_COMMAND]["properties"]) == command
    assert SCHEMAS[TOPIC_COMMAND]["properties"]["volts"] == {
        "type": "array", "description": SCHEMAS[TOPIC_COMMAND]["properties"]["volts"]["description"],
        "items": {"type": "number"},
    }  # fmt: skip
    assert set(SCHEMAS[TOPIC_ESTIMATE]["properties"]["estimates"]["properties"]) >= {"arm_angle", "imu_sin"}
    assert set(SCHEMAS[TOPIC_EVENT]["required"]) == {"kind", "message"}
    assert SCHEMAS[TOPIC_EVENT]["additionalProperties"] is True  # events carry free-form extras
    assert set(SCHEMAS[TOPIC_META]["properties"]) == {"model", "rate_hz", "duration_s", "port", "twin"}
    assert set(SCHEMAS[TOPIC_DEVICE]["required"]) == {"spec", "limits"}


def test_estimate_names_are_the_perception_outputs() -> None:
    from sensorimotor.hardware.log.mcaplog import ESTIMATE_NAMES
    from sensorimotor.perception.config import OBS_NAMES

    assert tuple(ESTIMATE_NAMES) == tuple(OBS_NAMES)


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ({"type": "object"}, "must list its properties"),  # what every topic had before
        ({"type": "object", "properties": {"x": {"type": ["number", "null"]}}}, "schema.x: type"),
        ({"type": "object", "properties": {"x": {"type": "array", "items": {"type": "array"}}}}, "array items"),
        ({"type": "object", "properties": {"o": {"type": "object"}}}, "schema.o: an object schema"),
        ({"type": "object", "properties": {"s": {"type": "string", "contentEncoding": "hex"}}}, "contentEncoding"),
        ({"type": "array", "items": {"type": "number"}}, "type must be 'object'"),
    ],
)
def test_schema_problems_names_what_foxglove_rejects(schema: dict, problem: str) -> None:
    problems = schema_problems(schema)
    assert len(problems) == 1 and problem in problems[0]


def test_json_topic_without_a_schema_is_refused_unless_given_one(tmp_path: Path) -> None:
    path = tmp_path / "s.mcap"
    extra = {"title": "test.Gains", "type": "object", "properties": {"kp": {"type": "number"}}}
    with LogWriter(path) as log:
        with pytest.raises(ValueError, match=r"/control/gains has no JSON schema.*SCHEMAS.*schema="):
            log.write_json("/control/gains", {"kp": 1.0}, log_time_ns=0)
        with pytest.raises(ValueError, match="not one Foxglove reads.*must list its properties"):
            log.write_json("/control/gains", {"kp": 1.0}, log_time_ns=0, schema={"title": "x", "type": "object"})
        with pytest.raises(ValueError, match="SCHEMAS; pass none"):
            log.write_json(TOPIC_EVENT, {"kind": "k", "message": "m"}, log_time_ns=0, schema=extra)
        log.write_json("/control/gains", {"kp": 1.0}, log_time_ns=1, schema=extra)
        log.write_json("/control/gains", {"kp": 2.0}, log_time_ns=2)  # registered: no schema needed again
        with pytest.raises(ValueError, match="another schema"):
            log.write_json("/control/gains", {"kp": 3.0}, log_time_ns=3, schema={**extra, "title": "test.Other"})
    with path.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    (schema,) = summary.schemas.values()
    assert schema.name == "test.Gains" and json.loads(schema.data) == extra
    assert [m.json()["kp"] for m in iter_log(path)] == [1.0, 2.0]


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


def test_writer_that_never_closed_is_readable_up_to_its_last_flush(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "crash.mcap"
    log = LogWriter(path, chunk_size=1 << 20, flush_interval_s=60, metadata={"sensorimotor": "0.1.0"}, backend=backend)
    assert read_metadata(path)["sensorimotor"] == "0.1.0"  # header and metadata are on disk at once
    sent = [bytes([i]) * 40 for i in range(40)]
    for i, body in enumerate(sent[:30]):
        log.write_frame(TOPIC_RX, body, log_time_ns=i, seq=i)
    log.flush()  # closes the open chunk although it is far from full
    for i, body in enumerate(sent[30:], start=30):
        log.write_frame(TOPIC_RX, body, log_time_ns=i, seq=i)
    reader = LogReader(path)
    assert [m.data for m in reader] == sent[:30]  # no footer; the last 10 wait for the next flush
    assert reader.end is not None and not reader.end.complete
    assert reader.end.offset == reader.end.size and reader.end.last_log_time_ns == 29
    assert "ends without its footer" in reader.end.describe()
    log.close()
    log.close()  # idempotent
    reader = LogReader(path)
    assert [m.data for m in reader] == sent
    assert reader.end is not None and reader.end.complete and reader.end.messages == 40


def test_flush_interval_bounds_what_an_unclosed_writer_holds_back(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "live.mcap"
    log = LogWriter(path, chunk_size=1 << 20, flush_interval_s=0.05, backend=backend)
    try:
        log.write_frame(TOPIC_TX, b"\x01\x02", log_time_ns=5, seq=1)
        # No flush() and a chunk far from full: only the interval can push it to the file.
        deadline = time.monotonic() + 10  # a hang guard on a loaded machine, not the bound itself
        while not list(iter_log(path)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [m.data for m in iter_log(path)] == [b"\x01\x02"]
    finally:
        log.close()


def test_messages_keep_call_order_and_counts_across_threads(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "threads.mcap"
    n, threads = 300, 4
    with LogWriter(path, chunk_size=2048, backend=backend) as log:

        def produce(k: int) -> None:
            for i in range(n):
                log.write_json(TOPIC_EVENT, {"kind": f"t{k}", "message": str(i)}, log_time_ns=i, seq=i)
                log.write_frame(TOPIC_TX, bytes([k, i % 256]), log_time_ns=i, seq=i)

        workers = [threading.Thread(target=produce, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert log.counts == {TOPIC_EVENT: n * threads, TOPIC_TX: n * threads} == summarize_log(path)
    for k in range(threads):
        events = [
            int(m.json()["message"]) for m in iter_log(path) if m.topic == TOPIC_EVENT and m.json()["kind"] == f"t{k}"
        ]
        assert events == list(range(n))
        frames = [m.data for m in iter_log(path) if m.topic == TOPIC_TX and m.data[0] == k]
        assert frames == [bytes([k, i % 256]) for i in range(n)]


def test_encoding_happens_off_the_callers_thread_and_its_failure_surfaces(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "bad.mcap"
    log = LogWriter(path, backend=backend)
    log.write_json(TOPIC_EVENT, {"kind": "ok", "message": "kept"}, log_time_ns=1)
    log.write_json(TOPIC_EVENT, {"kind": "bad", "message": object()}, log_time_ns=2)  # returns: not encoded yet
    with pytest.raises(LogError, match=r"bad\.mcap.*recording stopped.*/events at log time 2 ns.*object"):
        log.flush()
    with pytest.raises(LogError, match="recording stopped"):
        log.write_json(TOPIC_EVENT, {"kind": "later", "message": "refused"}, log_time_ns=3)
    log.close()  # already reported: no second raise
    reader = LogReader(path)
    assert [m.json()["kind"] for m in reader] == ["ok"]
    assert reader.end is not None and reader.end.complete  # the file itself was fine: it got its footer


def test_failure_not_yet_reported_is_raised_by_close(tmp_path: Path, backend: Backend) -> None:
    log = LogWriter(tmp_path / "c.mcap", backend=backend)
    log.write_json(TOPIC_EVENT, {"kind": "bad", "message": {1j}}, log_time_ns=2)
    with pytest.raises(LogError, match=r"c\.mcap.*recording stopped"):
        log.close()


def test_unwritable_path_fails_at_once_naming_it(tmp_path: Path, backend: Backend) -> None:
    with pytest.raises(LogError, match=r"cannot create the log .*nowhere/run\.mcap: No such file"):
        LogWriter(tmp_path / "nowhere" / "run.mcap", backend=backend)
    if Path("/dev/full").exists():  # a real full disk
        with pytest.raises(LogError, match="cannot write the log /dev/full: No space left on device"):
            LogWriter("/dev/full", backend=backend)


def test_truncated_log_says_where_it_was_cut(sample: tuple[Path, list[LogMessage]], tmp_path: Path) -> None:
    path, expected = sample
    end, end_time = _chunk_ends(path)[2]
    reader = LogReader(_truncated(path, tmp_path / "a.mcap", end))
    assert [m for m in reader] == [m for m in expected if m.log_time_ns <= end_time]
    assert reader.end is not None and not reader.end.complete and not reader.end.cut_mid_record
    assert reader.end.last_log_time_ns == end_time
    reader = LogReader(_truncated(path, tmp_path / "b.mcap", end + 5))
    list(reader)
    assert (
        reader.end is not None and reader.end.cut_mid_record and (reader.end.offset, reader.end.size) == (end, end + 5)
    )
    assert f"cut in the middle of a record at byte {end} of {end + 5}" in reader.end.describe()
    reader = LogReader(path)
    list(reader)
    assert reader.end is not None and reader.end.complete and reader.end.messages == len(expected)


def test_mcap_of_another_profile_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ros.mcap"
    with path.open("wb") as f:
        writer = Writer(f)
        writer.start(profile="ros2")
        writer.finish()
    with pytest.raises(LogError, match=r"ros\.mcap is an MCAP file of profile 'ros2', not a log written by `hw run"):
        list(iter_log(path))


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


def test_numpy_values_are_serialized(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "np.mcap"
    obj = {
        "cycle": np.int64(3),
        "volts": np.array([0.5, -1.25], dtype=np.float32),
        "clamped": np.bool_(True),
        "estimates": {"angle": np.float32(0.25), "speed": np.float64(2.0)},
    }
    with LogWriter(path, compression="none", backend=backend) as log:
        log.write_json(TOPIC_COMMAND, obj, log_time_ns=1)
    (message,) = iter_log(path)
    estimates = {"angle": 0.25, "speed": 2.0}
    assert message.data == _compact({"cycle": 3, "volts": [0.5, -1.25], "clamped": True, "estimates": estimates})


@pytest.mark.parametrize("compression", ["zstd", "lz4", "none"])
def test_compressions_round_trip(tmp_path: Path, compression: str, backend: Backend) -> None:
    path = tmp_path / f"{compression}.mcap"
    with LogWriter(path, chunk_size=64, compression=compression, backend=backend) as log:  # type: ignore[arg-type]
        for i in range(10):
            log.write_frame(TOPIC_TX, bytes(range(i)), log_time_ns=i, seq=i)
    assert [m.data for m in iter_log(path)] == [bytes(range(i)) for i in range(10)]


def test_bad_arguments_are_rejected(tmp_path: Path, backend: Backend) -> None:
    with pytest.raises(ValueError, match="compression"):
        LogWriter(tmp_path / "x.mcap", compression="gzip", backend=backend)  # type: ignore[arg-type]
    with LogWriter(tmp_path / "y.mcap", backend=backend) as log:
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
