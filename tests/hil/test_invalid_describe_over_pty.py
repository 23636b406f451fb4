"""A device that answers the handshake with an impossible description is refused naming the field, not as silent.

The device here is a fake on a real pty: it answers every HELLO with a DESCRIBE whose
frame is intact (CRC and all) but whose stream rate does not divide its IMU rate.
"""

from __future__ import annotations

import os
import select
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sensorimotor.hardware.framing import Frame, encode_frame
from sensorimotor.hardware.messages import Describe, MsgType
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.twin import open_pty

pytestmark = pytest.mark.hil

# Where stream_rate_hz sits in the DESCRIBE payload: after version, name, imu_rate_hz, imu_window, samples_per_frame.
STREAM_RATE_AT = struct.calcsize("<H16sHHB")


def _inconsistent_describe() -> bytes:
    """The default device's DESCRIBE with stream_rate_hz 130, which does not divide its IMU's 1000 Hz."""
    payload = bytearray(Describe(DeviceConfig().spec()).pack())
    struct.pack_into("<H", payload, STREAM_RATE_AT, 130)
    return encode_frame(Frame(MsgType.DESCRIBE, 0, 0, bytes(payload)))


@pytest.fixture
def describing_port() -> Iterator[str]:
    """A pty whose device answers whatever the host sends with the inconsistent DESCRIBE."""
    master, slave, path = open_pty()
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0] and os.read(master, 4096):
                os.write(master, _inconsistent_describe())

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("command", ["run", "info"])
def test_an_inconsistent_description_is_refused_naming_the_field(
    describing_port: str, small_model: Path, command: str
) -> None:  # fmt: skip
    args = ["--model", str(small_model)] if command == "run" else []
    proc = subprocess.run(
        [sys.executable, "-m", "sensorimotor.cli.hw", command, "--port", describing_port, *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert f"hw {command}: error: the device on {describing_port} answered with an invalid description" in proc.stderr
    assert "samples_per_frame: 10 x stream_rate_hz 130 must equal imu_rate_hz 1000" in proc.stderr
    assert "no answer" not in proc.stderr
