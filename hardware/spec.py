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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sensorimotor.hardware.framing import MAX_PAYLOAD, PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION", "Actuator", "Channel", "DeviceSpec", "SpecError", "compare"]

#: Limits that come from the wire format (u8/u16 fields, the payload size).
MAX_SAMPLES_PER_FRAME = 64
MAX_IMAGE_PIXELS = MAX_PAYLOAD - 2  # an IMAGE payload: height, width, pixels
MAX_NAME_BYTES = 16
MAX_LABEL_BYTES = 8


class SpecError(ValueError):
    """A device description is malformed or inconsistent; the text names the field."""


@dataclass(frozen=True)
class Channel:
    """One sensor channel: a short name and its SI unit."""

    name: str
    unit: str


@dataclass(frozen=True)
class Actuator:
    """One actuator: name, unit and the command range the device accepts."""

    name: str
    unit: str
    min: float
    max: float


#: The IMU channels of protocol version 2, in SENSOR-record order (body frame).
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
    imu_channels: tuple[Channel, ...]  # SENSOR record layout: IMU_CHANNELS in version 2
    imu_window: int  # IMU samples per model input window (the host keeps this many)
    samples_per_frame: int  # IMU samples per SENSOR frame = imu_rate_hz / stream_rate_hz
    stream_rate_hz: int  # SENSOR frames per second
    control_rate_hz: int  # COMMAND frames per second the device expects
    encoder_cpr: int  # motor encoder counts per revolution
    image_height: int  # pixels
    image_width: int  # pixels
    camera_rate_hz: int  # IMAGE frames per second
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
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                out.append(f"{field}: must be an integer in {lo}..{hi}, got {value!r}")
        if out:
            return out
        if self.imu_rate_hz % self.stream_rate_hz or self.samples_per_frame * self.stream_rate_hz != self.imu_rate_hz:
            out.append(
                f"samples_per_frame: {self.samples_per_frame} x stream_rate_hz {self.stream_rate_hz} "
                f"must equal imu_rate_hz {self.imu_rate_hz}"
            )
        if self.image_height * self.image_width > MAX_IMAGE_PIXELS:
            out.append(
                f"image: {self.image_height}x{self.image_width} exceeds the {MAX_IMAGE_PIXELS} pixels a frame carries"
            )
        if not self.imu_channels or not self.actuators:
            out.append("imu_channels and actuators: at least one of each")
        for i, ch in enumerate(self.imu_channels):
            out += _label_problems(f"imu_channels[{i}]", ch.name, ch.unit)
        for i, act in enumerate(self.actuators):
            out += _label_problems(f"actuators[{i}]", act.name, act.unit)
            if not (math.isfinite(act.min) and math.isfinite(act.max) and act.min <= act.max):
                out.append(f"actuators[{i}]: range [{act.min}, {act.max}] must be finite with min <= max")
        return out

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.image_height, self.image_width

    @property
    def n_actuators(self) -> int:
        return len(self.actuators)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able data (ONNX metadata, MCAP logs)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceSpec:
        """Inverse of :meth:`to_dict`; SpecError names a missing, unknown or malformed field."""
        if not isinstance(data, Mapping):
            raise SpecError(f"device description must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        missing, unknown = sorted(names - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise SpecError(f"device description: missing fields {missing}, unknown fields {unknown}")
        try:
            values = dict(data)
            values["imu_channels"] = tuple(Channel(**c) for c in data["imu_channels"])
            values["actuators"] = tuple(
                Actuator(c["name"], c["unit"], float(c["min"]), float(c["max"])) for c in data["actuators"]
            )
        except (TypeError, KeyError, ValueError) as exc:
            raise SpecError(f"device description: malformed channel or actuator list ({exc})") from None
        return cls(**values)


_INT_RANGES = (
    ("protocol_version", 1, 0xFFFF), ("imu_rate_hz", 1, 0xFFFF), ("imu_window", 1, 0xFFFF),
    ("samples_per_frame", 1, MAX_SAMPLES_PER_FRAME), ("stream_rate_hz", 1, 0xFFFF), ("control_rate_hz", 1, 0xFFFF),
    ("encoder_cpr", 1, 0xFFFF_FFFF), ("image_height", 1, 255), ("image_width", 1, 255), ("camera_rate_hz", 1, 0xFFFF),
    ("watchdog_ms", 1, 0xFFFF),
)  # fmt: skip


def _label_problems(where: str, name: str, unit: str) -> list[str]:
    bad = [s for s in (name, unit) if not s or len(s.encode()) > MAX_LABEL_BYTES or "\0" in s]
    return [f"{where}: name and unit must be 1..{MAX_LABEL_BYTES} UTF-8 bytes, got {name!r} / {unit!r}"] if bad else []


#: Fields a model is compared on. ``name`` and ``watchdog_ms`` describe the unit, not
#: what the model was trained for; actuator ranges are compared by containment below.
COMPARED_FIELDS = tuple(
    f.name for f in dataclasses.fields(DeviceSpec) if f.name not in ("name", "watchdog_ms", "actuators")
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


def _show(value: Any) -> str:
    if isinstance(value, tuple) and value and isinstance(value[0], Channel):
        return "[" + ", ".join(f"{c.name} ({c.unit})" for c in value) + "]"
    return str(value)
