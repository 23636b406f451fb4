"""Byte transports behind one small interface: a pyserial port (real device or a pty twin).

The control loop only needs ``write``, a non-blocking ``read_available``, ``wait_readable``
and ``close``; framing lives in :mod:`sensorimotor.hardware.framing`, apart from I/O.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import time
from pathlib import Path
from typing import Protocol

import serial

from sensorimotor.hardware.errors import PortError

WRITE_TIMEOUT_S = 1.0  # a device that takes no bytes for this long is gone


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
            self.ser = serial.Serial(port, baudrate=baudrate, timeout=0, write_timeout=WRITE_TIMEOUT_S, exclusive=True)
        except serial.SerialException as exc:
            raise PortError(_explain_open_error(port, exc)) from None
        # FTDI adapters hold bytes up to 16 ms by default; ask for 1 ms. A pty (or another
        # kind of port) refuses: nothing to tune there.
        with contextlib.suppress(AttributeError, ValueError, OSError, NotImplementedError):
            self.ser.set_low_latency_mode(True)
        self.ser.reset_input_buffer()
        self.fd: int = self.ser.fd  # reads and writes go straight to it (pyserial opened it non-blocking)

    def write(self, data: bytes) -> None:
        """Write everything (waiting up to 1 s for room); straight to the fd: pyserial's write costs ~40 us more."""
        view, deadline = memoryview(data), time.monotonic() + WRITE_TIMEOUT_S
        try:
            while view:
                try:
                    view = view[os.write(self.fd, view) :]
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise PortError(f"{self.name}: write timed out; is the device still connected?") from None
                    select.select([], [self.fd], [], 0.01)
        except OSError as exc:
            raise PortError(f"{self.name}: write failed ({exc.strerror}); was the device unplugged?") from None

    def read_available(self) -> bytes:
        """Whatever has arrived (b"" if nothing); PortError when the port is gone (hangup or I/O error)."""
        data = self._read_once()
        if not data and select.select([self.fd], [], [], 0)[0]:
            # A raw tty returns b"" when it has no data; "readable" yet no data is a hangup (pyserial's rule).
            data = self._read_once()
            if not data:
                raise PortError(f"{self.name}: the port hung up; was the device unplugged?")
        return data

    def _read_once(self) -> bytes:
        try:
            return os.read(self.fd, 65536)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise PortError(f"{self.name}: read failed ({exc.strerror}); was the device unplugged?") from None

    def wait_readable(self, timeout_s: float) -> bool:
        try:
            ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
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
    if code == errno.ENOTTY or f"({errno.ENOTTY}," in text or "Inappropriate ioctl" in text:
        # pyserial opened it, but it takes no terminal settings: /dev/null, a plain file, a pipe
        return (
            f"{port} is not a serial port (ENOTTY: it takes no serial settings). Give the device's port, e.g. "
            "/dev/ttyUSB0 (list them with `python -m serial.tools.list_ports`), or use --twin."
        )
    if code == errno.EISDIR or "Is a directory" in text:
        return f"{port} is a directory, not a serial port. Give the device's port, e.g. /dev/ttyUSB0."
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
