"""The loop's scheduling priority over a real pty: real-time where the OS permits it, given back after, never required.

A failsafe deadline the loop misses because other work holds the cores is late however
the loop is written (docs/protocol.md, section 5); real-time priority is what keeps it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hil_options import LINK_ONLY, LINK_ONLY_LOOP

from sensorimotor.cli.twin_process import TwinProcess
from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.loop import ControlLoop
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.hardware.safety import actuator_limits
from sensorimotor.hardware.transport import SerialTransport

pytestmark = pytest.mark.hil

# hw run as an unprivileged user runs it: without CAP_SYS_NICE, so no real-time priority and no lower nice value
UNPRIVILEGED = ["setpriv", "--inh-caps=-sys_nice", "--bounding-set=-sys_nice", "--"]


def _fifo_permitted() -> bool:
    """Whether this process may take SCHED_FIFO (asked in a child, so the test's own scheduling stays as it is)."""
    code = "import os; os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def _scheduling() -> tuple[int, int]:
    """(policy, nice) of the calling thread; the policy without its reset-on-fork flag."""
    return os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK, os.getpriority(os.PRIO_PROCESS, 0)


def test_the_loop_takes_real_time_priority_where_permitted_and_gives_it_back(small_model, config_path) -> None:
    twin = TwinProcess(config_path, seed=7)
    transport = SerialTransport(twin.port)
    client = DeviceClient(transport)
    policy = OnnxPolicy(small_model)
    spec = client.connect(1.0)
    loop = ControlLoop(client, policy, 100.0, actuator_limits([(a.min, a.max) for a in spec.actuators], 5.0),
                       LINK_ONLY_LOOP)  # fmt: skip
    during: list[tuple[int, int]] = []
    loop.progress = lambda *_: during.append(_scheduling())  # called from the loop's thread once a second
    before = _scheduling()
    client.start()
    try:
        stats = loop.run(1.5)
        loop.finish()
    finally:
        transport.close()
        twin.stop()
    assert _scheduling() == before  # given back: what runs after the loop (closing the log, the summary) is normal
    assert stats.commands > 0 and during
    if _fifo_permitted():
        assert stats.scheduling.startswith("SCHED_FIFO") and all(policy == os.SCHED_FIFO for policy, _ in during)
    else:
        assert stats.scheduling == "normal" or stats.scheduling.startswith("nice")


@pytest.mark.skipif(shutil.which("setpriv") is None or os.geteuid() != 0, reason="needs setpriv and root")
def test_without_the_permission_hw_run_runs_at_normal_priority_and_says_so(small_model, tmp_path: Path) -> None:
    summary = tmp_path / "run.json"
    proc = subprocess.run(
        [*UNPRIVILEGED, sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model",
         str(small_model), "--duration", "1.5", "--json", str(summary), *LINK_ONLY],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    s = json.loads(summary.read_text())
    assert s["scheduling"] == "normal" and s["commands"] > 0
