"""MCAP run logs: writing and streaming-reading the `hw run --record` log format.

A log holds every serial frame in both directions (raw COBS-decoded frame bodies), every
command sent, the controller's estimates, events, the device info and run metadata, plus
decoded sensor topics (IMU and encoder samples, camera images) that Foxglove can plot.
Every JSON topic has a JSON Schema (:data:`SCHEMAS`). See ``docs/log-format.md``.

Writing happens off the caller's thread (a background thread, or a forked child process:
:mod:`sensorimotor.hardware.log.process`): :meth:`LogWriter.write_frame` and
:meth:`LogWriter.write_json` only hand the message over, and the :class:`LogSink` encodes,
compresses and writes, closing the open chunk and pushing it to the OS at least every
``flush_interval_s``: a crashed writer loses at most that much. Its errors surface as
:class:`LogError`.

Reading never goes through the summary or index: records are streamed from the start of the
file, so a log whose writer died without writing its footer is still readable up to its last
complete chunk; :class:`LogReader` says afterwards whether the file ended cleanly.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import math
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol

import numpy as np
from mcap.records import Channel, DataEnd, Footer, Header, McapRecord, Message, Metadata
from mcap.stream_reader import StreamReader
from mcap.writer import CompressionType, Writer

from sensorimotor.hardware.log.decode import (
    TOPIC_ENCODER,
    TOPIC_IMAGE,
    TOPIC_IMU,
    TOPIC_REFERENCE,
    FrameDecoder,
)
from sensorimotor.hardware.log.meta import library_versions
from sensorimotor.hardware.log.meta import model_metadata as model_metadata  # re-exported for callers

TOPIC_RX = "/serial/rx"
TOPIC_HOST_CAMERA = "/camera/host"  # IMAGE frame bodies from a camera on the host (hw run --camera), as read
TOPIC_TX = "/serial/tx"
TOPIC_COMMAND = "/control/command"
TOPIC_ESTIMATE = "/control/estimate"
TOPIC_EVENT = "/events"
TOPIC_DEVICE = "/device/info"
TOPIC_META = "/run/meta"
TOPIC_SUMMARY = "/run/summary"

PROFILE = "sensorimotor"
METADATA_NAME = "sensorimotor"
LOG_FORMAT_VERSION = "2"
FRAME_ENCODING = "sensorimotor.frame.v1"
JSON_ENCODING = "json"
MAGIC = b"\x89MCAP0\r\n"
DEFAULT_FLUSH_INTERVAL_S = 0.5

Compression = Literal["zstd", "lz4", "none"]
_COMPRESSION: dict[str, CompressionType] = {
    "zstd": CompressionType.ZSTD,
    "lz4": CompressionType.LZ4,
    "none": CompressionType.NONE,
}
_MAX_SEQUENCE = 0xFFFF_FFFF
_MAX_TIME = 0xFFFF_FFFF_FFFF_FFFF


class LogError(ValueError):
    """A log is missing, not MCAP, not a sensorimotor log, corrupt, or could not be written.

    Truncation is not an error: readers yield what is complete and say so (:class:`LogEnd`).
    """


# --------------------------------------------------------------------------- schemas

# What the perception model estimates (perception.config.OBS_NAMES; tests keep them equal).
# Listed so that Foxglove offers them in message paths; a model may declare others.
ESTIMATE_NAMES = (
    "imu_sin", "imu_cos", "imu_rate", "img_sin", "img_cos", "camera_ok", "arm_angle", "arm_rate",
    "fused_sin", "fused_cos", "fused_rate",
)  # fmt: skip


def _field(kind: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"type": kind, "description": description, **extra}


def _numbers(description: str) -> dict[str, Any]:
    return _field("array", description, items={"type": "number"})


def _record(title: str, description: str, properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An object schema; unknown fields are allowed so that writers may add fields later."""
    return {
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": True,
        **extra,
    }


_LABEL = {"name": _field("string", "short name"), "unit": _field("string", "SI unit")}
_DEVICE_SPEC = _record(
    "sensorimotor.DeviceSpec",
    "The device's self-description from its DESCRIBE frame (docs/protocol.md)",
    {
        "protocol_version": _field("integer", "message-set version the device speaks"),
        "name": _field("string", "device name"),
        "imu_rate_hz": _field("integer", "IMU samples per second"),
        "imu_channels": _field(
            "array",
            "SENSOR record layout: these channels, then the encoders",
            items=_record(
                "Channel",
                "an IMU channel and how SENSOR carries it",
                {
                    **_LABEL,
                    "encoding": _field("string", "f32 (SI units) or i16 (counts times scale)"),
                    "scale": _field("number", "SI units per count (1 for f32)"),
                },
            ),
        ),
        "imu_window": _field("integer", "IMU samples per model input window"),
        "samples_per_frame": _field("integer", "IMU samples per SENSOR frame"),
        "stream_rate_hz": _field("integer", "SENSOR frames per second"),
        "control_rate_hz": _field("integer", "COMMAND frames per second the device expects"),
        "encoders": _field(
            "array",
            "one i32 count each per SENSOR sample, in this order",
            items=_record(
                "Encoder",
                "an encoder",
                {
                    "name": _field("string", "short name"),
                    "cpr": _field("integer", "counts per revolution"),
                    "limit_rad": _field("number", "the angle it must stay within (0: unbounded)"),
                },
            ),
        ),
        "camera": _record(
            "Camera",
            "the camera that sends IMAGE frames; null (and so not required) without one",
            {
                "height": _field("integer", "pixels"),
                "width": _field("integer", "pixels"),
                "rate_hz": _field("integer", "IMAGE frames per second"),
            },
        ),
        "actuators": _field(
            "array",
            "one COMMAND value each, in this order",
            items=_record(
                "Actuator",
                "an actuator and the command range the device accepts",
                {**_LABEL, "min": _field("number", "lowest command"), "max": _field("number", "highest command")},
            ),
        ),
        "watchdog_ms": _field("integer", "the device zeroes its actuators after this long without a COMMAND"),
    },
)
_DEVICE_SPEC["required"].remove("camera")
_IMU_SAMPLE = {
    "t_device_us": _field("integer", "device clock of the sample (µs, u32, wraps after ~71 minutes)"),
    "frame_seq": _field("integer", "protocol seq of the SENSOR frame that carried the sample"),
}

#: topic -> JSON Schema of its messages; the schema's ``title`` is the MCAP schema name.
#: Foxglove's JSON-schema parser (Lichtblick's parseJsonSchema) accepts a subset of JSON Schema:
#: every object lists ``properties``, every field has one ``type``, and an array holds primitives
#: or objects, never arrays (:func:`schema_problems` checks exactly that).
SCHEMAS: dict[str, dict[str, Any]] = {
    TOPIC_COMMAND: _record(
        "sensorimotor.Command",
        "A command sent to the device",
        {
            "cycle": _field("integer", "control cycle since the loop started"),
            "t_host_ns": _field("integer", "host monotonic time it was written (ns since the run started)"),
            "volts": _numbers("volts sent, one per actuator, after the limits"),
            "requested_volts": _numbers("volts the controller asked for, before the limits"),
            "clamped": _field("boolean", "whether a limit applied (voltage or slew rate)"),
            "safe": _field("string", "why the safe command was sent instead of the model's (empty: a model command)"),
            "sensor_seq": _field("integer", "protocol seq of the newest SENSOR frame it was computed from (-1: none)"),
            "image_seq": _field("integer", "protocol seq of the newest IMAGE frame it was computed from (-1: none)"),
        },
    ),
    TOPIC_ESTIMATE: _record(
        "sensorimotor.Estimate",
        "The controller's estimates at a command",
        {
            "cycle": _field("integer", "control cycle"),
            "estimates": {
                "type": "object",
                "description": "estimate name -> value (the model's estimate names)",
                "properties": {name: {"type": "number"} for name in ESTIMATE_NAMES},
                "additionalProperties": {"type": "number"},
            },
        },
    ),
    TOPIC_EVENT: _record(
        "sensorimotor.Event",
        "A notable event; events may carry further fields",
        {"kind": _field("string", "what happened, e.g. sensor_timeout"), "message": _field("string", "for people")},
    ),
    TOPIC_DEVICE: _record(
        "sensorimotor.DeviceInfo",
        "The device at the handshake, and the command limits the host applied "
        "(`limits`: one [lo, hi] pair per actuator, in volts)",
        {"spec": _DEVICE_SPEC},
        # `limits` is a list of pairs; Foxglove's parser rejects an array of arrays, so it is required
        # but not listed (additionalProperties allows it).
        required=["spec", "limits"],
    ),
    TOPIC_META: _record(
        "sensorimotor.RunMeta",
        "How the run was started",
        {
            "model": _field("string", "path of the ONNX model"),
            "rate_hz": _field("number", "control rate"),
            "duration_s": _field("number", "requested duration"),
            "port": _field("string", "serial port"),
            "twin": _field("boolean", "whether the device was the simulated twin"),
        },
    ),
    TOPIC_SUMMARY: _record(
        "sensorimotor.RunSummary",
        "What `hw run` printed at the end (also its --json); further fields as in docs/log-format.md",
        {
            "device": _field("string", "device name"),
            "rate_hz": _field("number", "target control rate"),
            "cycles": _field("integer", "cycles run (model + safe commands)"),
            "commands": _field("integer", "model commands sent"),
            "safe_commands": _field("integer", "safe commands sent (failsafe, warm-up, stops)"),
            "achieved_rate_hz": _field("number", "cycles per second achieved"),
            "missed_cycles": _field("integer", "cycles skipped because the loop fell behind"),
            "latency_us_p50": _field("number", "sensor arrival -> command written, median (us)"),
            "latency_us_p99": _field("number", "... 99th percentile (us)"),
            "latency_us_max": _field("number", "... maximum (us)"),
            "frames_in": _field("integer", "valid frames received"),
            "frames_lost": _field("integer", "frames missing from the device's sequence"),
            "frames_bad": _field("integer", "frames dropped by the decoder (CRC, COBS, size, version)"),
            "commands_sent": _field("integer", "COMMAND frames sent after START"),
            "device_watchdog_trips": _field("integer", "watchdog trips the device reported"),
            "health_problems": _field("array", "breached health thresholds (empty: healthy)", items={"type": "string"}),
        },
        required=["cycles", "commands"],
    ),
    TOPIC_IMU: _record(
        "sensorimotor.ImuSample",
        "One IMU sample, logged at its own time: one number per channel the device describes, by its name "
        "(gyro_x .. accel_z for a six-channel IMU), in SI units; a non-finite value is null",
        _IMU_SAMPLE,
    ),
    TOPIC_REFERENCE: _record(
        "sensorimotor.Reference",
        "A reference sensor's values at the frame's device time (REFERENCE frame); the twin sends alpha, alpha_d, "
        "theta, theta_d with each SENSOR frame and f_alpha, f_class with each IMAGE frame",
        {
            "t_device_us": _field("integer", "device clock the values belong to (µs, u32)"),
            "frame_seq": _field("integer", "protocol seq of the REFERENCE frame"),
        },
    ),
    TOPIC_ENCODER: _record(
        "sensorimotor.EncoderSample",
        "One encoder at one IMU sample (one message per encoder the device describes)",
        {
            **_IMU_SAMPLE,
            "encoder": _field("string", "the encoder's name"),
            "counts": _field("integer", "encoder counts"),
            "angle_rad": _field("number", "2 pi counts / the encoder's counts per revolution"),
        },
    ),
    # foxglove.RawImage as published in foxglove/foxglove-sdk schemas/jsonschema/RawImage.json
    # (descriptions shortened); Foxglove's Image panel shows it.
    TOPIC_IMAGE: {
        "title": "foxglove.RawImage",
        "description": "A raw image",
        "type": "object",
        "properties": {
            "timestamp": {
                "type": "object",
                "title": "time",
                "properties": {
                    "sec": {"type": "integer", "minimum": 0},
                    "nsec": {"type": "integer", "minimum": 0, "maximum": 999999999},
                },
                "description": "Timestamp of image",
            },
            "frame_id": _field("string", "Frame of reference for the image"),
            "width": _field("integer", "Image width in pixels", minimum=0),
            "height": _field("integer", "Image height in pixels", minimum=0),
            "encoding": _field("string", "Encoding of the raw image data (mono8: one unsigned byte per pixel)"),
            "step": _field("integer", "Byte length of a single row", minimum=0),
            "data": _field("string", "Raw image data", contentEncoding="base64"),
        },
    },
}
# Optional (not required): only a stateful model's records carry it (hardware/model.py, recurrent state).
SCHEMAS[TOPIC_ESTIMATE]["properties"]["state"] = _field(
    "array", "a stateful model's state after this cycle, one entry per state input",
    items={"type": "object", "properties": {"name": _field("string", "state input"), "values": _numbers("its values")}},
)  # fmt: skip

_PRIMITIVES = ("boolean", "string", "number", "integer")


def schema_problems(schema: Mapping[str, Any], where: str = "schema") -> list[str]:
    """Why Foxglove's JSON-schema parser would reject ``schema`` (empty when it accepts it)."""
    if schema.get("type") != "object":
        return [f"{where}: type must be 'object', got {schema.get('type')!r}"]
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return [f"{where}: an object schema must list its properties"]
    problems: list[str] = []
    for name, field in properties.items():
        problems += _field_problems(field, f"{where}.{name}")
    return problems


def _field_problems(field: Any, where: str) -> list[str]:
    kind = field.get("type") if isinstance(field, Mapping) else None
    if kind == "object":
        return schema_problems(field, where)
    if kind == "string":
        encoding = field.get("contentEncoding")
        return [] if encoding in (None, "base64") else [f"{where}: contentEncoding {encoding!r}"]
    if kind == "array":
        items = field.get("items")
        item_kind = items.get("type") if isinstance(items, Mapping) else None
        if item_kind == "object":
            return schema_problems(items, f"{where}[]")
        if item_kind in _PRIMITIVES and "contentEncoding" not in items:
            return []
        return [f"{where}: array items must be a primitive or an object, got {item_kind!r}"]
    return [] if kind in _PRIMITIVES else [f"{where}: type must be one of {_PRIMITIVES}, object or array: {kind!r}"]


def _schema_bytes(schema: Mapping[str, Any]) -> bytes:
    return json.dumps(schema, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- messages


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


# --------------------------------------------------------------------------- writing

# What a link carries to the sink: a message (topic, encoding, payload, log_time_ns, seq,
# schema: the topic's JSON Schema on its first message, else None), a flush request (an
# object with done(), called once the file holds everything before it), IDLE (nothing
# arrived before the sink's deadline) or CLOSE.
Item = Any
CLOSE = None  # also used by hardware.logprocess, which serves a sink from a pipe
IDLE = "idle"

Backend = Literal["thread", "process"]


class LogWriter:
    """Writes a run log off the caller's thread; channels are registered on first use of a topic.

    ``write_frame`` / ``write_json`` validate their arguments and hand the message over;
    the writing side encodes (JSON encoding included, so do not change ``obj`` after the
    call), decodes received frames into the sensor topics, compresses and writes. It closes
    the open chunk and hands it to the OS at least every ``flush_interval_s`` after a message
    was written, so after a crash (even ``kill -9``) the file holds every message older than
    that. A write it cannot do (disk full, I/O error, an object JSON cannot encode) stops the
    recording and raises :class:`LogError` naming the file from the next ``write_*``,
    ``flush`` or ``close``.

    ``backend="thread"`` writes on a thread of this process. ``backend="process"`` writes in
    a forked child (:mod:`sensorimotor.hardware.log.process`) so that encoding and compression
    never hold this process's GIL: what ``hw run`` uses at 1 kHz. A child whose parent dies
    without closing the log closes it itself, after an event saying so. With ``batched``
    the messages are held until :meth:`deliver` (the loop calls it before it waits for the
    next frame, so the hand-over is off the latency path), a flush, a close, 64 KiB or 50 ms.

    Thread-safe: messages are written in the order the calls were made. A writer still open
    when the program exits is closed then (not after ``kill -9``: see ``flush_interval_s``).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        chunk_size: int = 256 * 1024,
        compression: Compression = "zstd",
        metadata: Mapping[str, str] | None = None,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        backend: Backend = "thread",
        batched: bool = False,
    ) -> None:
        if compression not in _COMPRESSION:
            choices = ", ".join(_COMPRESSION)
            raise ValueError(f"compression must be one of {choices}; got {compression!r}")
        if not (math.isfinite(flush_interval_s) and flush_interval_s > 0):
            raise ValueError(f"flush_interval_s must be a positive number of seconds, got {flush_interval_s}")
        if backend not in ("thread", "process"):
            raise ValueError(f"backend must be 'thread' or 'process'; got {backend!r}")
        self.path = Path(path)
        self.flush_interval_s = float(flush_interval_s)
        self._lock = threading.Lock()
        self._topics: dict[str, tuple[str, Mapping[str, Any] | None]] = {}  # topic -> (encoding, schema)
        self._closed = False
        self._error_reported = False
        # Header and metadata are written and flushed here, so a path that cannot be written
        # (missing folder, no permission, disk full) fails before the run starts.
        file = _create(self.path)
        writer = Writer(file, chunk_size=chunk_size, compression=_COMPRESSION[compression])
        meta = {**library_versions(), **(metadata or {}), "log_format": LOG_FORMAT_VERSION}
        try:
            writer.start(profile=PROFILE)
            writer.add_metadata(METADATA_NAME, meta)
            file.flush()
        except OSError as exc:
            _close_quietly(file)
            raise _write_error(self.path, exc) from None
        sink = LogSink(self.path, file, writer, self.flush_interval_s)
        if backend == "process":
            from sensorimotor.hardware.log.process import ProcessLink

            self._link: Link = ProcessLink(sink, batched=batched)
        else:
            self._link = _ThreadLink(sink)
        # A program that ends without close() (an uncaught exception included) still gets a
        # complete log: the writing side would otherwise end with what it holds.
        atexit.register(self.close)

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def process_id(self) -> int | None:
        """The writing child's pid with ``backend="process"``, else None."""
        return getattr(self._link, "pid", None)

    @property
    def counts(self) -> dict[str, int]:
        """Messages written per topic, decoded topics included (exact once flush() or close() returned)."""
        return self._link.counts()

    def write_frame(self, topic: str, body: bytes, *, log_time_ns: int, seq: int) -> None:
        """Log a raw frame body (header+payload+crc); `seq` is the frame's protocol seq.

        A valid SENSOR or IMAGE frame on ``/serial/rx`` also yields decoded messages
        (``/sensors/imu``, ``/sensors/encoder``, ``/camera/image``).
        """
        self._put(topic, FRAME_ENCODING, bytes(body), log_time_ns, seq, None)

    def write_json(
        self,
        topic: str,
        obj: Mapping[str, Any],
        *,
        log_time_ns: int,
        seq: int = 0,
        schema: Mapping[str, Any] | None = None,
    ) -> None:
        """Log `obj` as compact JSON (numpy values are converted) on a topic with a JSON Schema.

        The schema is :data:`SCHEMAS`' for the topic; a topic not there needs ``schema`` (an
        object schema with a ``title``) on its first message. ValueError for a topic without one.
        """
        self._put(topic, JSON_ENCODING, obj, log_time_ns, seq, schema)

    def deliver(self) -> None:
        """Hand over the messages a ``batched`` process writer holds (no-op otherwise); never blocks on the disk."""
        with self._lock:
            self._check_open()
            with self._reporting():
                self._link.deliver()

    def flush(self) -> None:
        """Block until every message written so far is in the file (handed to the OS)."""
        with self._lock:
            self._check_open()
            with self._reporting():
                self._link.flush()
            self._check_open()

    def close(self) -> None:
        """Write what is queued, the summary and the footer, close the file (idempotent).

        Raises LogError if the writing side failed and no earlier call reported it.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            atexit.unregister(self.close)
            self._link.close()
            error = self._link.error()
            if error is not None and not self._error_reported:
                self._error_reported = True
                raise error

    def _put(self, topic: str, encoding: str, payload: Any, log_time_ns: int, seq: int, schema: Any) -> None:
        if not 0 <= seq <= _MAX_SEQUENCE:
            raise ValueError(f"sequence {seq} does not fit in uint32")
        if not 0 <= log_time_ns <= _MAX_TIME:
            raise ValueError(f"log time {log_time_ns} ns does not fit in uint64")
        with self._lock:
            self._check_open()
            known = self._topics.get(topic)
            first = None
            if known is None or known[0] != encoding or schema is not None:
                first = self._claim(topic, encoding, schema)  # first message on the topic, or a mistake
            with self._reporting():
                self._link.put((topic, encoding, payload, log_time_ns, seq, first))

    @contextlib.contextmanager
    def _reporting(self) -> Iterator[None]:
        """A LogError raised to the caller here counts as reported: close() does not raise it again."""
        try:
            yield
        except LogError:
            self._error_reported = True
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"log writer for {self.path} is closed")
        error = self._link.error()
        if error is not None:
            self._error_reported = True
            raise error

    def _claim(self, topic: str, encoding: str, schema: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """Fix the encoding (and JSON Schema) of a topic at its first message; refuse changes.

        Returns the schema a newly claimed JSON topic is registered with (None otherwise).
        """
        known = self._topics.get(topic)
        if known is not None and known[0] != encoding:
            raise ValueError(f"topic {topic} carries {known[0]!r} messages, not {encoding!r}")
        if encoding == FRAME_ENCODING:
            if schema is not None or topic in SCHEMAS:
                raise ValueError(f"topic {topic} carries JSON; frame topics take no schema")
            self._topics[topic] = (encoding, None)
            return None
        if known is None:
            resolved = _topic_schema(topic, schema)
            self._topics[topic] = (encoding, resolved)
            return resolved
        if schema != known[1]:
            raise ValueError(f"topic {topic} was registered with another schema")
        return None


class Link(Protocol):
    """How LogWriter reaches its sink: in this process (a thread) or in a child process."""

    def put(self, item: Item) -> None: ...
    def deliver(self) -> None: ...  # hand over what is held (batched process link)
    def flush(self) -> None: ...  # blocks until the sink flushed
    def close(self) -> None: ...  # blocks until the file is closed
    def error(self) -> LogError | None: ...
    def counts(self) -> dict[str, int]: ...


class _ThreadFlush(threading.Event):
    def done(self) -> None:
        self.set()


class _ThreadLink:
    """The sink served by a daemon thread of this process, fed by a queue."""

    def __init__(self, sink: LogSink) -> None:
        self._sink = sink
        self._queue: queue.SimpleQueue[Item] = queue.SimpleQueue()
        self._thread = threading.Thread(target=sink.serve, args=(self._next,), name=f"LogWriter({sink.path.name})")
        self._thread.daemon = True
        self._thread.start()

    def _next(self, timeout: float | None) -> Item:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return IDLE

    def put(self, item: Item) -> None:
        self._queue.put(item)

    def deliver(self) -> None:
        pass  # nothing is held: puts are queued at once

    def flush(self) -> None:
        done = _ThreadFlush()
        self._queue.put(done)
        done.wait()

    def close(self) -> None:
        self._queue.put(CLOSE)
        self._thread.join()

    def error(self) -> LogError | None:
        return self._sink.error

    def counts(self) -> dict[str, int]:
        return dict(self._sink.counts)


class LogSink:
    """The writing side: encodes, decodes received frames into sensor topics, writes, compresses.

    Owned by one thread (or one child process). :meth:`serve` takes items from ``next_item``
    until CLOSE, handing the open chunk to the OS by its deadline, then finishes the file.
    The first failure is kept in :attr:`error`; after it, messages are dropped.
    """

    def __init__(self, path: Path, file: IO[bytes], writer: Writer, flush_interval_s: float) -> None:
        self.path, self.file, self.writer = path, file, writer
        self.flush_interval_s = flush_interval_s
        self.error: LogError | None = None
        self.on_error: Callable[[LogError], None] | None = None  # told of the first failure as it happens
        self.counts: dict[str, int] = {}
        self.schemas: dict[str, Mapping[str, Any]] = {}  # JSON topics claimed by the caller
        self._channels: dict[str, int] = {}
        self._decoder = FrameDecoder()

    def serve(self, next_item: Callable[[float | None], Item]) -> None:
        file_ok = True
        try:
            self._serve(next_item)
        except Exception as exc:  # reported in the caller's thread: nothing is lost silently
            self._fail(exc)
            file_ok = not isinstance(exc, OSError)
            while (item := next_item(None)) is not CLOSE:  # drop messages, answer flushes
                if not isinstance(item, tuple) and item is not IDLE:
                    item.done()
        try:
            if file_ok:
                self.writer.finish()
            self.file.close()
        except Exception as exc:
            self._fail(exc)
            _close_quietly(self.file)

    def _serve(self, next_item: Callable[[float | None], Item]) -> None:
        deadline: float | None = None  # when the oldest unflushed message must be in the file
        while True:
            item = next_item(None if deadline is None else max(0.0, deadline - time.monotonic()))
            if item is CLOSE:
                return
            if isinstance(item, tuple):
                self._write(*item)
                if deadline is None:
                    deadline = time.monotonic() + self.flush_interval_s
            elif item is not IDLE:  # a flush request
                self.writer.flush()
                deadline = None
                item.done()
                continue
            if deadline is not None and time.monotonic() >= deadline:
                self.writer.flush()  # finishes the open chunk and flushes the file (no fsync)
                deadline = None

    def _write(
        self, topic: str, encoding: str, payload: Any, log_time_ns: int, seq: int, schema: Mapping[str, Any] | None
    ) -> None:
        if schema is not None:
            self.schemas[topic] = schema
        if encoding == JSON_ENCODING:
            try:
                data = encode_json(payload)
            except (TypeError, ValueError) as exc:
                raise _EncodeError(f"the message on {topic} at log time {log_time_ns} ns: {exc}") from None
        else:
            data = payload
        self._add(topic, encoding, data, log_time_ns, seq)
        if topic == TOPIC_RX:  # decoded views of received frames, after the raw frame
            for d in self._decoder.decode(data, log_time_ns):
                self._add(d.topic, JSON_ENCODING, encode_json(d.obj), d.log_time_ns, d.sequence)

    def _add(self, topic: str, encoding: str, data: bytes, log_time_ns: int, seq: int) -> None:
        channel_id = self._channels.get(topic)
        if channel_id is None:
            channel_id = self._channels[topic] = self._register(topic, encoding)
        self.writer.add_message(channel_id, log_time=log_time_ns, data=data, publish_time=log_time_ns, sequence=seq)
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def _register(self, topic: str, encoding: str) -> int:
        schema_id = 0
        if encoding == JSON_ENCODING:
            schema = self.schemas.get(topic) or SCHEMAS[topic]  # decoded topics are not claimed
            schema_id = self.writer.register_schema(schema["title"], "jsonschema", _schema_bytes(schema))
        return self.writer.register_channel(topic, encoding, schema_id)

    def _fail(self, exc: Exception) -> None:
        if self.error is None:  # the first failure is the cause; later ones follow from it
            if isinstance(exc, OSError):
                self.error = _write_error(self.path, exc)
            else:
                what = str(exc) if isinstance(exc, _EncodeError) else f"{type(exc).__name__}: {exc}"
                self.error = LogError(f"{self.path}: the recording stopped: cannot write {what}")
            if self.on_error is not None:
                self.on_error(self.error)


class _EncodeError(Exception):
    """A message could not be encoded (the caller's object)."""


def _topic_schema(topic: str, given: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The JSON Schema of a JSON topic: SCHEMAS' entry, else the caller's (checked)."""
    known = SCHEMAS.get(topic)
    if known is not None:
        if given is not None and given != known:
            raise ValueError(f"topic {topic} has its schema in mcaplog.SCHEMAS; pass none")
        return known
    if given is None:
        raise ValueError(
            f"topic {topic} has no JSON schema: add one to mcaplog.SCHEMAS or pass schema= on its first message "
            f"(topics with a schema: {', '.join(sorted(SCHEMAS))})"
        )
    problems = schema_problems(given)
    if not isinstance(given.get("title"), str) or not given["title"]:
        problems.append("schema: needs a 'title' (the MCAP schema name)")
    if problems:
        raise ValueError(f"schema of {topic} is not one Foxglove reads: {'; '.join(problems)}")
    return given


def _create(path: Path) -> IO[bytes]:
    try:
        return open(path, "wb")  # the writer thread owns it until close()
    except OSError as exc:
        raise LogError(f"cannot create the log {path}: {exc.strerror or exc}") from None


def _write_error(path: Path, exc: OSError) -> LogError:
    return LogError(f"cannot write the log {path}: {exc.strerror or exc}; the recording stopped there")


def _close_quietly(file: IO[bytes]) -> None:
    with contextlib.suppress(OSError):  # the error that made us close is the one reported
        file.close()


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class LogEnd:
    """How a log file ended, as found by reading it to the end."""

    complete: bool  # the footer and the closing magic were reached: the writer closed the log
    offset: int  # bytes of complete records (a truncated file has size - offset bytes of a partial record)
    size: int  # file size
    messages: int  # complete messages read
    last_log_time_ns: int | None  # latest log time among them
    data_complete: bool = False  # the data section's end was reached: every message is there

    @property
    def cut_mid_record(self) -> bool:
        return not self.complete and self.offset < self.size

    @property
    def lost_messages(self) -> bool:
        """Messages may be missing: the file ends before the end of its data section."""
        return not self.complete and not self.data_complete

    def describe(self) -> str:
        """One phrase for people: how the log ends."""
        if self.complete:
            return "log is complete"
        if self.data_complete:  # cut in the index, footer or closing magic the writer adds at close
            return (
                f"log is cut at byte {self.size}, after its last message: what its writer adds on closing (index, "
                "footer, closing magic) is incomplete (the file was cut short, or its writer died while closing it)"
            )
        if self.cut_mid_record:
            where = f"byte {self.offset} of {self.size}"
            return f"log is cut in the middle of a record at {where} (the recording stopped abnormally)"
        return "log ends without its footer (the recording stopped abnormally)"


class _Truncated(Exception):
    """The file ends in the middle of a record."""


class _ExactReader(io.BufferedReader):
    """A file reader whose reads return exactly the bytes asked for, else raise `_Truncated`."""

    def __init__(self, raw: io.FileIO, size: int) -> None:
        super().__init__(raw)
        self.size = size
        self.position = 0  # bytes read so far (kept here: tell() would cost a system call per record)

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            data = super().read()
        elif size > self.size - self.position:
            raise _Truncated
        else:
            data = super().read(size)
        self.position += len(data)
        return data


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


class _Records:
    """The records of a log file in order, stopping quietly where the file is truncated.

    After iteration, ``complete``, ``offset`` and ``size`` say how the file ended.
    """

    def __init__(self, path: Path, *, emit_chunks: bool) -> None:
        self.path, self.emit_chunks = path, emit_chunks
        self.complete, self.offset, self.size = False, 0, 0
        self._footer = False
        self.data_complete = False

    def __iter__(self) -> Iterator[McapRecord]:
        with _open(self.path) as stream:
            self.size = stream.size
            if not _has_magic(self.path, stream):
                return
            self.offset = stream.position
            reader = StreamReader(stream, skip_magic=True, emit_chunks=self.emit_chunks, validate_crcs=True)
            try:
                for n, record in enumerate(reader.records):
                    self._check(record, first=n == 0)
                    self.offset = stream.position  # just past the record (a chunk's records: past the chunk)
                    yield record
            except _Truncated:
                return
            except LogError:
                raise
            except Exception as exc:  # any decode failure of a complete record means corruption
                raise LogError(f"{self.path} is corrupt near byte {stream.position}: {exc}") from exc
            # Complete only once the closing magic after the footer was read too: a file cut
            # anywhere in its last bytes is truncated like one whose writer died.
            self.complete = self._footer

    def _check(self, record: McapRecord, first: bool) -> None:
        if first and not isinstance(record, Header):
            raise LogError(f"{self.path} is corrupt: it does not start with an MCAP header")
        if isinstance(record, Header) and record.profile != PROFILE:
            raise LogError(
                f"{self.path} is an MCAP file of profile {record.profile!r}, not a log written by `hw run --record` "
                f"(profile {PROFILE!r})"
            )
        if isinstance(record, DataEnd):
            self.data_complete = True
        if isinstance(record, Footer):
            self._footer = True


class LogReader:
    """The messages of a log in file order; after iterating to the end, ``end`` says how the file ended.

    A truncated log (writer crashed, file cut) yields its complete chunks and sets
    ``end.complete`` to False; a file that is not a sensorimotor MCAP log raises LogError.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.end: LogEnd | None = None

    def __iter__(self) -> Iterator[LogMessage]:
        records = _Records(self.path, emit_chunks=False)
        topics: dict[int, str] = {}
        count, last = 0, None
        for record in records:
            if isinstance(record, Channel):
                topics[record.id] = record.topic
            elif isinstance(record, Message):
                count += 1
                last = record.log_time if last is None else max(last, record.log_time)
                yield _message(self.path, topics, record)
        self.end = LogEnd(records.complete, records.offset, records.size, count, last, records.data_complete)


def iter_log(path: str | Path) -> Iterator[LogMessage]:
    """Yield the messages of a log in file order (a truncated log yields its complete chunks)."""
    return iter(LogReader(path))


def _message(path: Path, topics: Mapping[int, str], record: Message) -> LogMessage:
    topic = topics.get(record.channel_id)
    if topic is None:
        raise LogError(f"{path} is corrupt: message on unknown channel {record.channel_id}")
    return LogMessage(topic, record.log_time, record.sequence, record.data)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The "sensorimotor" metadata record of a log (empty if it has none)."""
    found: dict[str, str] = {}
    for record in _Records(Path(path), emit_chunks=True):
        if isinstance(record, Metadata) and record.name == METADATA_NAME:
            found.update(record.metadata)
    return found


def summarize_log(path: str | Path) -> dict[str, int]:
    """Number of messages per topic."""
    return dict(Counter(message.topic for message in iter_log(path)))
