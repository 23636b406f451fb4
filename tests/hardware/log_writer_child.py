"""Child process for test_log_crash.py: writes a log at a known rate and says what it wrote when.

``steady PATH FLUSH_S BACKEND``: a message pair (an event and a frame, contents a function of
i) every 2 ms, printing ``wrote i at t`` (time.monotonic) after each pair, until it is killed.
With the process backend it first prints ``writer PID`` (the log writer's process).

``unclosed PATH BACKEND``: writes 100 message pairs and dies of an uncaught exception, never calling close().

``fsize PATH write|close BACKEND``: with the file size limited to 64 KiB (a real "File too
large" from the kernel), write 8 KiB frames until LogWriter raises, or write ten and close;
prints ``raised: <message>`` for each LogError and ``done``.
"""

from __future__ import annotations

import resource
import signal
import sys
import time
from typing import cast

from sensorimotor.hardware.log.mcaplog import TOPIC_EVENT, TOPIC_TX, Backend, LogError, LogWriter

PERIOD_S = 0.002


def event(i: int) -> dict[str, object]:
    return {"kind": "tick", "message": f"message {i}", "i": i}


def frame(i: int) -> bytes:
    return i.to_bytes(4, "little") * 8


def steady(path: str, flush_s: float, backend: Backend) -> None:
    log = LogWriter(path, flush_interval_s=flush_s, backend=backend)
    if log.process_id is not None:
        print(f"writer {log.process_id}", flush=True)
    t0 = time.monotonic()
    i = 0
    while True:
        log.write_json(TOPIC_EVENT, event(i), log_time_ns=2 * i + 1, seq=i)
        log.write_frame(TOPIC_TX, frame(i), log_time_ns=2 * i + 2, seq=i)
        print(f"wrote {i} at {time.monotonic():.6f}", flush=True)
        i += 1
        time.sleep(max(0.0, t0 + i * PERIOD_S - time.monotonic()))


def unclosed(path: str, backend: Backend) -> None:
    log = LogWriter(
        path, flush_interval_s=60, backend=backend
    )  # no interval flush: only the exit can save the messages
    for i in range(100):
        log.write_json(TOPIC_EVENT, event(i), log_time_ns=2 * i + 1, seq=i)
        log.write_frame(TOPIC_TX, frame(i), log_time_ns=2 * i + 2, seq=i)
    raise RuntimeError("the program fails without closing its log")


def too_large(path: str, when: str, backend: Backend) -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write then fails with EFBIG instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    at_close = when == "close"  # then nothing reaches the file before close(): one open chunk, no interval flush
    log = LogWriter(
        path, compression="none", chunk_size=1 << 20, flush_interval_s=60 if at_close else 0.01, backend=backend
    )
    big = bytes(range(256)) * 32
    try:
        for i in range(10 if at_close else 10_000):
            log.write_frame(TOPIC_TX, big, log_time_ns=i, seq=i)
            time.sleep(0 if at_close else 0.005)
    except LogError as exc:
        print(f"raised: {exc}", flush=True)
    try:
        log.close()
    except LogError as exc:
        print(f"raised: {exc}", flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "steady":
        steady(sys.argv[2], float(sys.argv[3]), cast(Backend, sys.argv[4]))
    elif sys.argv[1] == "unclosed":
        unclosed(sys.argv[2], cast(Backend, sys.argv[3]))
    else:
        too_large(sys.argv[2], sys.argv[3], cast(Backend, sys.argv[4]))
