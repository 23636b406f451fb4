"""Model inputs built from device frames: the IMU/encoder window and the latest image.

The control loop and replay both use this class on the same frames, so a replayed
input is bit-for-bit the input the loop gave the model.
"""

from __future__ import annotations

import numpy as np

from sensorimotor.hardware.messages import ImageFrame, SensorBatch


class SensorWindows:
    """Rolling window of the last ``window`` IMU samples and encoder counts, plus the last frame."""

    def __init__(self, window: int, image_shape: tuple[int, int] = (64, 64)) -> None:
        self.window = window
        self.imu = np.zeros((window, 6), np.float32)
        self.encoder = np.zeros(window, np.float32)
        self.image = np.zeros((1, 1, *image_shape), np.uint8)
        self.samples = 0
        self.images = 0

    def add_sensor(self, batch: SensorBatch) -> None:
        """Append a SENSOR frame's samples (oldest first), dropping the oldest of the window."""
        k = min(len(batch.encoder), self.window)
        self.imu = np.concatenate([self.imu[k:], batch.imu[-k:].astype(np.float32)])
        self.encoder = np.concatenate([self.encoder[k:], batch.encoder[-k:].astype(np.float32)])
        self.samples += len(batch.encoder)

    def add_image(self, frame: ImageFrame) -> None:
        self.image = frame.pixels.reshape(self.image.shape).astype(np.uint8)
        self.images += 1

    @property
    def ready(self) -> bool:
        """True once a full IMU window and at least one image have arrived."""
        return self.samples >= self.window and self.images > 0

    def inputs(self) -> dict[str, np.ndarray]:
        """Batch-1 model inputs: imu (1, 6, W), encoder (1, W), image (1, 1, 64, 64)."""
        return {
            "imu": np.ascontiguousarray(self.imu.T[None]),
            "encoder": self.encoder[None].copy(),
            "image": self.image.copy(),
        }
