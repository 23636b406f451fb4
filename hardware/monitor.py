"""``hw info`` and ``hw monitor``: look at a device without controlling it.

``hw info`` performs the handshake and prints the device's description (DESCRIBE).
``hw monitor`` also starts streaming and shows live sensor values once per
``--every`` seconds: IMU channels, arm angle from the encoder, image brightness, frame
rates and link counters. It never sends a command: the device's watchdog keeps its
actuators at 0 V (the trip it reports is expected). Both end with STOP.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.configs.schema import ConfigError, load_section
from sensorimotor.hardware.config import LoopConfig
from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.messages import ImageFrame, SensorBatch, Status, StatusFlags
from sensorimotor.hardware.spec import Channel, DeviceSpec
from sensorimotor.hardware.transport import SerialTransport
from sensorimotor.hardware.twin_process import TwinProcess


def add_port_arguments(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the device, e.g. /dev/ttyUSB0")
    where.add_argument("--twin", action="store_true", help="start the simulated device on a pty and use that port")
    parser.add_argument("--seed", type=int, default=0, help="--twin only: seed of the twin")
    add_firmware_argument(parser)


def add_firmware_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--firmware", type=Path, default=None, metavar="PATH",
        help="--twin only: the C firmware in the loop (its native build, `make firmware`) speaks on the twin's pty "
             "and the simulator plays its sensors and motor",
    )  # fmt: skip


def check_firmware_option(args: argparse.Namespace) -> None:
    """--firmware needs --twin, and an executable (checked here so the user gets one line before anything starts)."""
    firmware = getattr(args, "firmware", None)
    if firmware is None:
        return
    if not args.twin:
        raise ConfigError("--firmware needs --twin: it is the twin's firmware in the loop")
    if not (firmware.is_file() and os.access(firmware, os.X_OK)):
        raise ConfigError(f"--firmware {firmware}: no such executable; `make firmware` builds the native one")


@contextlib.contextmanager
def connected(
    args: argparse.Namespace, truth: dict[str, Any] | None = None
) -> Iterator[tuple[DeviceClient, DeviceSpec]]:
    """Open the port (or a twin), handshake, and close everything on the way out; a twin's ground truth into ``truth``."""
    loop_cfg = load_section(args.config, "loop", LoopConfig, overrides=args.overrides)
    check_firmware_option(args)
    twin = TwinProcess(args.config, args.seed, overrides=args.overrides, firmware=args.firmware) if args.twin else None
    try:
        transport = SerialTransport(twin.port if twin else args.port, loop_cfg.baudrate)
        try:
            client = DeviceClient(transport)
            yield client, client.connect(loop_cfg.handshake_timeout_s)
        finally:
            transport.close()
    finally:
        if twin:
            reported = twin.stop()
            if truth is not None:
                truth.update(reported)


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


def info(args: argparse.Namespace) -> int:
    with connected(args) as (client, spec):
        print(describe(spec, client.transport.name))
    return 0


def monitor(args: argparse.Namespace) -> int:
    with connected(args) as (client, spec):
        print(describe(spec, client.transport.name))
        names = [c.name for c in spec.imu_channels]
        client.start()
        t0 = time.monotonic()
        end = t0 + args.duration
        next_print = t0 + args.every
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
                    frames = "" if spec.camera is None else f" IMAGE {images / args.every:4.0f}/s"
                    print(f"{now - t0:6.1f} s  {values}  {angles}  {camera}"
                          f"SENSOR {sensors / args.every:5.0f}/s{frames}  "
                          f"lost {client.stats.frames_lost} bad {client.decoder.stats.frames_bad}"
                          f"{'  (watchdog holds 0 V)' if tripped else ''}", flush=True)  # fmt: skip
                    imu, sensors, images = [], 0, 0
                    next_print += args.every
        except KeyboardInterrupt:
            pass
        finally:
            client.stop()
    return 0
