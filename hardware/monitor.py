"""What ``hw info`` and ``hw monitor`` show: a device looked at without controlling it.

``hw info`` performs the handshake and prints the device's description (DESCRIBE).
``hw monitor`` also starts streaming and shows live sensor values once per
``--every`` seconds: IMU channels, arm angle from the encoder, image brightness, frame
rates and link counters. It never sends a command: the device's watchdog keeps its
actuators at 0 V (the trip it reports is expected). Both end with STOP.
"""

from __future__ import annotations

import math
import time

import numpy as np

from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.messages import ImageFrame, SensorBatch, Status, StatusFlags
from sensorimotor.hardware.spec import Channel, DeviceSpec


def describe(spec: DeviceSpec, port: str) -> str:
    """The device description as an engineer wants to read it."""
    lines = [
        f"device '{spec.name}' on {port}, protocol version {spec.protocol_version}",
        f"  IMU       {spec.imu_rate_hz} Hz, window {spec.imu_window} samples, "
        f"{spec.samples_per_frame} per SENSOR frame at {spec.stream_rate_hz} Hz",
        "  channels  " + ", ".join(f"{c.name} [{c.unit}]" + _encoding(c) for c in spec.imu_channels),
        *(
            f"  encoder   {e.name}, {e.cpr} counts/rev, "
            + (f"within +-{e.limit_rad:g} rad" if e.bounded else "unbounded")
            for e in spec.encoders
        ),
        "  camera    "
        + ("none" if spec.camera is None else f"{spec.camera.height}x{spec.camera.width} at {spec.camera.rate_hz} Hz"),
        f"  control   {spec.control_rate_hz} Hz expected, watchdog {spec.watchdog_ms} ms",
    ]
    lines += [f"  actuator  {a.name} [{a.unit}] {a.min:g} .. {a.max:g}" for a in spec.actuators]
    return "\n".join(lines)


def _encoding(channel: Channel) -> str:
    return f" int16 x {channel.scale:g}" if channel.encoding == "i16" else ""


def monitor(client: DeviceClient, spec: DeviceSpec, duration_s: float, every_s: float) -> None:
    """Stream for ``duration_s`` and print the sensors once per ``every_s``; never commands (the watchdog holds 0 V)."""
    names = [c.name for c in spec.imu_channels]
    client.start()
    t0 = time.monotonic()
    end = t0 + duration_s
    next_print = t0 + every_s
    imu: list[np.ndarray] = []
    enc, img, sensors, images = np.zeros(len(spec.encoders)), float("nan"), 0, 0
    rad_per_count = np.array([2 * math.pi / e.cpr for e in spec.encoders])
    status: Status | None = None
    try:
        while time.monotonic() < end:
            client.transport.wait_readable(0.05)
            for rx in client.poll():
                msg = rx.message
                if isinstance(msg, SensorBatch):
                    imu.append(msg.imu)
                    enc = msg.encoder[-1] * rad_per_count
                    sensors += 1
                elif isinstance(msg, ImageFrame):
                    img = float(msg.pixels.mean())
                    images += 1
                elif isinstance(msg, Status):
                    status = msg
            now = time.monotonic()
            if now >= next_print:
                mean = np.concatenate(imu).mean(0) if imu else np.full(len(names), np.nan)
                values = "  ".join(f"{n} {v:+8.3f}" for n, v in zip(names, mean, strict=False))
                tripped = bool(status and status.flags & StatusFlags.WATCHDOG_TRIPPED)
                angles = "  ".join(f"{e.name} {a:+6.3f} rad" for e, a in zip(spec.encoders, enc, strict=True))
                camera = "" if spec.camera is None else f"image mean {img:5.1f}  "
                frames = "" if spec.camera is None else f" IMAGE {images / every_s:4.0f}/s"
                print(f"{now - t0:6.1f} s  {values}  {angles}  {camera}"
                      f"SENSOR {sensors / every_s:5.0f}/s{frames}  "
                      f"lost {client.stats.frames_lost} bad {client.decoder.stats.frames_bad}"
                      f"{'  (watchdog holds 0 V)' if tripped else ''}", flush=True)  # fmt: skip
                imu, sensors, images = [], 0, 0
                next_print += every_s
    except KeyboardInterrupt:
        pass
    finally:
        client.stop()
