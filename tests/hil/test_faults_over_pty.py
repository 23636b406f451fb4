"""Faults over a real pty with the twin: a sensor stall, SIGTERM, kill -9, a busy port, no permission, unwritable output."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hil_options import LINK_ONLY, LINK_ONLY_LOOP

from sensorimotor.cli.twin_process import TwinProcess
from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.framing import decode_body
from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, TOPIC_EVENT, TOPIC_TX, LogWriter, iter_log
from sensorimotor.hardware.log.replay import replay
from sensorimotor.hardware.loop import ControlLoop
from sensorimotor.hardware.messages import Command, MsgType, parse_message
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.hardware.safety import actuator_limits
from sensorimotor.hardware.transport import SerialTransport

pytestmark = pytest.mark.hil


def _wait_for(predicate, timeout_s: float = 10.0) -> bool:
    """Poll ``predicate`` until true; a hang guard, not a timing assertion."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _hw_run_on(
    port: str, model: Path, preexec_fn: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    """``hw run --port PORT`` for 1 s, as a user runs it; its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--port", port, "--model", str(model), "--duration", "1"],
        capture_output=True, text=True, timeout=60, preexec_fn=preexec_fn,
    )  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_sensor_stall_gets_the_safe_command_never_a_stale_output_and_the_model_resumes(
    small_model, config_path, tmp_path
) -> None:  # fmt: skip
    twin = TwinProcess(config_path, seed=5)
    log = tmp_path / "run.mcap"
    transport = SerialTransport(twin.port)
    recorder = LogWriter(log)
    client = DeviceClient(transport, recorder)
    policy = OnnxPolicy(small_model)
    info = client.connect(1.0)
    limits = actuator_limits([(a.min, a.max) for a in info.actuators], 5.0)
    loop = ControlLoop(client, policy, 100.0, limits, LINK_ONLY_LOOP, recorder)
    client.start()
    # The device's sensor path freezes for 0.2 s (shorter than sensor_timeout_s 0.5), then comes back.
    threading.Timer(0.6, os.kill, (twin.proc.pid, signal.SIGSTOP)).start()
    threading.Timer(0.8, os.kill, (twin.proc.pid, signal.SIGCONT)).start()
    try:
        stats = loop.run(2.0)
        loop.finish()
    finally:
        recorder.close()
        transport.close()
        twin.stop()
    assert stats.failsafe_events >= 1 and stats.failsafe_cycles >= 5  # ~20 periods frozen
    commands = [m.json() for m in iter_log(log) if m.topic == TOPIC_COMMAND]
    model = [c for c in commands if not c["safe"]]
    stall = [c for c in commands if c["safe"] == "sensor_stall"]
    assert stall and all(c["volts"] == [0.0] for c in stall)
    seqs = [c["sensor_seq"] for c in model]
    assert len(seqs) == len(set(seqs))  # every model output from a fresh frame, none from a stale window
    assert model[-1]["cycle"] > stall[-1]["cycle"]  # the model resumed after the stall
    events = [m.json()["kind"] for m in iter_log(log) if m.topic == TOPIC_EVENT]
    assert "failsafe" in events and "failsafe_end" in events
    assert replay(log, policy).max_divergence <= 1e-5  # safe cycles and gaps replay exactly too


def _start_recording_run(model: Path, log: Path, summary: Path) -> subprocess.Popen:
    """``hw run --twin`` for 30 s, recording to ``log``, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(model),
         "--duration", "30", "--record", str(log), "--json", str(summary), *LINK_ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_sigterm_winds_down_safely_and_the_twin_goes_with_it(small_model, tmp_path) -> None:
    log, summary = tmp_path / "run.mcap", tmp_path / "s.json"
    proc = _start_recording_run(small_model, log, summary)
    assert _wait_for(lambda: log.exists() and log.stat().st_size > 20_000, 60)  # streaming and recording
    twin_pids = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM" in out and "Traceback" not in err
    s = json.loads(summary.read_text())
    assert s["exit_code"] == 143 and s["device_acknowledged_stop"]
    tx = [parse_message(decode_body(m.data)) for m in iter_log(log) if m.topic == TOPIC_TX]
    assert decode_body([m for m in iter_log(log) if m.topic == TOPIC_TX][-1].data).msg_type == MsgType.STOP
    assert tx[-2] == Command((0.0,))  # 0 V, then STOP
    assert twin_pids and all(_wait_for(lambda p=p: not _alive(p)) for p in twin_pids)


def test_kill_9_of_hw_run_does_not_orphan_the_twin(small_model, tmp_path) -> None:
    log = tmp_path / "run.mcap"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
         "--duration", "30", "--record", str(log), *LINK_ONLY],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert _wait_for(lambda: log.exists() and log.stat().st_size > 20_000, 60)
    twin_pids = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    proc.kill()
    proc.wait(timeout=10)
    assert twin_pids and all(_wait_for(lambda p=p: not _alive(p)) for p in twin_pids)


def test_a_twin_that_dies_mid_run_is_named_in_the_summary(small_model, tmp_path) -> None:
    """The twin killed by a real SIGKILL while streaming writes no verdict: the host stops on the silence and
    its summary says how the twin ended instead of a verdict."""
    log, summary = tmp_path / "run.mcap", tmp_path / "s.json"
    proc = _start_recording_run(small_model, log, summary)
    assert _wait_for(lambda: log.exists() and log.stat().st_size > 20_000, 60)
    children = [int(p) for p in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    twin = [p for p in children if b"sensorimotor.cli.twin" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert len(twin) == 1, children  # not the log writer's process
    os.kill(twin[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert "the twin ended without its verdict (killed by SIGKILL" in out, out
    assert json.loads(summary.read_text())["twin"]["twin_error"].startswith("the twin ended without its verdict")


def test_a_second_hw_run_on_a_busy_port_is_refused_naming_the_holder(small_model, config_path) -> None:
    twin = TwinProcess(config_path, seed=0)
    first = SerialTransport(twin.port)  # this test process holds the port
    try:
        proc = _hw_run_on(twin.port, small_model)
    finally:
        first.close()
        twin.stop()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{twin.port} is busy: it is held by pid {os.getpid()}" in proc.stderr


def _without_dac_override() -> None:
    """preexec_fn: root loses the capabilities that let it ignore file permissions (for the exec'd program).

    Dropped from the bounding set, CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH are not in the
    permitted set after exec: a mode-000 port then refuses root as it refuses a user.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_port_without_permission_is_refused_naming_the_group(small_model) -> None:
    """A real EACCES: the twin's pty with no access for others, opened by an unprivileged user."""
    twin = TwinProcess(None, seed=0)
    try:
        os.chmod(twin.port, 0)  # like /dev/ttyUSB0 (root:dialout 0660) to a user outside the group
        proc = _hw_run_on(twin.port, small_model, preexec_fn=_without_dac_override if os.geteuid() == 0 else None)
    finally:
        twin.stop()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"no permission to open {twin.port}: add your user to the 'dialout' group" in proc.stderr


def test_unwritable_outputs_are_refused_before_the_run(small_model, tmp_path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o500)
    cases = [("--record", tmp_path / "nowhere" / "r.mcap", "does not exist"), ("--json", tmp_path, "is a folder")]
    if os.geteuid() != 0:  # root may write anywhere: permissions cannot be tested as root
        cases.append(("--json", locked / "s.json", "not writable"))
    try:
        for flag, path, why in cases:
            t0 = time.monotonic()
            proc = subprocess.run(
                [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
                 "--duration", "30", flag, str(path)],
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
            assert str(path) in proc.stderr and why in proc.stderr
            assert time.monotonic() - t0 < 30  # refused up front, not after the 30 s run (a hang guard)
    finally:
        locked.chmod(0o700)


def test_hw_info_and_monitor_read_the_device_without_controlling_it() -> None:
    proc = subprocess.run([sys.executable, "-m", "sensorimotor.cli.hw", "info", "--twin"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        "device 'qube-twin'" in proc.stdout and "watchdog 100 ms" in proc.stdout and "motor [V] -5 .. 5" in proc.stdout
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "monitor", "--twin", "--duration", "1.6", "--every", "0.5"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "SENSOR" in line and "accel_z" in line]
    assert len(lines) >= 2 and all("watchdog holds 0 V" in line for line in lines[1:])  # no command was ever sent
    proc = subprocess.run([sys.executable, "-m", "sensorimotor.cli.hw", "info", "--port", "/dev/ttyNOPE"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 2 and "/dev/ttyNOPE does not exist" in proc.stderr and "Traceback" not in proc.stderr


def test_garbage_only_at_the_handshake_suggests_the_baud_rate(small_model) -> None:
    """A device talking at another baud rate: bytes arrive, none forms a frame."""
    import pty as ptymod

    master, slave = ptymod.openpty()
    stop = threading.Event()

    def babble() -> None:  # what a UART at the wrong rate delivers: plausible bytes, never a frame
        rng = np.random.default_rng(0)
        while not stop.is_set():
            os.write(master, rng.integers(1, 256, 64, dtype=np.uint8).tobytes())  # no 0x00: no frame ends
            time.sleep(0.01)

    thread = threading.Thread(target=babble, daemon=True)
    thread.start()
    try:
        proc = _hw_run_on(os.ttyname(slave), small_model)
    finally:
        stop.set()
        thread.join()
        os.close(master)
        os.close(slave)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "not one valid frame: a wrong baud rate (set loop.baudrate" in proc.stderr, proc.stderr


def test_replay_to_a_device_re_drives_the_recorded_commands_through_the_loop(small_model, tmp_path) -> None:
    log, summary = tmp_path / "run.mcap", tmp_path / "s.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--lockstep", "--model", str(small_model),
         "--duration", "1.5", "--record", str(log), *LINK_ONLY],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recorded = [m.json()["volts"] for m in iter_log(log) if m.topic == TOPIC_COMMAND]
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "replay", str(log), "--twin", "--ease", "0.5",
         "--json", str(summary), *LINK_ONLY],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"driving {len(recorded)} recorded commands at 100 Hz (0.5 s ease-in)" in proc.stdout
    s = json.loads(summary.read_text())
    assert abs(s["cycles"] - len(recorded)) <= 2 and s["device_commands_applied"] == s["commands_sent"]
    # A device other than the one the log was recorded on is refused before anything is sent.
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "replay", str(log), "--twin",
         "--set", "device.encoder_cpr=4096"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2 and "the log does not fit device" in proc.stderr and "encoders[0]" in proc.stderr


def test_re_driven_commands_are_eased_in() -> None:
    from sensorimotor.hardware.log.redrive import RecordedCommands, Recording
    from sensorimotor.sim.config import DeviceConfig

    rec = Recording([(2.0,)] * 10, 100.0, DeviceConfig().spec())
    policy = RecordedCommands(rec, ease_s=0.04)  # 4 cycles
    sent = [float(policy.run({})[0][0]) for _ in range(12)]
    assert sent[:5] == [0.5, 1.0, 1.5, 2.0, 2.0] and sent[10:] == [0.0, 0.0]  # ramp, then the recording, then 0 V


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-5", "fast"])
def test_nonsense_rate_is_refused_in_one_line(small_model, value: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--twin", "--model", str(small_model),
         "--rate", value],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "argument --rate:" in proc.stderr and value in proc.stderr
