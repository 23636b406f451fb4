"""Firmware in the loop: the C node's native build speaks the protocol on a real pty; the twin's physics is its hardware.

What the host sees comes from the C code (framing, DESCRIBE, streaming clock, clamping,
watchdog, STATUS); the simulator only supplies samples and takes the motor voltage. The
loop tests in tests/hil/test_loop_over_pty.py also run against it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hil_options import LINK_ONLY

from sensorimotor.cli.twin_process import TwinProcess
from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.framing import encode_frame
from sensorimotor.hardware.messages import Command, Describe, MsgType, SensorBatch, Status, StatusFlags, make_frame
from sensorimotor.hardware.spec import compare
from sensorimotor.hardware.transport import SerialTransport
from sensorimotor.sim.config import DeviceConfig

pytestmark = pytest.mark.hil


def _cli(module: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout)


def _collect(client: DeviceClient, seconds: float) -> list:
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        client.transport.wait_readable(0.01)
        out += client.poll()
    return out


def test_the_firmware_describes_the_configured_device_byte_for_byte(native_firmware: Path, config_path: Path) -> None:
    """The DESCRIBE the C code packs (from the description it was given) is Python's, and the host accepts it."""
    twin = TwinProcess(config_path, seed=0, firmware=native_firmware)
    transport = SerialTransport(twin.port)
    try:
        client = DeviceClient(transport)
        spec = client.connect(2.0)
    finally:
        transport.close()
        twin.stop()
    expected = DeviceConfig().spec()
    assert compare(expected, spec) == []
    assert Describe(spec).pack() == Describe(expected).pack()


def test_streaming_rate_clamping_crc_rejection_and_the_watchdog_are_the_c_codes(
    native_firmware: Path, config_path: Path
) -> None:  # fmt: skip
    twin = TwinProcess(config_path, seed=0, firmware=native_firmware, nominal=True)
    transport = SerialTransport(twin.port)
    try:
        client = DeviceClient(transport)
        spec = client.connect(2.0)
        client.start()
        t_end = time.monotonic() + 1.0
        got, sent = [], 0
        while time.monotonic() < t_end:  # 1 s of commands, past the actuator's range
            client.send_command([9.0])
            sent += 1
            got += _collect(client, 0.01)
        bad = bytearray(encode_frame(make_frame(MsgType.COMMAND, 999, 0, Command((1.0,)))))
        bad[3] ^= 0x40  # a flipped bit: its CRC fails
        transport.write(bytes(bad))
        got += _collect(client, 0.4)  # silence: the watchdog (100 ms) zeroes the motor and says so
        client.stop()
        got += _collect(client, 0.2)
    finally:
        transport.close()
        truth = twin.stop()
    sensors = [r for r in got if isinstance(r.message, SensorBatch)]
    samples = sum(len(r.message.imu) for r in sensors)
    assert 1.2 * spec.imu_rate_hz <= samples <= 1.8 * spec.imu_rate_hz  # ~1.6 s of streaming at 1 kHz
    assert all(len(r.message.imu) == spec.samples_per_frame for r in sensors)
    statuses = [r.message for r in got if isinstance(r.message, Status)]
    assert any(s.flags & StatusFlags.WATCHDOG_TRIPPED for s in statuses), statuses
    assert statuses[-1].frames_bad >= 1 and not statuses[-1].flags & StatusFlags.STREAMING  # STOP acknowledged
    # every command reached the motor (and the zeros of the watchdog and STOP), 9 V clamped to 5 V by the C code
    assert truth["commands_applied"] >= sent + 2 and truth["max_abs_volts"] == 5.0, truth


def test_a_run_and_the_monitor_through_the_firmware(native_firmware: Path, small_model: Path, tmp_path: Path) -> None:
    summary = tmp_path / "s.json"
    proc = _cli("sensorimotor.cli.hw", "run", "--twin", "--firmware", str(native_firmware), "--model",
                str(small_model), "--duration", "2", "--json", str(summary), *LINK_ONLY)  # fmt: skip
    assert proc.returncode in (0, 1), proc.stderr  # 1: a busy test machine may breach the relaxed timing health
    s = json.loads(summary.read_text())
    assert s["commands"] > 100 and s["frames_lost"] == 0 and s["frames_bad"] == 0, s
    assert s["device_commands_applied"] == s["commands_sent"], s  # the C node's STATUS counters
    proc = _cli("sensorimotor.cli.hw", "monitor", "--twin", "--firmware", str(native_firmware),
                "--duration", "1.6", "--every", "0.5")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if "SENSOR" in line and "accel_z" in line]
    assert len(lines) >= 2 and all("watchdog holds 0 V" in line for line in lines[1:])


def test_the_firmware_goes_when_the_twin_is_killed(native_firmware: Path, config_path: Path) -> None:
    twin = TwinProcess(config_path, seed=0, firmware=native_firmware)
    children = subprocess.run(["pgrep", "-P", str(twin.proc.pid)], capture_output=True, text=True).stdout.split()
    assert len(children) == 1
    os.kill(twin.proc.pid, signal.SIGKILL)
    twin.proc.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and Path(f"/proc/{children[0]}").exists():
        time.sleep(0.05)
    assert not Path(f"/proc/{children[0]}").exists() or "Z" in Path(f"/proc/{children[0]}/stat").read_text().split()[2]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sensorimotor.cli.twin", "--firmware", "/nonexistent/smp_native"],
         "--firmware /nonexistent/smp_native: no such executable; `make firmware` builds the native one"),
        (["sensorimotor.cli.hw", "info", "--port", "/dev/null", "--firmware", "/bin/true"],
         "--firmware needs --twin"),
        (["sensorimotor.cli.hw", "info", "--twin", "--firmware", "/etc/hostname"],
         "--firmware /etc/hostname: "),  # not a program: refused up front, or when it cannot be run
    ],
)  # fmt: skip
def test_bad_firmware_options_get_one_line_and_exit_2(args: list[str], expected: str) -> None:
    proc = _cli(*args, timeout=60)
    assert proc.returncode == 2 and expected in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("body", ["exit 3", "exec sleep 60"], ids=["exits-at-once", "never-answers"])
def test_a_firmware_that_exits_or_stays_silent_is_named(body: str, tmp_path: Path) -> None:
    """A program that starts but does not speak the protocol: the host names the firmware, one line, exit 2."""
    firmware = tmp_path / "not_firmware"
    firmware.write_text(f"#!/bin/sh\n{body}\n")
    firmware.chmod(0o755)
    proc = _cli("sensorimotor.cli.hw", "info", "--twin", "--firmware", str(firmware), timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and f"--firmware {firmware}" in lines[0], proc.stderr


def test_a_firmware_that_dies_mid_run_is_named_in_the_summary(
    native_firmware: Path, small_model: Path, tmp_path: Path
) -> None:
    """The real firmware, killed by a real SIGKILL 1.5 s into the run (a SIGSEGV the sanitizers of its
    test build would turn into exit status 1): the host sees only silence and stops on the
    sensor timeout; the twin knows how its firmware ended and the host's summary says it."""
    crashing = tmp_path / "crashing_firmware"
    crashing.write_text(f'#!/bin/sh\n(sleep 1.5; kill -KILL $$) &\nexec {native_firmware} "$@"\n')
    crashing.chmod(0o755)
    summary = tmp_path / "s.json"
    proc = _cli("sensorimotor.cli.hw", "run", "--twin", "--firmware", str(crashing), "--model", str(small_model),
                "--duration", "5", "--json", str(summary), *LINK_ONLY)  # fmt: skip
    s = json.loads(summary.read_text())
    assert s["stopped_by"] is not None and proc.returncode != 0, proc.stdout
    assert s["twin"]["firmware_exit"]["status"] == -signal.SIGKILL, s["twin"]
    assert "the firmware in the loop ended during the run: killed by SIGKILL" in proc.stdout, proc.stdout
