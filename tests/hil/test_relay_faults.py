"""A bad cable, for real: the twin on a pty, a fault-injecting relay, `hw run` on the relay's pty.

Each direction is corrupted separately (sim/relay.py). The properties: a corrupted frame
is never accepted; the decoder resyncs on the next valid frame; duplicated or reordered
frames never reach the model; a command path lost for a moment trips the device's watchdog
and the host reports it and calls the run unhealthy; a command path lost for good (or a
silent device) ends the run with 0 V, STOP and exit 3 soon after.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

from sensorimotor.cli.twin_process import TwinProcess
from sensorimotor.hardware.device import frame_body
from sensorimotor.hardware.framing import StreamDecoder, decode_body
from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, TOPIC_RX, TOPIC_TX, iter_log
from sensorimotor.hardware.log.replay import replay
from sensorimotor.hardware.messages import Command, Stop, parse_message
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.sim.relay import Faults, Relay

pytestmark = pytest.mark.hil


RATE_HZ = 100.0  # hw run's default control rate: one COMMAND per cycle
STATUS_PERIOD_S = 1.0  # the twin sends STATUS once a second while streaming (and on every flag change)
STATUS_TIMEOUT_S = 2.5  # loop.status_timeout_s, the default


def _run_through_relay(
    model: Path, config: Path, tmp_path: Path, to_host: str = "", to_device: str = "", duration: float = 3.0,
    twin_set: tuple[str, ...] = (), run_set: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess, dict, Relay, Path]:  # fmt: skip
    twin = TwinProcess(config, seed=11, overrides=twin_set)
    relay = Relay(twin.port, Faults.parse(to_host), Faults.parse(to_device), seed=3).start()
    log, summary = tmp_path / "run.mcap", tmp_path / "run.json"
    overrides = [arg for item in run_set for arg in ("--set", item)]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--port", relay.port, "--model", str(model),
             "--duration", str(duration), "--record", str(log), "--json", str(summary), *LINK_ONLY, *overrides],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        relay.stop()
        truth = twin.stop()
    s = json.loads(summary.read_text()) if summary.exists() else {}
    s["twin"] = truth
    return proc, s, relay, log


def test_corrupted_frames_are_never_accepted_and_the_decoder_resyncs(small_model, config_path, tmp_path) -> None:
    proc, s, relay, log = _run_through_relay(
        small_model, config_path, tmp_path, to_host="flip=0.05,drop=0.05,garbage=0.05"
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # ran to the end, but a lossy link is not healthy
    assert "frames lost or corrupted" in proc.stdout
    c = relay.to_host.counts
    hurt = c["flip"] + c["drop"] + c["garbage"]
    assert hurt > 20  # the faults really happened
    sent = {frame_body(f) for f in StreamDecoder().feed(b"".join(relay.to_host.intact))}
    accepted = [m.data for m in iter_log(log) if m.topic == TOPIC_RX]
    assert all(body in sent for body in accepted)  # 0 corrupted frames accepted
    # Resync: a fault costs its own frame and at most the next (garbage glued to it); every other frame arrives.
    assert len(accepted) >= c["frames"] - 2 * hurt
    assert s["commands"] > 0 and s["device_commands_applied"] == s["commands_sent"]


def test_duplicated_and_reordered_frames_never_reach_the_model(small_model, config_path, tmp_path) -> None:
    proc, s, relay, log = _run_through_relay(small_model, config_path, tmp_path, to_host="dup=0.1,reorder=0.05")
    assert relay.to_host.counts["dup"] > 10 and relay.to_host.counts["reorder"] > 5
    assert s["frames_duplicated"] > 0 and s["frames_out_of_order"] > 0, proc.stdout
    model = [m.json() for m in iter_log(log) if m.topic == TOPIC_COMMAND and not m.json()["safe"]]
    seqs = [c["sensor_seq"] for c in model]
    assert len(model) > 100 and len(seqs) == len(set(seqs))  # one model output per fresh frame
    assert replay(log, OnnxPolicy(small_model)).max_divergence <= 1e-5


def test_lost_command_path_trips_the_device_watchdog_and_the_host_says_so(small_model, config_path, tmp_path) -> None:
    proc, s, relay, _ = _run_through_relay(small_model, config_path, tmp_path, to_device="stall=1.0+0.5")
    assert relay.to_device.counts["stalled"] > 20  # ~50 commands never reached the device
    assert s["twin"]["watchdog_trips"] >= 1  # the device zeroed its motor (after watchdog_ms)
    assert s["device_watchdog_trips"] >= 1  # ... and the host heard it from STATUS
    assert s["device_commands_applied"] < s["commands_sent"]
    assert proc.returncode == 1 and "watchdog tripped" in proc.stdout and "applied" in proc.stdout, proc.stdout


def test_a_device_that_disappears_and_comes_back_is_reconnected(small_model, config_path, tmp_path) -> None:
    """USB unplugged and plugged back: the host's pty vanishes, a new one appears at the same path."""
    twin = TwinProcess(config_path, seed=12)
    link = tmp_path / "ttyUSB0"
    relay = Relay(twin.port, link=link).start()
    log, summary = tmp_path / "run.mcap", tmp_path / "run.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--port", str(link), "--model", str(small_model),
         "--duration", "4", "--record", str(log), "--json", str(summary), *LINK_ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while relay.to_device.counts["frames"] < 100 and time.monotonic() < deadline:  # streaming for a while
            time.sleep(0.05)
        relay.stop()  # unplugged
        time.sleep(0.5)
        relay = Relay(twin.port, link=link).start()  # plugged back in, same path
        out, err = proc.communicate(timeout=60)
    finally:
        relay.stop()
        twin.stop()
    s = json.loads(summary.read_text())
    assert s["reconnects"] == 1, out + err
    events = [m.json()["kind"] for m in iter_log(log) if m.topic == "/events"]
    assert events.index("port_lost") < events.index("reconnected")
    assert "came back 1 time" in out
    # Streaming resumed: model commands after the reconnect.
    t_back = next(m.log_time_ns for m in iter_log(log) if m.topic == "/events" and m.json()["kind"] == "reconnected")
    assert any(m.log_time_ns > t_back and not m.json()["safe"] for m in iter_log(log) if m.topic == TOPIC_COMMAND)


def test_a_device_that_does_not_come_back_ends_the_run_clearly(small_model, config_path, tmp_path) -> None:
    twin = TwinProcess(config_path, seed=13)
    link = tmp_path / "ttyUSB0"
    relay = Relay(twin.port, link=link).start()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--port", str(link), "--model", str(small_model),
         "--duration", "20", *LINK_ONLY, "--set", "loop.reconnect_s=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while relay.to_device.counts["frames"] < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        relay.stop()
        link.unlink()  # gone for good
        out, err = proc.communicate(timeout=60)
    finally:
        twin.stop()
    assert proc.returncode == 3, out + err
    assert "did not come back within" in out and "Traceback" not in err


def test_lost_sensor_path_gets_the_safe_command_before_the_device_watchdog(small_model, config_path, tmp_path) -> None:
    """Sensor frames stop for 0.2 s, commands still flow: the host holds 0 V itself, the device never has to."""
    proc, s, relay, log = _run_through_relay(small_model, config_path, tmp_path, to_host="stall=1.0+0.2")
    assert proc.returncode == 1 and "frames lost" in proc.stdout  # the stalled frames count as lost: unhealthy
    assert relay.to_host.counts["stalled"] > 20
    assert s["failsafe_events"] >= 1 and s["failsafe_cycles"] >= 10  # ~20 periods without a fresh frame
    stall = [m.json() for m in iter_log(log) if m.topic == TOPIC_COMMAND and m.json()["safe"] == "sensor_stall"]
    assert stall and all(c["volts"] == [0.0] for c in stall)
    assert s["twin"]["watchdog_trips"] == 0  # the safe command kept reaching the device in time
    assert s["device_commands_applied"] == s["commands_sent"]


def _assert_ended_with_zero_volts_and_stop(relay: Relay, log: Path) -> None:
    """The host's last frames, as it wrote them (the log) and as they left on the wire (the relay): 0 V, then STOP."""
    logged = [parse_message(decode_body(m.data)) for m in iter_log(log) if m.topic == TOPIC_TX]
    wire = [parse_message(f) for f in StreamDecoder().feed(b"".join(relay.to_device.intact))]
    for sent in (logged, wire):
        assert sent[-2:] == [Command((0.0,)), Stop()]
    last = [m.json() for m in iter_log(log) if m.topic == TOPIC_COMMAND][-1]
    assert last["safe"] == "link_lost" and last["volts"] == [0.0]
    assert "link_lost" in [m.json()["kind"] for m in iter_log(log) if m.topic == "/events"]


def _commands_bound(evidence_s: float) -> int:
    """Most commands the host may send after the link died: the evidence takes ``evidence_s``, plus one STATUS
    period for the device's next STATUS and half a second of slack (a loaded machine delays the twin's STATUS)."""
    return round((evidence_s + STATUS_PERIOD_S + 0.5) * RATE_HZ)


def test_a_silent_device_heartbeat_ends_the_run(small_model, config_path, tmp_path) -> None:
    """Sensors flow but every STATUS is lost: after status_timeout_s without one the host sends 0 V, STOP, exit 3."""
    proc, s, relay, log = _run_through_relay(small_model, config_path, tmp_path, to_host="mute=0x12", duration=10.0)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no STATUS from the device" in proc.stdout and "Traceback" not in proc.stderr
    assert relay.to_host.counts["muted"] >= 2  # the START acknowledgement and the periodic STATUS
    assert s["device_status_timeouts"] == 1 and s["commands"] > 0
    assert s["commands_sent"] <= _commands_bound(STATUS_TIMEOUT_S)  # silent from the start; 10 s would be ~1000
    _assert_ended_with_zero_volts_and_stop(relay, log)


def test_a_command_path_cut_for_good_ends_the_run(small_model, config_path, tmp_path) -> None:
    """Issue 36: host -> device cut. The device's watchdog trips and stays tripped: 0 V, STOP, exit 3, soon after."""
    proc, s, relay, log = _run_through_relay(small_model, config_path, tmp_path, to_device="cut=1.0", duration=10.0)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "watchdog has stayed tripped" in proc.stdout and "Traceback" not in proc.stderr
    assert s["twin"]["watchdog_trips"] == 1 and s["device_watchdog_trips"] == 1
    # Bounded: the commands sent into the dead link (cut by the relay) are at most the evidence's worth, not the
    # remaining 9 s (~900) that went out before the fix. The watchdog (100 ms) trips right after the cut.
    assert 0 < relay.to_device.counts["cut"] <= _commands_bound(STATUS_TIMEOUT_S)
    _assert_ended_with_zero_volts_and_stop(relay, log)


def test_a_frozen_applied_counter_ends_the_run(small_model, config_path, tmp_path) -> None:
    """The same cut to a device whose watchdog is too slow to trip: its STATUS counter stops moving; exit 3."""
    proc, s, relay, log = _run_through_relay(
        small_model, config_path, tmp_path, to_device="cut=1.0", duration=10.0, twin_set=("device.watchdog_ms=60000",)
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "applied none of the commands" in proc.stdout and s["device_watchdog_trips"] == 0
    # The counter can look frozen only from the first STATUS after the cut, within a STATUS period of it.
    assert 0 < relay.to_device.counts["cut"] <= _commands_bound(STATUS_PERIOD_S + STATUS_TIMEOUT_S)
    _assert_ended_with_zero_volts_and_stop(relay, log)


def test_a_healthy_link_never_looks_lost_even_with_a_tight_status_timeout(small_model, config_path, tmp_path) -> None:
    """STATUS duplicated and reordered, a 0.5 s command stall (a watchdog trip that clears), status_timeout_s only
    1.5 STATUS periods: the run goes to its end (unhealthy for the trip, never stopped as link lost)."""
    proc, s, relay, _ = _run_through_relay(
        small_model, config_path, tmp_path, to_host="dup=0.1,reorder=0.1", to_device="stall=1.0+0.5", duration=6.0,
        run_set=("loop.status_timeout_s=1.5",),
    )  # fmt: skip
    assert relay.to_host.counts["dup"] > 10 and relay.to_host.counts["reorder"] > 10
    assert s["device_watchdog_trips"] == 1 and s["stop_reason"] is None, proc.stdout
    assert proc.returncode == 1 and s["device_status_timeouts"] == 0
    assert s["cycles"] >= 0.5 * 6.0 * RATE_HZ  # ran on (a loaded machine may miss cycles, never this many)
