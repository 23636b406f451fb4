"""Model inputs built from device frames: the IMU/encoder window and the latest image.

The control loop and replay both use this class on the same frames, so a replayed
input is bit-for-bit the input the loop gave the model.
"""

from __future__ import annotations

import numpy as np

from sensorimotor.hardware.messages import ImageFrame, SensorBatch
from sensorimotor.hardware.spec import DeviceSpec


class SensorWindows:
    """Rolling window of the last ``window`` IMU samples and encoder counts, plus the last frame."""

    def __init__(self, window: int, image_shape: tuple[int, int] = (64, 64), channels: int = 6) -> None:
        self.window = window
        self.imu = np.zeros((window, channels), np.float32)
        self.encoder = np.zeros(window, np.float32)
        self.image = np.zeros((1, 1, *image_shape), np.uint8)
        self.samples = 0
        self.images = 0
        self.bad_images = 0  # IMAGE frames whose shape is not the described one

    def add_sensor(self, batch: SensorBatch) -> None:
        """Append a SENSOR frame's samples (oldest first), dropping the oldest of the window."""
        k = min(len(batch.encoder), self.window)
        self.imu = np.concatenate([self.imu[k:], batch.imu[-k:].astype(np.float32)])
        self.encoder = np.concatenate([self.encoder[k:], batch.encoder[-k:].astype(np.float32)])
        self.samples += len(batch.encoder)

    @classmethod
    def for_device(cls, spec: DeviceSpec) -> SensorWindows:
        """Windows sized from a device's description (handshake), not from constants."""
        return cls(spec.imu_window, spec.image_shape, len(spec.imu_channels))

    def add_image(self, frame: ImageFrame) -> bool:
        """Keep the frame if it has the described shape; False (and ignored) otherwise."""
        if frame.pixels.shape != self.image.shape[2:]:
            self.bad_images += 1
            return False
        self.image = frame.pixels.reshape(self.image.shape).astype(np.uint8)
        self.images += 1
        return True

    @property
    def ready(self) -> bool:
        """True once a full IMU window and at least one image have arrived."""
        return self.samples >= self.window and self.images > 0

    def inputs(self) -> dict[str, np.ndarray]:
        """Batch-1 model inputs: imu (1, C, W), encoder (1, W), image (1, 1, H, W)."""
        return {
            "imu": np.ascontiguousarray(self.imu.T[None]),
            "encoder": self.encoder[None].copy(),
            "image": self.image.copy(),
        }
