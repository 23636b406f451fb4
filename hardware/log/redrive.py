"""``hw replay LOG --to PORT``: drive a device with the commands a log recorded.

The recorded commands (the volts actually sent, in order) take the model's place in the
ordinary control loop, so everything that guards a live run guards this one too: the
handshake check (the device must be the one the log was recorded on), voltage and slew
limits, the arm-angle stop, the staged failsafe on a sensor stall, the device's counters,
Ctrl-C and SIGTERM (0 V and STOP). The first ``ease_s`` seconds are eased in: command k
is scaled by k / ease_cycles, so the device is not kicked from rest into the middle of a
recorded motion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, TOPIC_DEVICE, TOPIC_META, LogError, iter_log
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.hardware.spec import DeviceSpec, SpecError


@dataclass(frozen=True)
class Recording:
    """What a log says was sent, and to what."""

    commands: list[tuple[float, ...]]  # volts sent, one tuple per cycle, in order
    rate_hz: float
    spec: DeviceSpec


def read_recording(log_path: str | Path) -> Recording:
    """The sent commands, the control rate and the device description of a `hw run --record` log."""
    commands: list[tuple[float, ...]] = []
    rate, spec = None, None
    for msg in iter_log(log_path):
        if msg.topic == TOPIC_COMMAND:
            commands.append(tuple(float(v) for v in msg.json()["volts"]))
        elif msg.topic == TOPIC_META:
            rate = float(msg.json()["rate_hz"])
        elif msg.topic == TOPIC_DEVICE:
            try:
                spec = DeviceSpec.from_dict(msg.json()["spec"])
            except (KeyError, TypeError, ValueError, SpecError) as exc:
                raise LogError(f"{log_path}: its {TOPIC_DEVICE} record is unreadable ({exc})") from None
    if not commands or rate is None or spec is None:
        raise LogError(f"{log_path} holds no commands, rate or device description to drive a device with")
    return Recording(commands, rate, spec)


class RecordedCommands:
    """A policy that plays back recorded commands (eased in) instead of running a model.

    Has the parts of :class:`~sensorimotor.hardware.model.OnnxPolicy` the control loop uses.
    """

    def __init__(self, recording: Recording, ease_s: float) -> None:
        self.estimate_names = ["ease"]
        self.tilt_estimate: str | None = None  # no fall stop on a recording or an excitation
        self.uses_image = False  # no model: the loop needs no camera frame to start
        self.recording = recording
        self.spec = recording.spec
        self.path = Path("recorded commands")
        self.ease_cycles = max(1, round(ease_s * recording.rate_hz))
        self.k = 0

    @property
    def state_values(self) -> dict[str, list[float]]:
        return {}  # no model, no state

    @property
    def done(self) -> bool:
        return self.k >= len(self.recording.commands)

    def check_device(self, device: DeviceSpec, control_rate_hz: float | None = None) -> None:
        OnnxPolicy.check_spec(self.spec, device, "the log", control_rate_hz)

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        volts = (0.0,) * self.spec.n_actuators if self.done else self.recording.commands[self.k]
        ease = min(1.0, (self.k + 1) / self.ease_cycles)
        self.k += 1
        return np.array(volts, np.float64) * ease, np.array([ease], np.float32)
