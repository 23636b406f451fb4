"""The process backend of LogWriter (hardware/log/process.py): batching, a lost writer, signals, inherited descriptors."""

from __future__ import annotations

import fcntl
import os
import signal
import time
from pathlib import Path

import pytest

from sensorimotor.hardware.log.mcaplog import TOPIC_EVENT, TOPIC_RX, TOPIC_TX, LogError, LogReader, LogWriter, iter_log


def _wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.01)
    raise AssertionError(f"process {pid} did not end")


def test_batched_messages_wait_for_deliver_and_keep_their_order(tmp_path: Path) -> None:
    path = tmp_path / "batched.mcap"
    log = LogWriter(path, backend="process", batched=True, flush_interval_s=0.01)
    try:
        for i in range(5):
            log.write_frame(TOPIC_TX, bytes([i]), log_time_ns=i, seq=i)
        time.sleep(0.2)  # 20 flush intervals: had the child been handed them, they would be in the file
        assert list(iter_log(path)) == []
        log.deliver()
        deadline = time.monotonic() + 10
        while len(list(iter_log(path))) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [m.data for m in iter_log(path)] == [bytes([i]) for i in range(5)]
        log.write_frame(TOPIC_TX, b"\x05", log_time_ns=5, seq=5)
        log.flush()  # a flush hands over what is held first
        assert [m.data for m in iter_log(path)] == [bytes([i]) for i in range(6)]
        assert log.counts == {TOPIC_TX: 6}
    finally:
        log.close()


def test_a_lost_writer_process_is_reported_naming_the_file_and_the_caller_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "lost.mcap"
    log = LogWriter(path, backend="process")
    log.write_frame(TOPIC_TX, b"\x01", log_time_ns=1, seq=1)
    log.flush()
    assert log.process_id is not None
    os.kill(log.process_id, signal.SIGKILL)
    _wait_gone(log.process_id)
    with pytest.raises(LogError, match=r"lost\.mcap: the recording stopped: the log writer process was lost"):
        for i in range(100):  # the pipe breaks at the first write after the child is gone
            log.write_frame(TOPIC_TX, b"\x02", log_time_ns=2 + i, seq=2)
        log.flush()
    with pytest.raises(LogError, match="recording stopped"):
        log.write_frame(TOPIC_TX, b"\x03", log_time_ns=200, seq=3)
    log.close()  # already reported: no second raise, no hang
    assert [m.data for m in iter_log(path)] == [b"\x01"]  # what was flushed before the loss


def test_the_writer_ignores_the_signals_its_parent_handles(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole process group: the parent closes the log, the writer must not die first."""
    path = tmp_path / "signals.mcap"
    with LogWriter(path, backend="process") as log:
        assert log.process_id is not None
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            os.kill(log.process_id, sig)
        time.sleep(0.1)
        log.write_json(TOPIC_EVENT, {"kind": "after", "message": "signals"}, log_time_ns=1)
    reader = LogReader(path)
    assert [m.json()["kind"] for m in reader] == ["after"]
    assert reader.end is not None and reader.end.complete


def test_the_writer_holds_no_descriptor_of_its_parent_but_the_log(tmp_path: Path) -> None:
    """A serial port's exclusive lock must end with the process that took it, not outlive it in the writer."""
    port = tmp_path / "port"
    port.write_bytes(b"")
    with port.open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with LogWriter(tmp_path / "fds.mcap", backend="process") as log:
            assert log.process_id is not None
            log.flush()  # the child has started serving, so it has closed what it inherited
            targets = {
                os.readlink(f"/proc/{log.process_id}/fd/{fd}") for fd in os.listdir(f"/proc/{log.process_id}/fd")
            }
    assert str(port) not in targets
    assert str(tmp_path / "fds.mcap") in targets


def test_an_object_that_cannot_be_handed_over_stops_the_recording_at_the_call(tmp_path: Path) -> None:
    path = tmp_path / "unpicklable.mcap"
    log = LogWriter(path, backend="process")
    log.write_frame(TOPIC_RX, b"\x01", log_time_ns=1, seq=1)
    with pytest.raises(LogError, match=r"recording stopped: cannot write the message on /events at log time 2 ns"):
        log.write_json(TOPIC_EVENT, {"kind": "bad", "message": lambda: 0}, log_time_ns=2)
    log.close()
    reader = LogReader(path)
    assert [m.data for m in reader if m.topic == TOPIC_RX] == [b"\x01"]
    assert reader.end is not None and reader.end.complete
