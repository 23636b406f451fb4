"""The host loop's configuration: the ``loop`` section ``hw run`` reads, and its health thresholds."""

from __future__ import annotations

import dataclasses

from sensorimotor.configs.schema import Section, doc, nested


@dataclasses.dataclass(frozen=True)
class HealthConfig(Section):
    """When `hw run` calls a finished run unhealthy (exit 1): any threshold breached."""

    min_rate_fraction: float = doc("Achieved rate at least this fraction of the target.", 0.99, gt=0, le=1)
    max_missed_fraction: float = doc("Cycles missed (loop too slow) at most this fraction.", 0.01, ge=0, le=1)
    max_latency_p99_periods: float = doc(
        "Sensor-arrival-to-command latency p99 at most this many control periods.", 0.5, gt=0
    )
    max_lost_fraction: float = doc("Frames lost or corrupted (device -> host) at most this fraction.", 0.01, ge=0, le=1)
    max_unapplied_fraction: float = doc(
        "Commands sent but not applied by the device (its STATUS counters) at most this fraction.", 0.01, ge=0, le=1
    )
    max_failsafe_cycles: int = doc(
        "Cycles on the safe command after sensor stalls, at most (a frame late now and then is not a failure).",
        10, ge=0,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class HostCameraConfig(Section):
    """A camera on the host (`hw run --camera`): how its frames become the model's image input."""

    crop: tuple[int, int, int, int] = doc(
        "Region of the camera's frame [x, y, width, height] (pixels) the model sees; all 0 = the whole frame.",
        (0, 0, 0, 0), ge=0,
    )  # fmt: skip
    rotate_deg: int = doc("Turn the cropped region clockwise by 0, 90, 180 or 270 degrees.", 0, ge=0, le=270)
    rate_hz: float = doc(
        "Frames a second read from a video file or an image folder (a camera device delivers at its own rate); "
        "0 = the model's camera rate.", 0.0, ge=0, le=1000,
    )  # fmt: skip
    stall_periods: float = doc(
        "With no new frame for this many camera periods the loop sends the safe command, as for a sensor stall; "
        "after loop.sensor_timeout_s it stops (exit 3).", 3.0, gt=1, le=100,
    )  # fmt: skip

    def check(self) -> None:
        if self.rotate_deg not in (0, 90, 180, 270):
            raise ValueError(f"rotate_deg: must be 0, 90, 180 or 270, got {self.rotate_deg}")
        if any(self.crop) and (self.crop[2] == 0 or self.crop[3] == 0):
            raise ValueError(f"crop: [x, y, width, height] needs a width and a height, got {list(self.crop)}")


@dataclasses.dataclass(frozen=True)
class LoopConfig(Section):
    """Host control loop (``hw run``)."""

    rate_hz: float = doc("Control loop rate (cycles per second); the model's control rate.", 100.0, gt=0, le=10_000)
    handshake_timeout_s: float = doc(
        "Give up when the device does not describe itself within this time (s).", 1.0, gt=0, le=60
    )
    sensor_timeout_s: float = doc(
        "With no fresh sensor frame the loop sends the safe command (0 V) within 2 control periods and holds it; "
        "after this long without one it stops: 0 V, STOP, exit 3 (s).", 0.5, gt=0, le=10,
    )  # fmt: skip
    baudrate: int = doc("Serial baud rate (ignored by pseudo-terminals).", 2_000_000, gt=0)
    v_limit: float = doc("Host-side voltage clamp (V); the tighter of this and the device range wins.", 5.0, gt=0)
    slew_v_per_s: float = doc(
        "Largest change of a model command per second (V/s); the safe command is never slowed.", 2000.0, gt=0
    )
    arm_limit_rad: float = doc(
        "Stop (0 V, STOP, exit 4) when a bounded encoder's angle (the arm's) leaves +-this or the limit the "
        "device declares for it, whichever is tighter (rad); encoders the device declares unbounded are not "
        "checked.",
        2.8,
        gt=0,
    )
    fall_stop_deg: float = doc(
        "Stop when the model's tilt estimate (the pendulum's angle; the estimate a device model names, e.g. the "
        "balancer's pitch) is farther than this from upright (deg); 0 = off (swing-up).",
        0.0, ge=0, le=180,
    )  # fmt: skip
    status_timeout_s: float = doc(
        "The device's heartbeat: it sends STATUS at least once a second while streaming. No STATUS, its "
        "applied-command counter frozen, or its watchdog held tripped for this long while commands were sent "
        "ends the run: 0 V, STOP, exit 3 (s).", 2.5, gt=0, le=60,
    )  # fmt: skip
    reconnect_s: float = doc(
        "When the port vanishes mid-run (USB unplugged), retry opening it (backoff 0.1 s doubling to 2 s) and "
        "resume after a new handshake for this long (s); 0 = stop at once (exit 3).", 10.0, ge=0, le=3600,
    )  # fmt: skip
    health: HealthConfig = nested(HealthConfig, "When a finished run counts as unhealthy (exit 1).")
    camera: HostCameraConfig = nested(HostCameraConfig, "A camera on the host (hw run --camera).")
