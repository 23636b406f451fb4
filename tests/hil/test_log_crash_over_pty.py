"""`hw run --twin --record` killed with SIGKILL mid-run: the log holds the run up to its last flush and still replays."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

from sensorimotor.hardware.log.mcaplog import DEFAULT_FLUSH_INTERVAL_S, TOPIC_COMMAND, LogReader, iter_log
from sensorimotor.hardware.log.replay import replay
from sensorimotor.hardware.model import OnnxPolicy

pytestmark = pytest.mark.hil
MARGIN_S = 0.5  # writer-thread lag on a loaded 2-core machine


def _latest_log_time(path: Path) -> int | None:
    """Newest log time among the commands the live log holds so far (None: none yet, or no file)."""
    if not path.exists():
        return None
    times = [m.log_time_ns for m in iter_log(path) if m.topic == TOPIC_COMMAND]
    return max(times) if times else None


def test_hw_run_killed_mid_run_leaves_a_log_that_replays(small_model: Path, tmp_path: Path) -> None:
    log = tmp_path / "run.mcap"
    cmd = [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
           "--duration", "10", "--record", str(log), *LINK_ONLY]  # fmt: skip
    # Its own session, so that the kill takes the twin with it; TMPDIR keeps the twin's leftovers here.
    proc = subprocess.Popen(cmd, start_new_session=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        deadline = time.monotonic() + 120  # startup guard (the twin's kernels may compile)
        while (first := _latest_log_time(log)) is None:
            assert proc.poll() is None and time.monotonic() < deadline, "hw run ended before logging a command"
            time.sleep(0.1)
        seen_at = time.monotonic()  # the loop is running, and the log held commands up to `first` by now
        time.sleep(2.0)
        killed_at = time.monotonic()
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader = LogReader(log)
    commands = sum(m.topic == TOPIC_COMMAND and not m.json()["safe"] for m in reader)  # model outputs replay
    assert reader.end is not None and not reader.end.complete and reader.end.last_log_time_ns is not None
    # Log times are the child's monotonic clock: while we waited (killed_at - seen_at) the run went on
    # logging; the file must have gained all of it but the last flush interval (plus the margin).
    gained_s = (reader.end.last_log_time_ns - first) / 1e9
    assert (killed_at - seen_at) - gained_s <= DEFAULT_FLUSH_INTERVAL_S + MARGIN_S
    result = replay(log, OnnxPolicy(small_model))
    assert result.truncated and len(result.cycles) == commands > 100
    assert result.max_divergence <= 1e-5
    assert result.warning is not None and result.warning.startswith("log ")
    assert f"replayed {commands} commands" in result.warning
