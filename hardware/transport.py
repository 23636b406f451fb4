"""Byte transports behind one small interface: a pyserial port (real device or a pty twin).

The control loop only needs ``write``, a non-blocking ``read_available``, ``wait_readable``
and ``close``; framing lives in :mod:`sensorimotor.hardware.framing`, apart from I/O.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
from pathlib import Path
from typing import Protocol

import serial

from sensorimotor.hardware.errors import PortError


class Transport(Protocol):
    """What the device client needs from a byte link."""

    name: str

    def write(self, data: bytes) -> None: ...

    def read_available(self) -> bytes: ...

    def wait_readable(self, timeout_s: float) -> bool: ...

    def close(self) -> None: ...


class SerialTransport:
    """A pyserial port opened non-blocking, with the USB-serial latency timer set low when possible."""

    def __init__(self, port: str, baudrate: int = 2_000_000) -> None:
        self.name = port
        try:
            # exclusive: an advisory lock (flock) on the port, so a second `hw run` cannot
            # send HELLO and START into a running session.
            self.ser = serial.Serial(port, baudrate=baudrate, timeout=0, write_timeout=1.0, exclusive=True)
        except serial.SerialException as exc:
            raise PortError(_explain_open_error(port, exc)) from None
        # FTDI adapters hold bytes up to 16 ms by default; ask for 1 ms. A pty (or another
        # kind of port) refuses: nothing to tune there.
        with contextlib.suppress(AttributeError, ValueError, OSError, NotImplementedError):
            self.ser.set_low_latency_mode(True)
        self.ser.reset_input_buffer()

    def write(self, data: bytes) -> None:
        try:
            self.ser.write(data)
        except serial.SerialTimeoutException:
            raise PortError(f"{self.name}: write timed out; is the device still connected?") from None
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"{self.name}: write failed ({exc}); was the device unplugged?") from None

    def read_available(self) -> bytes:
        try:
            return self.ser.read(max(1, self.ser.in_waiting)) or b""
        except (serial.SerialException, OSError) as exc:
            raise PortError(f"{self.name}: read failed ({exc}); was the device unplugged?") from None

    def wait_readable(self, timeout_s: float) -> bool:
        if timeout_s <= 0:
            return self.ser.in_waiting > 0
        try:
            ready, _, _ = select.select([self.ser.fileno()], [], [], timeout_s)
        except (OSError, ValueError):
            return False
        return bool(ready)

    def close(self) -> None:
        with contextlib.suppress(serial.SerialException, OSError):
            self.ser.close()


def _explain_open_error(port: str, exc: serial.SerialException) -> str:
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text or ("could not open port" in text and "[Errno 2]" in text):
        return (
            f"serial port {port} does not exist. List ports with `python -m serial.tools.list_ports`, "
            "check the cable, or run against the simulator with `hw run --twin`."
        )
    if code == errno.EACCES or "Permission denied" in text:
        return f"no permission to open {port}: add your user to the 'dialout' group (then log in again)."
    if code == errno.EBUSY or "busy" in text.lower() or "exclusively lock" in text:
        holder = port_holder(port)
        who = f" by {holder}" if holder else " by another program (a serial monitor? another hw run?)"
        return f"{port} is busy: it is held{who}. Stop that program first."
    return f"cannot open {port}: {text}"


def port_holder(port: str) -> str | None:
    """'pid N (command line)' of the process holding an exclusive lock on ``port``, if Linux tells us."""
    try:
        st = os.stat(port)
        locks = Path("/proc/locks").read_text()
    except OSError:
        return None
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in locks.splitlines():
        fields = line.split()  # id: FLOCK ADVISORY WRITE pid maj:min:inode start end
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == dev:
            pid = fields[4]
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = ""
            return f"pid {pid}" + (f" ({cmd})" if cmd else "")
    return None
