"""`hw run` started in the background still stops safely on SIGINT and SIGHUP.

A script's `hw run ... &` starts it with SIGINT ignored, and `nohup` with SIGHUP ignored;
Python installs no KeyboardInterrupt handler for a signal it inherits ignored. The run must
install its handlers itself: the signal still ends it with 0 V, STOP, a closed log and the
exit status of docs/protocol.md section 5.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

from sensorimotor.hardware.framing import decode_body
from sensorimotor.hardware.log.mcaplog import TOPIC_TX, LogReader
from sensorimotor.hardware.messages import Command, MsgType, parse_message

pytestmark = pytest.mark.hil


def _as_a_background_job() -> None:
    """preexec_fn: the signal dispositions of `nohup hw run ... &` started from a script."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `&` does in a non-interactive shell
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # what nohup does


def _wait_for(predicate, timeout_s: float) -> bool:
    """Poll ``predicate`` until true; a hang guard, not a timing assertion."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.mark.parametrize(
    ("sig", "status", "said"),
    [(signal.SIGINT, 130, "interrupted (Ctrl-C)"), (signal.SIGHUP, 143, "stopped by SIGHUP")],
    ids=["SIGINT", "SIGHUP"],
)
def test_a_background_run_stops_safely_on_the_signal_it_inherited_ignored(
    small_model: Path, tmp_path: Path, sig: signal.Signals, status: int, said: str
) -> None:  # fmt: skip
    log, summary = tmp_path / "run.mcap", tmp_path / "run.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
         "--duration", "60", "--record", str(log), "--json", str(summary), *LINK_ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_as_a_background_job,
    )  # fmt: skip
    try:
        assert _wait_for(lambda: log.exists() and log.stat().st_size > 20_000, 60)  # streaming and recording
        proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=45)
        except subprocess.TimeoutExpired:
            pytest.fail(f"hw run still running 45 s after {sig.name}: the signal was ignored")
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == status, out + err
    assert said in out and "Traceback" not in err, out + err
    s = json.loads(summary.read_text())
    assert s["exit_code"] == status and s["device_acknowledged_stop"]
    reader = LogReader(log)
    tx = [decode_body(m.data) for m in reader if m.topic == TOPIC_TX]
    assert reader.end is not None and reader.end.complete  # closed: summary and footer written
    assert tx[-1].msg_type == MsgType.STOP and parse_message(tx[-2]) == Command((0.0,))  # 0 V, then STOP
