"""Decoded sensor topics of a run log: received SENSOR and IMAGE frames as plottable JSON messages.

The log keeps every received frame raw on ``/serial/rx`` (replay reads those); beside them the
writer adds what a viewer such as Foxglove can plot without knowing the wire format:

* ``/sensors/imu`` and ``/sensors/encoder``: one message per IMU sample, at the sample's own time;
* ``/camera/image``: one ``foxglove.RawImage`` per IMAGE frame;
* ``/sensors/reference``: one message per REFERENCE frame (a reference sensor's values, by name).

:class:`FrameDecoder` is stateful: the sample period and the encoder resolution come from the
device's DESCRIBE frame, which the log holds before any SENSOR frame (the handshake). SENSOR
frames seen before a DESCRIBE, and frames that do not decode, yield nothing.
Layouts and the choice of one message per sample: ``docs/log-format.md``.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from sensorimotor.hardware.framing import Frame, FramingError, decode_body
from sensorimotor.hardware.messages import Describe, ImageFrame, MessageError, MessageReader, Reference, SensorBatch
from sensorimotor.hardware.spec import DeviceSpec

TOPIC_IMU = "/sensors/imu"
TOPIC_ENCODER = "/sensors/encoder"
TOPIC_IMAGE = "/camera/image"
TOPIC_REFERENCE = "/sensors/reference"
IMAGE_FRAME_ID = "camera"
_U32 = 1 << 32


@dataclass(frozen=True)
class Decoded:
    """One decoded message: its topic, MCAP log time and sequence, and the JSON object."""

    topic: str
    log_time_ns: int
    sequence: int
    obj: dict[str, Any]


class FrameDecoder:
    """Turns received frame bodies into decoded messages; see the module docstring."""

    def __init__(self) -> None:
        self.spec: DeviceSpec | None = None
        self.read = MessageReader()
        self._last_sample_ns = -1  # log time of the last IMU sample written (they must not go back)

    def decode(self, body: bytes, log_time_ns: int) -> list[Decoded]:
        """The decoded messages of one received frame body (none for other or undecodable frames)."""
        try:
            frame = decode_body(body)
            message = self.read(frame)
        except (FramingError, MessageError):
            return []
        if isinstance(message, Describe):
            self.spec = message.spec
        elif isinstance(message, SensorBatch) and self.spec is not None:
            return self._samples(frame, message, log_time_ns, self.spec)
        elif isinstance(message, ImageFrame):
            return [Decoded(TOPIC_IMAGE, log_time_ns, frame.seq, raw_image(message.pixels, log_time_ns))]
        elif isinstance(message, Reference):
            values = {k: (v if math.isfinite(v) else None) for k, v in message.values}
            obj = {"t_device_us": frame.timestamp_us, "frame_seq": frame.seq, **values}
            return [Decoded(TOPIC_REFERENCE, log_time_ns, frame.seq, obj)]
        return []

    def _samples(self, frame: Frame, batch: SensorBatch, log_time_ns: int, spec: DeviceSpec) -> list[Decoded]:
        n = len(batch.imu)
        period_ns, period_us = 1e9 / spec.imu_rate_hz, 1e6 / spec.imu_rate_hz
        imu = _json_floats(batch.imu)
        channels = [c.name for c in spec.imu_channels]
        out: list[Decoded] = []
        for k in range(n):
            back = n - 1 - k  # the header's timestamp is the last sample's; the others are a period apart
            # The last sample is logged when its frame arrived, earlier ones a period apart before it;
            # never before the previous sample, so that frames arriving in a burst still plot in order.
            t_ns = max(log_time_ns - round(back * period_ns), self._last_sample_ns + 1)
            self._last_sample_ns = t_ns
            t_device_us = (frame.timestamp_us - round(back * period_us)) % _U32
            sample = {"t_device_us": t_device_us, "frame_seq": frame.seq, **dict(zip(channels, imu[k], strict=True))}
            out.append(Decoded(TOPIC_IMU, t_ns, frame.seq, sample))
            for e, enc in enumerate(spec.encoders):
                counts = int(batch.encoder[k, e])
                encoder = {
                    "t_device_us": t_device_us,
                    "frame_seq": frame.seq,
                    "encoder": enc.name,
                    "counts": counts,
                    "angle_rad": 2.0 * math.pi * counts / enc.cpr,
                }
                out.append(Decoded(TOPIC_ENCODER, t_ns, frame.seq, encoder))
        return out


def _json_floats(values: np.ndarray) -> list[list[float | None]]:
    """float32 rows as Python floats, non-finite ones as None (JSON null: a gap in a plot, not invalid JSON)."""
    rows: list[list[float | None]] = values.astype(np.float64).tolist()
    if np.isfinite(values).all():
        return rows
    return [[v if v is not None and math.isfinite(v) else None for v in row] for row in rows]


def raw_image(pixels: np.ndarray, log_time_ns: int) -> dict[str, Any]:
    """A ``foxglove.RawImage`` (JSON encoding) of a grayscale image, stamped with its log time."""
    height, width = pixels.shape
    sec, nsec = divmod(log_time_ns, 1_000_000_000)
    return {
        "timestamp": {"sec": sec, "nsec": nsec},
        "frame_id": IMAGE_FRAME_ID,
        "width": width,
        "height": height,
        "encoding": "mono8",
        "step": width,
        "data": base64.b64encode(np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()).decode("ascii"),
    }
