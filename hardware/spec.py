"""DeviceSpec: the one typed description of a device, from simulator config to handshake to model.

The simulator's config produces it (:meth:`sensorimotor.sim.config.DeviceConfig.spec`),
the twin encodes it as the DESCRIBE payload (:class:`sensorimotor.hardware.messages.Describe`),
the host decodes it back, the exported ONNX model embeds it as JSON metadata, and
:func:`compare` checks a model's spec against a device's field by field, naming every
mismatch. The runtime (windows, image shape, actuator count and limits) is sized from
the device's spec, never from constants. Layout on the wire: ``docs/protocol.md``.

Only the standard library: this module is on the light runtime path.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sensorimotor.hardware.framing import MAX_PAYLOAD, PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION", "Actuator", "Camera", "Channel", "DeviceSpec", "Encoder", "SpecError", "compare"]

#: Limits that come from the wire format (u8/u16 fields, the payload size).
MAX_SAMPLES_PER_FRAME = 64
MAX_IMAGE_PIXELS = MAX_PAYLOAD - 2  # an IMAGE payload: height, width, pixels
MAX_NAME_BYTES = 16
MAX_LABEL_BYTES = 8
MAX_CHANNELS = 32  # IMU channels
MAX_ENCODERS = 8
MAX_ACTUATORS = 8

#: How an IMU channel's samples travel in SENSOR: IEEE float32 in SI units, or signed 16-bit
#: counts that the host multiplies by the channel's ``scale`` (what an IMU's registers give).
ENCODINGS = ("f32", "i16")


#: The fields a description had before version 3 declared its sensors (a model exported then).
_FIXED_LAYOUT = ("encoder_cpr", "image_height", "image_width", "camera_rate_hz")


def _upgraded(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """An earlier description (one float32 IMU layout, one encoder, a camera) in today's fields; others as given."""
    if not set(_FIXED_LAYOUT) <= set(data) or "encoders" in data or "camera" in data:
        return data
    out = {k: v for k, v in data.items() if k not in _FIXED_LAYOUT}
    channels = data.get("imu_channels")
    if isinstance(channels, (list, tuple)):
        out["imu_channels"] = [
            {"encoding": "f32", "scale": 1.0, **c} if isinstance(c, Mapping) else c for c in channels
        ]
    out["encoders"] = [{"name": "arm", "cpr": data["encoder_cpr"], "limit_rad": 0.0}]  # its limit was not described
    out["camera"] = {"height": data["image_height"], "width": data["image_width"], "rate_hz": data["camera_rate_hz"]}
    return out


def _as_f32(value: Any) -> Any:
    """``value`` rounded to the float32 the wire carries; left as it is when it is no finite float32."""
    try:
        return struct.unpack("<f", struct.pack("<f", value))[0] if math.isfinite(value) else value
    except (TypeError, OverflowError, struct.error):
        return value


class SpecError(ValueError):
    """A device description is malformed or inconsistent; the text names the field."""


@dataclass(frozen=True)
class Channel:
    """One IMU channel: a short name, its SI unit and how SENSOR carries it."""

    name: str
    unit: str
    encoding: str = "f32"  # one of ENCODINGS
    scale: float = 1.0  # SI units per count ("i16"); 1 for "f32"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", _as_f32(self.scale))  # as the wire carries it

    @property
    def bytes(self) -> int:
        return 4 if self.encoding == "f32" else 2


@dataclass(frozen=True)
class Encoder:
    """One encoder: a short name, counts per revolution, and the angle it must stay within (0: unbounded)."""

    name: str
    cpr: int
    limit_rad: float = 0.0  # |angle| past which the host stops (a cable limit); 0 for a wheel that turns freely

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit_rad", _as_f32(self.limit_rad))  # as the wire carries it

    @property
    def bounded(self) -> bool:
        return self.limit_rad > 0


@dataclass(frozen=True)
class Camera:
    """A camera whose frames the device sends as IMAGE frames."""

    height: int  # pixels
    width: int  # pixels
    rate_hz: int  # IMAGE frames per second


@dataclass(frozen=True)
class Actuator:
    """One actuator: name, unit and the command range the device accepts."""

    name: str
    unit: str
    min: float
    max: float


#: The six IMU channels of a body-frame gyro + accelerometer, as float32.
IMU_CHANNELS: tuple[Channel, ...] = (
    Channel("gyro_x", "rad/s"), Channel("gyro_y", "rad/s"), Channel("gyro_z", "rad/s"),
    Channel("accel_x", "m/s^2"), Channel("accel_y", "m/s^2"), Channel("accel_z", "m/s^2"),
)  # fmt: skip


@dataclass(frozen=True)
class DeviceSpec:
    """What a device is and how it streams. Every field is on the wire (DESCRIBE) and in the model."""

    protocol_version: int  # message-set version the device speaks
    name: str  # UTF-8, at most 16 bytes; informational (not compared with a model)
    imu_rate_hz: int  # IMU samples per second
    imu_channels: tuple[Channel, ...]  # SENSOR record: these channels, then the encoders
    imu_window: int  # IMU samples per model input window (the host keeps this many)
    samples_per_frame: int  # IMU samples per SENSOR frame = imu_rate_hz / stream_rate_hz
    stream_rate_hz: int  # SENSOR frames per second
    control_rate_hz: int  # COMMAND frames per second the device expects
    encoders: tuple[Encoder, ...]  # one i32 count each per SENSOR sample, in this order
    camera: Camera | None  # None: the device sends no IMAGE frames
    actuators: tuple[Actuator, ...]  # one COMMAND value each, in this order
    watchdog_ms: int  # device zeroes its actuators after this long without a COMMAND

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise SpecError("; ".join(problems))

    def problems(self) -> list[str]:
        """Every way this description is malformed or inconsistent (empty when it is fine)."""
        out: list[str] = []
        if len(self.name.encode()) > MAX_NAME_BYTES or "\0" in self.name:
            out.append(f"name: at most {MAX_NAME_BYTES} UTF-8 bytes and no NUL, got {self.name!r}")
        for field, lo, hi in _INT_RANGES:
            value = getattr(self, field)
            if not _is_int(value) or not lo <= value <= hi:
                out.append(f"{field}: must be an integer in {lo}..{hi}, got {value!r}")
        if out:
            return out
        if self.imu_rate_hz % self.stream_rate_hz or self.samples_per_frame * self.stream_rate_hz != self.imu_rate_hz:
            out.append(
                f"samples_per_frame: {self.samples_per_frame} x stream_rate_hz {self.stream_rate_hz} "
                f"must equal imu_rate_hz {self.imu_rate_hz}"
            )
        for field, items, hi in (
            ("imu_channels", self.imu_channels, MAX_CHANNELS), ("encoders", self.encoders, MAX_ENCODERS),
            ("actuators", self.actuators, MAX_ACTUATORS),
        ):  # fmt: skip
            if not 1 <= len(items) <= hi:
                out.append(f"{field}: 1..{hi} of them, got {len(items)}")
        for i, ch in enumerate(self.imu_channels):
            out += _label_problems(f"imu_channels[{i}]", ch.name, ch.unit)
            if ch.encoding not in ENCODINGS:
                out.append(f"imu_channels[{i}]: encoding must be one of {', '.join(ENCODINGS)}, got {ch.encoding!r}")
            elif not (math.isfinite(ch.scale) and ch.scale > 0 and (ch.encoding == "i16" or ch.scale == 1.0)):
                out.append(f"imu_channels[{i}]: scale must be > 0 (and 1 for f32), got {ch.scale}")
        for i, enc in enumerate(self.encoders):
            out += _label_problems(f"encoders[{i}]", enc.name, "counts")
            if not _is_int(enc.cpr) or not 1 <= enc.cpr <= 0xFFFF_FFFF:
                out.append(f"encoders[{i}]: cpr must be an integer in 1..{0xFFFF_FFFF}, got {enc.cpr!r}")
            if not (math.isfinite(enc.limit_rad) and enc.limit_rad >= 0):
                out.append(f"encoders[{i}]: limit_rad must be >= 0 (0: unbounded), got {enc.limit_rad}")
        if self.camera is not None:
            c = self.camera
            for field, value, hi in (
                ("height", c.height, 255),
                ("width", c.width, 255),
                ("rate_hz", c.rate_hz, 0xFFFF),
            ):
                if not _is_int(value) or not 1 <= value <= hi:
                    out.append(f"camera.{field}: must be an integer in 1..{hi}, got {value!r}")
            if not out and c.height * c.width > MAX_IMAGE_PIXELS:
                out.append(f"camera: {c.height}x{c.width} exceeds the {MAX_IMAGE_PIXELS} pixels a frame carries")
        for i, act in enumerate(self.actuators):
            out += _label_problems(f"actuators[{i}]", act.name, act.unit)
            if not (math.isfinite(act.min) and math.isfinite(act.max) and act.min <= act.max):
                out.append(f"actuators[{i}]: range [{act.min}, {act.max}] must be finite with min <= max")
        return out

    @property
    def image_shape(self) -> tuple[int, int] | None:
        """(height, width) of the camera's frames; None without a camera."""
        return None if self.camera is None else (self.camera.height, self.camera.width)

    @property
    def n_actuators(self) -> int:
        return len(self.actuators)

    @property
    def sample_bytes(self) -> int:
        """Bytes of one SENSOR record: every IMU channel in its encoding, then an i32 per encoder."""
        return sum(ch.bytes for ch in self.imu_channels) + 4 * len(self.encoders)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (ONNX metadata, MCAP logs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceSpec:
        """Inverse of :meth:`to_dict`; SpecError names a missing, unknown or malformed field."""
        if not isinstance(data, Mapping):
            raise SpecError(f"device description must be a mapping, got {type(data).__name__}")
        data = _upgraded(data)
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise SpecError(f"device description: missing fields {missing}, unknown fields {unknown}")
        try:
            values = dict(data)
            values["imu_channels"] = tuple(
                Channel(c["name"], c["unit"], c["encoding"], float(c["scale"])) for c in data["imu_channels"]
            )
            values["encoders"] = tuple(Encoder(e["name"], e["cpr"], float(e["limit_rad"])) for e in data["encoders"])
            cam = data["camera"]
            values["camera"] = None if cam is None else Camera(cam["height"], cam["width"], cam["rate_hz"])
            values["actuators"] = tuple(
                Actuator(c["name"], c["unit"], float(c["min"]), float(c["max"])) for c in data["actuators"]
            )
        except (TypeError, KeyError, ValueError) as exc:
            raise SpecError(f"device description: malformed channel, encoder, camera or actuator ({exc})") from None
        return cls(**values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_INT_RANGES = (
    ("protocol_version", 1, 0xFFFF), ("imu_rate_hz", 1, 0xFFFF), ("imu_window", 1, 0xFFFF),
    ("samples_per_frame", 1, MAX_SAMPLES_PER_FRAME), ("stream_rate_hz", 1, 0xFFFF), ("control_rate_hz", 1, 0xFFFF),
    ("watchdog_ms", 1, 0xFFFF),
)  # fmt: skip


def _label_problems(where: str, name: str, unit: str) -> list[str]:
    bad = [s for s in (name, unit) if not s or len(s.encode()) > MAX_LABEL_BYTES or "\0" in s]
    return [f"{where}: name and unit must be 1..{MAX_LABEL_BYTES} UTF-8 bytes, got {name!r} / {unit!r}"] if bad else []


#: Fields a model is compared on as a whole. ``name`` and ``watchdog_ms`` describe the unit, not
#: what the model was trained for; channels, encoders and actuators are compared one by one below.
COMPARED_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(DeviceSpec)
    if f.name not in ("name", "watchdog_ms", "imu_channels", "encoders", "actuators")
)


def compare(model: DeviceSpec, device: DeviceSpec, who: str = "model") -> list[str]:
    """Every way ``device`` does not fit a model trained for ``model``, one string per field.

    ``who`` names the owner of ``model`` in the messages (a calibration file has one too).

    Everything must be equal except the actuator ranges: the device must accept at least
    the range the model commands (a narrower device would silently clip the policy).
    """
    out = []
    for field in COMPARED_FIELDS:
        want, got = getattr(model, field), getattr(device, field)
        if want != got:
            out.append(f"{field}: {who} expects {_show(want)}, device has {_show(got)}")
    # A channel's wire encoding is the device's business: the host hands the model SI units either way.
    labels = [[(c.name, c.unit) for c in spec.imu_channels] for spec in (model, device)]
    if labels[0] != labels[1]:
        out.append(f"imu_channels: {who} expects {_labels(labels[0])}, device has {_labels(labels[1])}")
    if len(model.encoders) != len(device.encoders):
        out.append(f"encoders: {who} reads {len(model.encoders)}, device has {len(device.encoders)}")
    else:  # the limits are the device's to declare: the host stops at them (hardware/safety.py)
        for i, (me, de) in enumerate(zip(model.encoders, device.encoders, strict=True)):
            if (me.name, me.cpr) != (de.name, de.cpr):
                out.append(
                    f"encoders[{i}]: {who} expects {me.name} at {me.cpr} counts/rev, device has {de.name} at {de.cpr}"
                )
    if len(model.actuators) != len(device.actuators):
        out.append(f"actuators: {who} drives {len(model.actuators)}, device has {len(device.actuators)}")
    else:
        for i, (m, d) in enumerate(zip(model.actuators, device.actuators, strict=False)):
            if (m.name, m.unit) != (d.name, d.unit):
                out.append(f"actuators[{i}]: {who} drives {m.name} ({m.unit}), device has {d.name} ({d.unit})")
            tol = 1e-6 * max(1.0, abs(m.min), abs(m.max))  # the wire carries float32
            if d.min > m.min + tol or d.max < m.max - tol:
                out.append(
                    f"actuators[{i}] range: {who} commands [{m.min:g}, {m.max:g}] {m.unit}, "
                    f"device accepts [{d.min:g}, {d.max:g}]"
                )
    return out


def _labels(pairs: list[tuple[str, str]]) -> str:
    return "[" + ", ".join(f"{name} ({unit})" for name, unit in pairs) + "]"


def _show(value: Any) -> str:
    if isinstance(value, Camera):
        return f"a {value.height}x{value.width} camera at {value.rate_hz} Hz"
    if value is None:
        return "no camera"
    return str(value)
