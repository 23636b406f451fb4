"""A log sink served by a forked child process, so that logging never holds the loop's GIL.

With the sink on a thread, the 1 kHz control thread waited for the GIL whenever a frame
arrived while the writer encoded or compressed: sensor-to-command latency p50 rose from
~170 us to ~270 us (``benchmarks/bench_loop.py``). Here the caller's side of a write is a
pickle and one ``write(2)`` into a pipe; the child (forked once, when the log is opened, so
it starts at once and inherits the open file and the MCAP writer) does the rest.

Pipe protocol, each record a 4-byte little-endian length and a pickle:

* parent -> child: a message tuple (:data:`mcaplog.Item`), ``"flush"`` or ``"close"``;
* child -> parent: ``counts`` (a dict) answering each flush, and after close.

The child's first error is also written into a small shared memory page, so that the
parent notices it at its next write without a system call. The child ignores SIGINT,
SIGTERM and SIGHUP (they are the parent's to handle: Ctrl-C reaches the whole process
group) and ends on "close" or at end of file: a parent that died without closing (``kill
-9`` of the parent alone) gets its log closed by the child, after an event saying so.
Killing the whole process group loses what the last flush interval held, as with a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import pickle
import select
import signal
import struct
import time
from typing import Any

from sensorimotor.hardware.log.mcaplog import CLOSE, IDLE, JSON_ENCODING, TOPIC_EVENT, Item, LogError, LogSink

_LEN = struct.Struct("<I")
_PIPE_BYTES = 1 << 20  # ~1 s of a 1 kHz run with the camera: the child may lag without blocking the loop
_ERROR_BYTES = 4096  # shared page: 4-byte length, then the error text (UTF-8)
HOLD_BYTES = 64 * 1024  # batched: deliver once this much is held ...
HOLD_S = 0.05  # ... or at a put this long after the oldest held record
_NICE = 5  # the child yields the core to the control loop it shares the machine with
_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _record(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(data)) + data


class _ChildFlush:
    """A flush request in the child: answered with the counts once the sink has flushed."""

    def __init__(self, reply: int, sink: LogSink) -> None:
        self._reply, self._sink = reply, sink

    def done(self) -> None:
        with contextlib.suppress(OSError):  # the parent is gone: nobody is waiting
            _write_all(self._reply, _record(dict(self._sink.counts)))


class ProcessLink:
    """Forks a child that serves ``sink``; the parent keeps the pipe ends and a shared error page.

    ``batched``: records are held in this process until :meth:`deliver` (or a flush, a close,
    :data:`HOLD_BYTES` held, or a put :data:`HOLD_S` after the oldest held one), so that a
    control loop hands a whole cycle's messages over in one write, after its command went out.
    """

    def __init__(self, sink: LogSink, *, batched: bool = False) -> None:
        self.path = sink.path
        self._batched = batched
        self._held = bytearray()
        self._held_since = 0
        self._error_page = mmap.mmap(-1, _ERROR_BYTES)  # anonymous and shared: visible across fork
        self._counts: dict[str, int] = {}
        self._error: LogError | None = None
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        with contextlib.suppress(OSError):  # a smaller pipe only blocks sooner
            fcntl.fcntl(down_w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        # Held across the fork: a Ctrl-C landing before the child ignores it would kill the child.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                for sig in _HANDLED:
                    signal.signal(sig, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                _serve_child(sink, down_r, up_w, self._error_page)
                code = 0
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        self.pid = pid
        os.close(down_r)
        os.close(up_w)
        self._down, self._up = down_w, up_r
        sink.file.close()  # the child owns the file now; the parent's buffer was flushed empty

    # ------------------------------------------------------------------ parent side

    def put(self, item: Item) -> None:
        try:
            record = _record(item)
        except Exception as exc:  # what cannot be pickled cannot be JSON-encoded either: as a thread would
            topic, _, _, log_time_ns, _, _ = item
            self._error = LogError(
                f"{self.path}: the recording stopped: cannot write the message on {topic} "
                f"at log time {log_time_ns} ns: {type(exc).__name__}: {exc}"
            )
            raise self._error from None
        if not self._batched:
            self._send(record)
            return
        now = time.monotonic_ns()
        if not self._held:
            self._held_since = now
        self._held += record
        if len(self._held) >= HOLD_BYTES or now - self._held_since >= HOLD_S * 1e9:
            self.deliver()

    def deliver(self) -> None:
        """Hand the held records to the child (one write)."""
        if self._held:
            data, self._held = bytes(self._held), bytearray()
            self._send(data)

    def flush(self) -> None:
        self.deliver()
        self._send(_record("flush"))
        self._counts = self._reply("flushing")

    def close(self) -> None:
        try:
            self.deliver()
            self._send(_record("close"))
            self._counts = self._reply("closing")
        except LogError:
            pass  # the child is gone; error() says why
        finally:
            os.close(self._down)
            os.close(self._up)
            os.waitpid(self.pid, 0)

    def error(self) -> LogError | None:
        if self._error is None and self._error_page[:4] != b"\0\0\0\0":
            (n,) = _LEN.unpack(self._error_page[:4])
            self._error = LogError(self._error_page[4 : 4 + n].decode("utf-8", "replace"))
        return self._error

    def counts(self) -> dict[str, int]:
        return dict(self._counts)

    def _send(self, data: bytes) -> None:
        try:
            if len(data) <= select.PIPE_BUF:
                os.write(self._down, data)  # atomic: all of it, or (interrupted) none
            else:
                # A signal handler raising between two partial writes would leave half a
                # record in the pipe: hold the handled signals until the record is in.
                old = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
                try:
                    _write_all(self._down, data)
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, old)
        except OSError as exc:  # EPIPE: the child is gone
            self._lost(f"{exc.strerror or exc}")

    def _reply(self, doing: str) -> dict[str, int]:
        header = _read_exactly(self._up, _LEN.size)
        body = _read_exactly(self._up, _LEN.unpack(header)[0]) if header else b""
        if not body:
            self._lost(f"it ended while {doing}")
        counts: dict[str, int] = pickle.loads(body)
        return counts

    def _lost(self, why: str) -> None:
        if self.error() is None:
            self._error = LogError(f"{self.path}: the recording stopped: the log writer process was lost ({why})")
        raise self._error  # type: ignore[misc]


# --------------------------------------------------------------------------- child side


def _serve_child(sink: LogSink, down: int, up: int, error_page: mmap.mmap) -> None:
    with contextlib.suppress(OSError):
        os.nice(_NICE)
    _close_inherited({down, up, sink.file.fileno()})

    def publish(error: LogError) -> None:  # text first, then its length: a non-zero length means it is whole
        text = str(error).encode()[: _ERROR_BYTES - _LEN.size]
        error_page[_LEN.size : _LEN.size + len(text)] = text
        error_page[: _LEN.size] = _LEN.pack(len(text))

    sink.on_error = publish
    source = _Records(down, up, sink)
    sink.serve(source.next_item)
    if source.closed_by_parent:
        _write_all(up, _record(dict(sink.counts)))


def _close_inherited(keep: set[int]) -> None:
    """Close the parent's other descriptors: a serial port's lock must not outlive the parent here."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)


class _Records:
    """The child's view of the pipe: items for :meth:`LogSink.serve`, errors published as they happen."""

    def __init__(self, down: int, up: int, sink: LogSink) -> None:
        self._down, self._up, self._sink = down, up, sink
        self._buffer = bytearray()
        self._eof = False
        self._last_time = 0
        self.closed_by_parent = False
        self._orphan_event_sent = False

    def next_item(self, timeout: float | None) -> Item:
        while True:
            record = self._take()
            if record is not None:
                return self._item(record)
            if self._eof:
                return self._orphaned()
            ready, _, _ = select.select([self._down], [], [], timeout)
            if not ready:
                return IDLE
            data = os.read(self._down, _PIPE_BYTES)
            if data:
                self._buffer += data
            else:
                self._eof = True

    def _take(self) -> Any | None:
        if len(self._buffer) < _LEN.size:
            return None
        (n,) = _LEN.unpack_from(self._buffer)
        if len(self._buffer) < _LEN.size + n:
            return None
        record = pickle.loads(self._buffer[_LEN.size : _LEN.size + n])
        del self._buffer[: _LEN.size + n]
        return record

    def _item(self, record: Any) -> Item:
        if record == "close":
            self.closed_by_parent = True
            return CLOSE
        if record == "flush":
            return _ChildFlush(self._up, self._sink)
        self._last_time = max(self._last_time, record[3])
        return tuple(record)

    def _orphaned(self) -> Item:
        """End of file without "close": the parent died. Say so in the log, then close it."""
        if self._orphan_event_sent:
            return CLOSE
        self._orphan_event_sent = True
        message = {"kind": "log_orphaned", "message": "the recording process ended without closing the log"}
        return (TOPIC_EVENT, JSON_ENCODING, message, self._last_time, 0, None)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = os.read(fd, n - len(out))
        if not chunk:
            return b""
        out += chunk
    return bytes(out)
