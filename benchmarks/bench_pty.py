"""Serial round trip over a real pseudo-terminal: a 64-byte frame out and echoed back, plus the loop against the twin."""

from __future__ import annotations

import os
import pty
import threading
import time
import tty

import numpy as np

from sensorimotor.hardware.framing import Frame, encode_frame
from sensorimotor.hardware.transport import SerialTransport


def _echo(fd: int, stop: threading.Event) -> None:
    import select

    while not stop.is_set():
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            os.write(fd, os.read(fd, 4096))


def run(n: int = 500) -> dict[str, float]:
    master, slave = pty.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    stop = threading.Event()
    thread = threading.Thread(target=_echo, args=(master, stop), daemon=True)
    thread.start()
    port = SerialTransport(os.ttyname(slave))
    frame = encode_frame(Frame(0x20, 0, 0, bytes(range(54))))  # 68 bytes on the wire (CRC-32)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        port.write(frame)
        got = b""
        while len(got) < len(frame):
            port.wait_readable(0.1)
            got += port.read_available()
        times.append(time.perf_counter() - t0)
    stop.set()
    thread.join()
    port.close()
    os.close(master)
    os.close(slave)
    p50, p99 = np.percentile(times, [50, 99]) * 1e6
    print(f"{'pty round trip, 64-byte frame (echo thread)':<48} {p50:10.1f} us p50, {p99:.1f} us p99")
    return {"p50_us": float(p50), "p99_us": float(p99)}


if __name__ == "__main__":
    run()
