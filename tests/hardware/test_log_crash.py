"""A writer killed with SIGKILL loses at most its flush interval; a writer the disk refuses says so, naming the file."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from log_writer_child import event, frame  # pytest's default (prepend) import mode puts tests/hardware on sys.path

from sensorimotor.hardware.log.mcaplog import TOPIC_EVENT, TOPIC_TX, LogReader, encode_json, iter_log

CHILD = Path(__file__).with_name("log_writer_child.py")
FLUSH_S = 0.2
MARGIN_S = 0.3  # the writer thread's lag on a loaded 2-core machine


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True)


def test_sigkill_loses_only_the_messages_of_the_last_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "killed.mcap"
    proc = _child("steady", str(path), str(FLUSH_S), "thread")
    assert proc.stdout is not None
    written: list[float] = []  # written[i]: when message pair i had been handed to the writer
    try:
        while not written or written[-1] - written[0] < 2.0:
            _, i, _, t = proc.stdout.readline().split()
            assert int(i) == len(written)
            written.append(float(t))
        killed_at = time.monotonic()
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    reader = LogReader(path)
    got = [(m.topic, m.sequence, m.data) for m in reader]
    assert reader.end is not None and not reader.end.complete  # no footer: it was killed
    # The messages in call order, byte for byte, up to where the file ends (possibly between the two of a pair).
    expected = [
        (topic, i, data)
        for i in range(len(got) // 2 + 1)
        for topic, data in ((TOPIC_EVENT, encode_json(event(i))), (TOPIC_TX, frame(i)))
    ]
    assert got == expected[: len(got)]
    k = len(got) // 2  # complete pairs
    # Every pair written more than a flush interval (plus the margin) before the kill is there.
    old_enough = sum(t < killed_at - FLUSH_S - MARGIN_S for t in written)
    assert old_enough > 500 and k >= old_enough


def test_sigkill_of_the_process_and_its_log_writer_loses_only_the_last_flush_interval(tmp_path: Path) -> None:
    """The process backend, killed as `kill -9` of a process group (a shell's job, hw run's session) does."""
    path = tmp_path / "killed.mcap"
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), "steady", str(path), str(FLUSH_S), "process"],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    written: list[float] = []
    try:
        assert proc.stdout.readline().startswith("writer ")
        while not written or written[-1] - written[0] < 2.0:
            *_, t = proc.stdout.readline().split()
            written.append(float(t))
        killed_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader = LogReader(path)
    pairs = sum(m.topic == TOPIC_TX for m in reader)
    assert reader.end is not None and not reader.end.complete
    old_enough = sum(t < killed_at - FLUSH_S - MARGIN_S for t in written)
    assert old_enough > 500 and pairs >= old_enough


def _closed(path: Path, pid: int) -> bool:
    """The writer `pid` is gone (or a zombie) and the log has its footer."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        state = "gone"
    reader = LogReader(path)
    for _ in reader:
        pass
    return state in ("gone", "Z") and reader.end is not None and reader.end.complete


def test_parent_killed_alone_leaves_its_log_writer_to_close_the_log_with_everything(tmp_path: Path) -> None:
    path = tmp_path / "orphan.mcap"
    proc = _child("steady", str(path), "60", "process")  # no interval flush: only closing saves the messages
    assert proc.stdout is not None
    try:
        writer_pid = int(proc.stdout.readline().split()[1])
        for _ in range(200):
            last = int(proc.stdout.readline().split()[1])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # The writer is not our child (it was the killed process's): wait for it to close the file.
        deadline = time.monotonic() + 30
        while not _closed(path, writer_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    reader = LogReader(path)
    messages = list(reader)
    assert reader.end is not None and reader.end.complete  # summary and footer: the writer closed it
    frames = [m.data for m in messages if m.topic == TOPIC_TX]
    assert frames[: last + 1] == [frame(i) for i in range(last + 1)]  # all it was handed, in order
    assert messages[-1].topic == TOPIC_EVENT and messages[-1].json()["kind"] == "log_orphaned"


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_program_that_dies_of_an_exception_without_closing_still_leaves_a_complete_log(
    tmp_path: Path, backend: str
) -> None:  # fmt: skip
    path = tmp_path / "unclosed.mcap"
    proc = subprocess.run(
        [sys.executable, str(CHILD), "unclosed", str(path), backend], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1 and "RuntimeError: the program fails" in proc.stderr
    reader = LogReader(path)
    assert [m.data for m in reader if m.topic == TOPIC_TX] == [frame(i) for i in range(100)]
    assert reader.end is not None and reader.end.complete  # closed at exit: summary and footer written


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_disk_refusing_a_write_surfaces_on_the_next_write_naming_the_file(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "full.mcap"
    proc = _child("fsize", str(path), "write", backend)
    out, _ = proc.communicate(timeout=120)
    lines = out.splitlines()
    assert lines[-1] == "done" and len(lines) == 2, out  # raised once by a write; close() does not repeat it
    assert lines[0] == f"raised: cannot write the log {path}: File too large; the recording stopped there"
    assert list(iter_log(path))  # what reached the file before the refusal is readable


@pytest.mark.parametrize("backend", ["thread", "process"])
def test_disk_refusing_the_last_writes_surfaces_at_close(tmp_path: Path, backend: str) -> None:
    path = tmp_path / "full.mcap"
    proc = _child("fsize", str(path), "close", backend)
    out, _ = proc.communicate(timeout=120)
    assert out.splitlines() == [
        f"raised: cannot write the log {path}: File too large; the recording stopped there",
        "done",
    ]
