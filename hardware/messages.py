"""Typed message payloads of the serial protocol, one frozen dataclass per message type.

Every message has ``pack() -> bytes`` and ``unpack(payload) -> message``; ``unpack``
raises :class:`MessageError` naming the message on a wrong length or value. Shapes,
counts and floats are checked when a message is built (integer ranges when it is packed),
and floats are stored as the float32 sent on the wire, so ``unpack(m.pack()) == m``.
:func:`make_frame` and :func:`parse_message` connect messages to :mod:`sensorimotor.hardware.framing`.
Byte layouts and units: ``docs/protocol.md``. Only the standard library and numpy.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any, ClassVar, Self

import numpy as np

from sensorimotor.hardware.framing import PROTOCOL_VERSION, Frame
from sensorimotor.hardware.spec import (
    ENCODINGS,
    MAX_IMAGE_PIXELS,
    MAX_SAMPLES_PER_FRAME,
    Actuator,
    Camera,
    Channel,
    DeviceSpec,
    Encoder,
    SpecError,
)


class MsgType(IntEnum):
    """Frame ``msg_type`` byte. Direction in the comment (host = robot computer)."""

    HELLO = 0x01  # host -> device: who are you?
    DESCRIBE = 0x02  # device -> host: DeviceInfo
    START = 0x03  # host -> device: start streaming
    STOP = 0x04  # host -> device: stop streaming, zero the actuators
    SENSOR = 0x10  # device -> host: SensorBatch
    IMAGE = 0x11  # device -> host: ImageFrame
    STATUS = 0x12  # device -> host: Status
    REFERENCE = 0x13  # device -> host: Reference (optional: a reference sensor's labels, for fine-tuning)
    COMMAND = 0x20  # host -> device: Command


class StatusFlags(IntFlag):
    """Bits of :attr:`Status.flags`; other bits are reserved (sent as 0, ignored)."""

    NONE = 0
    WATCHDOG_TRIPPED = 1 << 0
    STREAMING = 1 << 1


class MessageError(ValueError):
    """A payload or message value is invalid; the text names the message."""


MAX_SAMPLES = MAX_SAMPLES_PER_FRAME  # SensorBatch records per frame
_WIRE_TYPE = {"f32": "<f4", "i16": "<i2"}


# ----------------------------------------------------------------------------- helpers


def _check_len(name: str, payload: bytes, expected: int, detail: str = "") -> None:
    if len(payload) != expected:
        raise MessageError(f"{name} payload must be {expected} bytes{detail}, got {len(payload)}")


def _counted(name: str, payload: bytes, item_size: int, what: str) -> int:
    """The item count that opens a count-prefixed payload, once the payload's length is checked against it."""
    if not payload:
        raise MessageError(f"{name} payload is empty (needs a{'n' if what[0] in 'aeiou' else ''} {what} count)")
    n = payload[0]
    _check_len(name, payload, 1 + item_size * n, f" for {n} {what}s")
    return n


def _unpack(fmt: struct.Struct, name: str, payload: bytes) -> tuple[Any, ...]:
    _check_len(name, payload, fmt.size)
    return fmt.unpack(payload)


def _pack(fmt: struct.Struct, name: str, *values: Any) -> bytes:
    try:
        return fmt.pack(*values)
    except (struct.error, OverflowError) as exc:  # an integer field out of its range
        raise MessageError(f"{name}: value out of range for {fmt.format!r}: {exc}") from None


def _f32(name: str, value: float) -> float:
    """``value`` rounded to float32; non-finite or out-of-range values are rejected."""
    if not math.isfinite(value):
        raise MessageError(f"{name} must be finite, got {value}")
    try:
        return float(struct.unpack("<f", struct.pack("<f", value))[0])
    except OverflowError:
        raise MessageError(f"{name} = {value} does not fit in a float32") from None


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= value <= hi:
        raise MessageError(f"{name} must be in {lo}..{hi}, got {value}")


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Hello:
    """HELLO (host -> device): ask the device to DESCRIBE itself."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.HELLO
    FORMAT: ClassVar[struct.Struct] = struct.Struct("<H")

    protocol_version: int

    def pack(self) -> bytes:
        return _pack(self.FORMAT, "Hello", self.protocol_version)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        return cls(*_unpack(cls.FORMAT, "Hello", payload))


@dataclass(frozen=True, slots=True)
class Describe:
    """DESCRIBE (device -> host): the device's :class:`~sensorimotor.hardware.spec.DeviceSpec`.

    Fixed part (36 bytes), then 21 bytes per IMU channel (name, unit, encoding, scale), 16 per
    encoder (name, counts/rev, limit) and 24 per actuator (name, unit, f32 min, f32 max).
    Layout: ``docs/protocol.md``.
    """

    MSG_TYPE: ClassVar[MsgType] = MsgType.DESCRIBE
    FIXED: ClassVar[struct.Struct] = struct.Struct("<H16sHHBHHBBHHBBB")
    CHANNEL: ClassVar[struct.Struct] = struct.Struct("<8s8sBf")
    ENCODER: ClassVar[struct.Struct] = struct.Struct("<8sIf")
    ACTUATOR: ClassVar[struct.Struct] = struct.Struct("<8s8sff")

    spec: DeviceSpec

    def pack(self) -> bytes:
        s = self.spec
        cam = s.camera or Camera(0, 0, 0)  # zeros on the wire: no camera
        head = _pack(
            self.FIXED, "Describe", s.protocol_version, s.name.encode(), s.imu_rate_hz, s.imu_window,
            s.samples_per_frame, s.stream_rate_hz, s.control_rate_hz, cam.height, cam.width, cam.rate_hz,
            s.watchdog_ms, len(s.imu_channels), len(s.encoders), len(s.actuators),
        )  # fmt: skip
        channels = b"".join(
            _pack(self.CHANNEL, "Describe", c.name.encode(), c.unit.encode(), ENCODINGS.index(c.encoding), c.scale)
            for c in s.imu_channels
        )
        encoders = b"".join(_pack(self.ENCODER, "Describe", e.name.encode(), e.cpr, e.limit_rad) for e in s.encoders)
        actuators = b"".join(
            _pack(self.ACTUATOR, "Describe", a.name.encode(), a.unit.encode(), a.min, a.max) for a in s.actuators
        )
        return head + channels + encoders + actuators

    @staticmethod
    def peek_version(payload: bytes) -> int | None:
        """The protocol version a DESCRIBE payload announces (its first u16), before parsing the rest."""
        return int.from_bytes(payload[:2], "little") if len(payload) >= 2 else None

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        if len(payload) < cls.FIXED.size:
            raise MessageError(f"Describe payload must be at least {cls.FIXED.size} bytes, got {len(payload)}")
        (version, name, imu_rate, window, spf, stream, control, height, width, cam, wd, n_ch, n_enc, n_act) = (
            cls.FIXED.unpack_from(payload)
        )
        size = cls.FIXED.size + n_ch * cls.CHANNEL.size + n_enc * cls.ENCODER.size + n_act * cls.ACTUATOR.size
        _check_len("Describe", payload, size, f" for {n_ch} channels, {n_enc} encoders and {n_act} actuators")
        at = cls.FIXED.size
        channels = []
        for _ in range(n_ch):
            cname, unit, encoding, scale = cls.CHANNEL.unpack_from(payload, at)
            if encoding >= len(ENCODINGS):
                raise MessageError(f"Describe: channel encoding {encoding} is unknown (0 f32, 1 i16)")
            channels.append(
                Channel(_text("channel name", cname), _text("channel unit", unit), ENCODINGS[encoding], scale)
            )
            at += cls.CHANNEL.size
        encoders = []
        for _ in range(n_enc):
            ename, cpr, limit = cls.ENCODER.unpack_from(payload, at)
            encoders.append(Encoder(_text("encoder name", ename), cpr, limit))
            at += cls.ENCODER.size
        actuators = []
        for _ in range(n_act):
            aname, unit, lo, hi = cls.ACTUATOR.unpack_from(payload, at)
            actuators.append(Actuator(_text("actuator name", aname), _text("actuator unit", unit), lo, hi))
            at += cls.ACTUATOR.size
        camera = None if (height, width, cam) == (0, 0, 0) else Camera(height, width, cam)
        try:
            spec = DeviceSpec(
                protocol_version=version, name=_text("name", name), imu_rate_hz=imu_rate, imu_channels=tuple(channels),
                imu_window=window, samples_per_frame=spf, stream_rate_hz=stream, control_rate_hz=control,
                encoders=tuple(encoders), camera=camera, actuators=tuple(actuators), watchdog_ms=wd,
            )  # fmt: skip
        except SpecError as exc:
            raise MessageError(f"Describe: {exc}") from None
        return cls(spec)


def _text(what: str, raw: bytes, message: str = "Describe") -> str:
    try:
        return raw.rstrip(b"\0").decode()
    except UnicodeDecodeError:
        raise MessageError(f"{message} {what} is not UTF-8: {raw!r}") from None


class SensorLayout:
    """A device's SENSOR record, derived from its description: each IMU channel, then each encoder.

    An ``f32`` channel travels as a float32 in SI units, an ``i16`` channel as signed counts
    that are multiplied by the channel's scale on receipt (rounded and clipped to int16 when
    sent); every encoder as an i32 count. Packed, little-endian (``docs/protocol.md``).
    """

    def __init__(self, channels: tuple[Channel, ...], encoders: int) -> None:
        self.channels, self.encoders = channels, encoders
        self.dtype = np.dtype(
            [(f"c{i}", _WIRE_TYPE[c.encoding]) for i, c in enumerate(channels)] + [("enc", "<i4", (encoders,))]
        )
        self.scale = np.array([c.scale for c in channels], np.float32)
        self.counted = np.array([c.encoding == "i16" for c in channels])
        # All float32 (the twin's): the same bytes as one (C,) field, read and written without a per-channel loop
        self.flat = (
            None if self.counted.any() else np.dtype([("imu", "<f4", (len(channels),)), ("enc", "<i4", (encoders,))])
        )

    @classmethod
    def of(cls, spec: DeviceSpec) -> SensorLayout:
        return cls(spec.imu_channels, len(spec.encoders))

    @classmethod
    def floats(cls, channels: int, encoders: int) -> SensorLayout:
        """Every channel a float32 (what a batch built without a device description is sent as)."""
        return cls(tuple(Channel(f"c{i}", "-") for i in range(channels)), encoders)

    def pack(self, imu: np.ndarray, encoder: np.ndarray) -> bytes:
        if imu.shape[1] != len(self.channels) or encoder.shape[1] != self.encoders:
            raise MessageError(
                f"SensorBatch: the device sends {len(self.channels)} channels and {self.encoders} encoders, "
                f"the batch has {imu.shape[1]} and {encoder.shape[1]}"
            )
        if self.flat is not None:
            flat = np.empty(len(imu), self.flat)
            flat["imu"], flat["enc"] = imu, encoder
            return bytes((len(flat),)) + flat.tobytes()
        records = np.empty(len(imu), self.dtype)
        for i in range(len(self.channels)):
            if self.counted[i]:
                records[f"c{i}"] = np.clip(np.rint(imu[:, i] / self.scale[i]), -32768, 32767)
            else:
                records[f"c{i}"] = imu[:, i]
        records["enc"] = encoder
        return bytes((len(records),)) + records.tobytes()

    def unpack(self, payload: bytes) -> tuple[np.ndarray, np.ndarray]:
        if not payload:
            raise MessageError("SensorBatch payload is empty (needs a sample count)")
        n = payload[0]
        _check_len("SensorBatch", payload, 1 + n * self.dtype.itemsize, f" for {n} samples")
        if self.flat is not None:
            flat = np.frombuffer(payload, self.flat, count=n, offset=1)
            return flat["imu"], flat["enc"]  # views of the payload: SensorBatch copies them
        records = np.frombuffer(payload, self.dtype, count=n, offset=1)
        imu = np.empty((n, len(self.channels)), np.float32)
        for i in range(len(self.channels)):
            imu[:, i] = records[f"c{i}"] * self.scale[i] if self.counted[i] else records[f"c{i}"]
        return imu, records["enc"].reshape(n, self.encoders)


@dataclass(frozen=True, slots=True, eq=False)
class SensorBatch:
    """SENSOR (device -> host): n IMU samples with every encoder's count at each, oldest first.

    The frame header's timestamp is the time of the LAST sample; the others are spaced
    1 / imu_rate_hz before it. ``layout`` is how it is sent (the device's; all float32 when
    None); reading one needs the layout its device announced (:func:`parse_message`).
    """

    MSG_TYPE: ClassVar[MsgType] = MsgType.SENSOR

    imu: np.ndarray  # (n, C) float32 in SI units: for the six-channel IMU gyro x, y, z (rad/s), accel x, y, z (m/s^2)
    encoder: np.ndarray  # (n, E) int32 encoder counts ((n,): one encoder)
    layout: SensorLayout | None = None

    def __post_init__(self) -> None:
        # Own copies: the message is frozen, so it must not alias the caller's arrays.
        imu = np.array(self.imu, dtype=np.float32, order="C")
        encoder = np.array(self.encoder, dtype=np.int32, order="C")
        if encoder.ndim == 1:
            encoder = encoder[:, None]
        if imu.ndim != 2 or encoder.ndim != 2 or encoder.shape[0] != imu.shape[0]:
            shapes = f"{imu.shape} and {encoder.shape}"
            raise MessageError(f"SensorBatch: need imu (n, C) and encoder (n, E), got {shapes}")
        _check_range("SensorBatch sample count", len(imu), 1, MAX_SAMPLES)
        object.__setattr__(self, "imu", imu)
        object.__setattr__(self, "encoder", encoder)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SensorBatch):
            return NotImplemented
        same_imu = np.array_equal(self.imu, other.imu, equal_nan=True)
        return same_imu and np.array_equal(self.encoder, other.encoder)

    def pack(self) -> bytes:
        layout = self.layout or SensorLayout.floats(self.imu.shape[1], self.encoder.shape[1])
        return layout.pack(self.imu, self.encoder)

    @classmethod
    def unpack(cls, payload: bytes, layout: SensorLayout | None = None) -> Self:
        if layout is None:
            raise MessageError("SENSOR frame before DESCRIBE: its record layout comes from the device's description")
        imu, encoder = layout.unpack(payload)
        return cls(imu, encoder, layout)


@dataclass(frozen=True, slots=True, eq=False)
class ImageFrame:
    """IMAGE (device -> host): one grayscale image, row-major uint8."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.IMAGE
    MAX_PIXELS: ClassVar[int] = MAX_IMAGE_PIXELS

    pixels: np.ndarray  # (height, width) uint8

    def __post_init__(self) -> None:
        pixels = np.array(self.pixels, dtype=np.uint8, order="C")  # own copy, as in SensorBatch
        if pixels.ndim != 2 or not (1 <= pixels.shape[0] <= 255 and 1 <= pixels.shape[1] <= 255):
            raise MessageError(f"ImageFrame: pixels must be (height, width), sides 1..255: {pixels.shape}")
        if pixels.size > self.MAX_PIXELS:
            raise MessageError(f"ImageFrame: {pixels.size} pixels, a frame carries {self.MAX_PIXELS}")
        object.__setattr__(self, "pixels", pixels)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ImageFrame):
            return NotImplemented
        return np.array_equal(self.pixels, other.pixels)

    def pack(self) -> bytes:
        return bytes(self.pixels.shape) + self.pixels.tobytes()

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        if len(payload) < 2:
            raise MessageError(f"ImageFrame payload of {len(payload)} bytes lacks height and width")
        height, width = payload[0], payload[1]
        _check_len("ImageFrame", payload, 2 + height * width, f" for {height}x{width}")
        return cls(np.frombuffer(payload, np.uint8, offset=2).reshape(height, width))


@dataclass(frozen=True, slots=True)
class Command:
    """COMMAND (host -> device): one voltage per actuator (V); the device clamps to its range."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.COMMAND

    volts: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_range("Command actuator count", len(self.volts), 0, 255)
        volts = tuple(_f32(f"Command.volts[{i}]", v) for i, v in enumerate(self.volts))
        object.__setattr__(self, "volts", volts)

    def pack(self) -> bytes:
        return struct.pack(f"<B{len(self.volts)}f", len(self.volts), *self.volts)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        n = _counted("Command", payload, 4, "actuator")
        return cls(struct.unpack_from(f"<{n}f", payload, 1))


@dataclass(frozen=True, slots=True)
class Status:
    """STATUS (device -> host): device state and its receive counters."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.STATUS
    FORMAT: ClassVar[struct.Struct] = struct.Struct("<BIII")

    flags: StatusFlags
    frames_ok: int  # host -> device frames decoded
    frames_bad: int  # host -> device frames dropped (CRC, COBS, version, size)
    commands_applied: int  # COMMAND frames applied to the actuators

    def __post_init__(self) -> None:
        object.__setattr__(self, "flags", StatusFlags(self.flags))

    def pack(self) -> bytes:
        counters = (self.frames_ok, self.frames_bad, self.commands_applied)
        return _pack(self.FORMAT, "Status", self.flags, *counters)

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        return cls(*_unpack(cls.FORMAT, "Status", payload))


@dataclass(frozen=True, slots=True)
class Start:
    """START (host -> device): start streaming SENSOR and IMAGE frames. Empty payload."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.START

    def pack(self) -> bytes:
        return b""

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        _check_len("Start", payload, 0)
        return cls()


@dataclass(frozen=True, slots=True)
class Stop:
    """STOP (host -> device): stop streaming and zero the actuators. Empty payload."""

    MSG_TYPE: ClassVar[MsgType] = MsgType.STOP

    def pack(self) -> bytes:
        return b""

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        _check_len("Stop", payload, 0)
        return cls()


@dataclass(frozen=True, slots=True)
class Reference:
    """REFERENCE (device -> host, optional): named values from a reference sensor, at the frame's timestamp.

    Sent only by a device fitted with one (a temporary pendulum encoder, motion capture; the
    twin's ground truth with ``device.reference``). The host does not control with it: it is
    logged, and labels perception fine-tuning (docs/perception.md). Names are 1..8 ASCII bytes.
    """

    MSG_TYPE: ClassVar[MsgType] = MsgType.REFERENCE
    MAX_VALUES: ClassVar[int] = 16

    values: tuple[tuple[str, float], ...]  # (name, value) in the order sent

    def __post_init__(self) -> None:
        _check_range("Reference value count", len(self.values), 1, self.MAX_VALUES)
        checked = []
        for name, value in self.values:
            if not (1 <= len(name) <= 8 and name.isascii() and name.isprintable()):
                raise MessageError(f"Reference: value name {name!r} must be 1..8 printable ASCII characters")
            checked.append((name, _f32(f"Reference.{name}", value)))
        object.__setattr__(self, "values", tuple(checked))

    def as_dict(self) -> dict[str, float]:
        return dict(self.values)

    def pack(self) -> bytes:
        return bytes((len(self.values),)) + b"".join(
            struct.pack("<8sf", name.encode("ascii"), value) for name, value in self.values
        )

    @classmethod
    def unpack(cls, payload: bytes) -> Self:
        n = _counted("Reference", payload, 12, "value")
        values = []
        for i in range(n):
            raw, value = struct.unpack_from("<8sf", payload, 1 + 12 * i)
            values.append((_text("value name", raw, "Reference"), value))
        return cls(tuple(values))


Message = Hello | Describe | Start | Stop | SensorBatch | ImageFrame | Status | Command | Reference

MESSAGE_CLASSES: dict[MsgType, type[Message]] = {
    cls.MSG_TYPE: cls for cls in (Hello, Describe, Start, Stop, SensorBatch, ImageFrame, Status, Command, Reference)
}


# ----------------------------------------------------------------------------- frames


def make_frame(
    msg_type: MsgType | int, seq: int, timestamp_us: int, message: Message, version: int = PROTOCOL_VERSION
) -> Frame:
    """Wrap ``message`` in a Frame; ``msg_type`` must be the message's own type."""
    if msg_type != message.MSG_TYPE:
        name = type(message).__name__
        raise MessageError(f"{name} is sent as {message.MSG_TYPE.name}, not as msg_type {msg_type}")
    return Frame(int(msg_type), seq, timestamp_us, message.pack(), version)


def parse_message(frame: Frame, layout: SensorLayout | None = None) -> Message:
    """The typed message a frame carries; MessageError for an unknown type or bad payload.

    ``layout``: the SENSOR record of the device that sent the frame (``SensorLayout.of(spec)``);
    a SENSOR frame cannot be read without it.
    """
    try:
        cls = MESSAGE_CLASSES[MsgType(frame.msg_type)]
    except ValueError:
        raise MessageError(f"unknown msg_type 0x{frame.msg_type:02X}") from None
    if cls is SensorBatch:
        return SensorBatch.unpack(frame.payload, layout)
    return cls.unpack(frame.payload)


class MessageReader:
    """:func:`parse_message` over one device's frames in order: SENSOR read with the layout its DESCRIBE gave.

    ``spec``: the device's description when it is known already (a log's, a handshake's).
    """

    def __init__(self, spec: DeviceSpec | None = None) -> None:
        self.layout = None if spec is None else SensorLayout.of(spec)

    def __call__(self, frame: Frame) -> Message:
        message = parse_message(frame, self.layout)
        if isinstance(message, Describe):
            self.layout = SensorLayout.of(message.spec)
        return message
