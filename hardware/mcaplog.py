"""MCAP run logs: writing and streaming-reading the `hw run --record` log format.

A log holds every serial frame in both directions (raw COBS-decoded frame
bodies), every command sent, the controller's estimates, events, the device
info and run metadata.  See ``docs/log-format.md`` for the topics and fields.

Reading never goes through the summary or index: records are streamed from the
start of the file, so a log whose writer died without writing its footer is
still readable up to its last complete chunk.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np
from mcap.records import Channel, McapRecord, Message, Metadata
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

TOPIC_RX = "/serial/rx"
TOPIC_TX = "/serial/tx"
TOPIC_COMMAND = "/control/command"
TOPIC_ESTIMATE = "/control/estimate"
TOPIC_EVENT = "/events"
TOPIC_DEVICE = "/device/info"
TOPIC_META = "/run/meta"
TOPIC_SUMMARY = "/run/summary"

PROFILE = "sensorimotor"
METADATA_NAME = "sensorimotor"
LOG_FORMAT_VERSION = "1"
FRAME_ENCODING = "sensorimotor.frame.v1"
JSON_ENCODING = "json"
JSON_SCHEMA = b'{"type":"object"}'
MAGIC = b"\x89MCAP0\r\n"

Compression = Literal["zstd", "lz4", "none"]
_COMPRESSION: dict[str, CompressionType] = {
    "zstd": CompressionType.ZSTD,
    "lz4": CompressionType.LZ4,
    "none": CompressionType.NONE,
}
_MAX_SEQUENCE = 0xFFFF_FFFF


class LogError(ValueError):
    """A log file is missing, is not MCAP, or is corrupt (truncation is not an error)."""


@dataclass(frozen=True)
class LogMessage:
    """One message of a log, in file order."""

    topic: str
    log_time_ns: int
    sequence: int
    data: bytes

    def json(self) -> dict[str, Any]:
        """Decode the payload of a JSON topic."""
        value = json.loads(self.data)
        if not isinstance(value, dict):
            raise LogError(f"message on {self.topic} is not a JSON object")
        return value


# --------------------------------------------------------------------------- writing


def _json_default(value: Any) -> Any:
    """Convert numpy values that `json` cannot serialize to Python ones."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def encode_json(obj: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON for `obj`, with numpy scalars/arrays as Python values."""
    text = json.dumps(obj, separators=(",", ":"), default=_json_default)
    return text.encode("utf-8")


class LogWriter:
    """Writes a run log; channels are registered on first use of a topic."""

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_size: int = 256 * 1024,
        compression: Compression = "zstd",
        profile: str = PROFILE,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if compression not in _COMPRESSION:
            choices = ", ".join(_COMPRESSION)
            raise ValueError(f"compression must be one of {choices}; got {compression!r}")
        self.path = Path(path)
        self.counts: dict[str, int] = {}
        self._channels: dict[str, tuple[int, str]] = {}
        self._closed = False
        self._file = open(self.path, "wb")  # noqa: SIM115 - the writer owns it until close()
        self._writer = Writer(self._file, chunk_size=chunk_size, compression=_COMPRESSION[compression])
        self._writer.start(profile=profile)
        meta = {"log_format": LOG_FORMAT_VERSION, **(metadata or {})}
        self._writer.add_metadata(METADATA_NAME, meta)
        self._file.flush()
        self._flushed_pos = self._file.tell()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def write_frame(self, topic: str, body: bytes, *, log_time_ns: int, seq: int) -> None:
        """Log a raw frame body (header+payload+crc); `seq` is the frame's protocol seq."""
        self._write(topic, FRAME_ENCODING, bytes(body), log_time_ns, seq)

    def write_json(self, topic: str, obj: Mapping[str, Any], *, log_time_ns: int, seq: int = 0) -> None:
        """Log `obj` as compact JSON (numpy values are converted)."""
        self._write(topic, JSON_ENCODING, encode_json(obj), log_time_ns, seq)

    def close(self) -> None:
        """Finish the open chunk, write the summary and footer, close the file (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.finish()
        finally:
            self._file.close()

    def _write(self, topic: str, encoding: str, data: bytes, log_time_ns: int, seq: int) -> None:
        if self._closed:
            raise ValueError(f"log writer for {self.path} is closed")
        if not 0 <= seq <= _MAX_SEQUENCE:
            raise ValueError(f"sequence {seq} does not fit in uint32")
        channel_id = self._channel(topic, encoding)
        self._writer.add_message(channel_id, log_time=log_time_ns, data=data, publish_time=log_time_ns, sequence=seq)
        self.counts[topic] = self.counts.get(topic, 0) + 1
        self._flush_finished_chunk()

    def _channel(self, topic: str, encoding: str) -> int:
        known = self._channels.get(topic)
        if known is None:
            known = (self._register(topic, encoding), encoding)
            self._channels[topic] = known
        if known[1] != encoding:
            raise ValueError(f"topic {topic} carries {known[1]!r} messages, not {encoding!r}")
        return known[0]

    def _register(self, topic: str, encoding: str) -> int:
        schema_id = 0
        if encoding == JSON_ENCODING:
            name = topic.strip("/").replace("/", ".") or "root"
            schema_id = self._writer.register_schema(name, "jsonschema", JSON_SCHEMA)
        return self._writer.register_channel(topic, encoding, schema_id)

    def _flush_finished_chunk(self) -> None:
        """Push a just-finished chunk to the OS so a crash loses only the open chunk."""
        pos = self._file.tell()
        if pos != self._flushed_pos:
            self._file.flush()
            self._flushed_pos = pos


# --------------------------------------------------------------------------- reading


class _Truncated(Exception):
    """The file ends in the middle of a record."""


class _ExactReader(io.BufferedReader):
    """A file reader whose reads return exactly the bytes asked for, else raise `_Truncated`."""

    def __init__(self, raw: io.FileIO, size: int) -> None:
        super().__init__(raw)
        self._size = size

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            return super().read()
        if size > self._size - self.tell():
            raise _Truncated
        return super().read(size)


def _open(path: Path) -> _ExactReader:
    try:
        raw = io.FileIO(path, "rb")
    except FileNotFoundError:
        raise LogError(f"{path} does not exist") from None
    except OSError as exc:
        raise LogError(f"cannot open {path}: {exc.strerror or exc}") from None
    return _ExactReader(raw, os.fstat(raw.fileno()).st_size)


def _has_magic(path: Path, stream: _ExactReader) -> bool:
    """True if the file starts with MCAP magic, False if it stops inside it; raise if wrong."""
    head = stream.peek(len(MAGIC))[: len(MAGIC)]
    if not MAGIC.startswith(head):
        raise LogError(f"{path} is not an MCAP file (bad magic); was it written by `hw run --record`?")
    if len(head) < len(MAGIC):
        return False
    stream.read(len(MAGIC))
    return True


def _records(path: str | Path, *, emit_chunks: bool) -> Iterator[McapRecord]:
    """Stream the records of `path`, stopping quietly where the file is truncated."""
    path = Path(path)
    with _open(path) as stream:
        if not _has_magic(path, stream):
            return
        reader = StreamReader(stream, skip_magic=True, emit_chunks=emit_chunks, validate_crcs=True)
        try:
            yield from reader.records
        except _Truncated:
            return
        except Exception as exc:  # any decode failure of a complete record means corruption
            raise LogError(f"{path} is corrupt near byte {stream.tell()}: {exc}") from exc


def iter_log(path: str | Path) -> Iterator[LogMessage]:
    """Yield the messages of a log in file order (a truncated log yields its complete chunks)."""
    topics: dict[int, str] = {}
    for record in _records(path, emit_chunks=False):
        if isinstance(record, Channel):
            topics[record.id] = record.topic
        elif isinstance(record, Message):
            yield _message(path, topics, record)


def _message(path: str | Path, topics: Mapping[int, str], record: Message) -> LogMessage:
    topic = topics.get(record.channel_id)
    if topic is None:
        raise LogError(f"{path} is corrupt: message on unknown channel {record.channel_id}")
    return LogMessage(topic, record.log_time, record.sequence, record.data)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The "sensorimotor" metadata record of a log (empty if it has none)."""
    found: dict[str, str] = {}
    for record in _records(path, emit_chunks=True):
        if isinstance(record, Metadata) and record.name == METADATA_NAME:
            found.update(record.metadata)
    return found


def summarize_log(path: str | Path) -> dict[str, int]:
    """Number of messages per topic."""
    return dict(Counter(message.topic for message in iter_log(path)))
