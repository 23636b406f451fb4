"""A device of protocol version 2 behind a real pty: `hw run` names both versions in one line and exits 2.

The fake devices are written here from the version-2 wire format (a CRC-16 built from the
bitwise reference), as firmware of that version would send it, not with the host's code:

* ``idle``: reads only version-2 frames, answers a HELLO it can read with its DESCRIBE;
* ``streaming``: left streaming SENSOR frames by an earlier session, answers nothing;
* ``mixed``: describes itself in version 3, then streams version-2 SENSOR frames after START
  (before, the host started and stopped with "no sensor frame ... check the cable").
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from crc_reference import crc16_ref, crc32_ref

from sensorimotor.hardware.framing import cobs_decode, cobs_encode
from sensorimotor.hardware.messages import Describe, SensorBatch
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.twin import open_pty

pytestmark = pytest.mark.hil

SPEC = DeviceConfig().spec()  # what the small model was exported for (protocol version 3)
HELLO, DESCRIBE, START, SENSOR = 0x01, 0x02, 0x03, 0x10


def wire(version: int, msg_type: int, seq: int, payload: bytes) -> bytes:
    """A frame as a device of ``version`` sends it: CRC-16 before version 3, CRC-32 from it."""
    unsigned = bytes([version, msg_type]) + seq.to_bytes(2, "little") + (1000 * seq).to_bytes(4, "little") + payload
    crc = crc16_ref(unsigned).to_bytes(2, "little") if version < 3 else crc32_ref(unsigned).to_bytes(4, "little")
    return cobs_encode(unsigned + crc) + b"\x00"


def readable(body: bytes, version: int) -> int | None:
    """The type of a frame body a device of ``version`` can read (its version byte and CRC), else None."""
    n = 2 if version < 3 else 4
    crc = crc16_ref(body[:-n]).to_bytes(2, "little") if n == 2 else crc32_ref(body[:-n]).to_bytes(4, "little")
    if len(body) < 8 + n or body[-n:] != crc or (body[0] != version and body[1] not in (HELLO, DESCRIBE)):
        return None
    return body[1]


SENSOR_PAYLOAD = SensorBatch(np.zeros((10, 6)), np.zeros(10)).pack()
V2_DESCRIBE = Describe(dataclasses.replace(SPEC, protocol_version=2)).pack()


@contextmanager
def fake_device(kind: str) -> Iterator[str]:
    """A device of another version on a pty, served by a thread; yields the port name."""
    master, slave, port = open_pty()
    stop = threading.Event()

    def send(data: bytes) -> None:
        with contextlib.suppress(OSError):  # nobody reading (the port not open yet, or closed): lost, as on a UART
            os.write(master, data)

    def serve() -> None:
        buf, seq, streaming = b"", 0, kind == "streaming"
        while not stop.is_set():
            if select.select([master], [], [], 0.01)[0]:
                try:
                    buf += os.read(master, 4096)
                except OSError:
                    return
            *blocks, buf = buf.split(b"\x00")
            for block in blocks:
                try:
                    body = cobs_decode(block)
                except ValueError:
                    continue
                version = 3 if kind == "mixed" else 2
                msg_type = readable(body, version)
                if msg_type == HELLO:
                    payload = Describe(SPEC).pack() if kind == "mixed" else V2_DESCRIBE
                    send(wire(version, DESCRIBE, seq, payload))
                    seq += 1
                elif msg_type == START:
                    streaming = True
            if streaming:  # 100 version-2 SENSOR frames a second, whatever the host says
                send(wire(2, SENSOR, seq, SENSOR_PAYLOAD))
                seq += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join()
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("kind", ["idle", "streaming", "mixed"])
def test_version_2_device_is_named_as_such(small_model: Path, kind: str) -> None:
    with fake_device(kind) as port:
        proc = subprocess.run(
            [sys.executable, "-m", "sensorimotor.cli.hw", "run", "--port", port, "--model", str(small_model),
             "--duration", "2"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "speaks protocol version 2, this host speaks 3" in proc.stderr, proc.stderr
