"""Model inputs built from device frames: the IMU/encoder window and the latest image.

The control loop and replay both use this class on the same frames, so a replayed
input is bit-for-bit the input the loop gave the model.

Only fresh samples enter the window. Each SENSOR frame's header timestamp is the time of
its last sample (docs/protocol.md), so against the last accepted frame a new one is

* a **duplicate** (same timestamp) or **out of order** (older): dropped and counted;
* **contiguous** (exactly ``n`` sample periods later): appended;
* after a **gap** (later than that: frames were lost): a short gap (at most
  ``max_fill`` samples, a quarter window by default: one lost frame at 100 Hz) is filled
  by linear interpolation between the samples either side, so one lost frame costs the
  model nothing; after a longer gap the window is not ``ready`` until a whole window of
  contiguous samples has arrived again (the loop sends the safe command meanwhile).
  The model never sees a window with a hole in it. Replay applies the same rule to
  the same frames, so it reproduces the inputs exactly.
"""

from __future__ import annotations

import numpy as np

from sensorimotor.hardware.messages import ImageFrame, SensorBatch
from sensorimotor.hardware.spec import DeviceSpec

STAMP_MOD = 1 << 32  # header timestamps are u32 microseconds and wrap


def stamp_delta_us(new: int, old: int) -> int:
    """Signed difference of two wrapping u32 µs timestamps (new - old), in [-2^31, 2^31)."""
    d = (new - old) % STAMP_MOD
    return d - STAMP_MOD if d >= STAMP_MOD // 2 else d


class SensorWindows:
    """Rolling window of the last ``window`` IMU samples and encoder counts, plus the last frame."""

    def __init__(
        self, window: int, image_shape: tuple[int, int] | None = (64, 64), channels: int = 6,
        imu_rate_hz: float = 1000.0, max_fill: int | None = None, needs_image: bool = True, encoders: int = 1,
    ) -> None:  # fmt: skip
        self.window = window
        self.needs_image = needs_image and image_shape is not None  # False for an IMU-only model or no camera
        self.max_fill = window // 4 if max_fill is None else max_fill
        self.sample_us = 1e6 / imu_rate_hz
        self.imu = np.zeros((window, channels), np.float32)
        self.encoders = np.zeros((window, encoders), np.float32)
        self.image_shape = image_shape
        self.image = np.zeros((1, 1, *(image_shape or (1, 1))), np.uint8)
        self.samples = 0  # samples accepted into the window
        self.contiguous = 0  # samples since the last gap (the window is whole once this reaches `window`)
        self.images = 0
        self.bad_images = 0  # IMAGE frames whose shape is not the described one
        self.duplicates = 0  # SENSOR frames dropped: same timestamp as one already taken
        self.out_of_order = 0  # SENSOR frames dropped: older than one already taken
        self.gaps = 0  # discontinuities (lost SENSOR frames) seen in the stream
        self.samples_missing = 0  # samples lost in those gaps
        self.samples_filled = 0  # of which interpolated (short gaps)
        self.last_stamp_us: int | None = None

    @classmethod
    def for_device(cls, spec: DeviceSpec, needs_image: bool = True) -> SensorWindows:
        """Windows sized from a device's description (handshake), not from constants."""
        return cls(
            spec.imu_window, spec.image_shape, len(spec.imu_channels), spec.imu_rate_hz, None, needs_image,
            len(spec.encoders),
        )  # fmt: skip

    @property
    def encoder(self) -> np.ndarray:
        """The first encoder's window (W,) (replay reports its newest count)."""
        return self.encoders[:, 0]

    def add_sensor(self, batch: SensorBatch, stamp_us: int | None = None) -> bool:
        """Append a SENSOR frame's samples (oldest first); False if it was stale and dropped.

        ``stamp_us`` is the frame header's timestamp; without it no order check is made.
        """
        n = len(batch.encoder)
        if stamp_us is not None and self.last_stamp_us is not None:
            d = stamp_delta_us(stamp_us, self.last_stamp_us)
            if d == 0:
                self.duplicates += 1
                return False
            if d < 0:
                self.out_of_order += 1
                return False
            missing = round(d / self.sample_us) - n
            if missing > 0:  # frames were lost
                self.gaps += 1
                self.samples_missing += missing
                if missing <= self.max_fill and self.samples > 0:
                    self._fill(missing, batch)
                else:  # what is in the window before this is not continuous with it
                    self.contiguous = 0
        if stamp_us is not None:
            self.last_stamp_us = stamp_us
        self._append(batch.imu, batch.encoder)  # converted to float32 as they are copied in
        return True

    def _append(self, imu: np.ndarray, encoders: np.ndarray) -> None:
        n = len(encoders)
        k = min(n, self.window)
        if k < self.window:  # shift in place: no new arrays each frame (inputs() hands out copies)
            self.imu[:-k] = self.imu[k:]
            self.encoders[:-k] = self.encoders[k:]
        self.imu[-k:] = imu[-k:]
        self.encoders[-k:] = encoders[-k:]
        self.samples += n
        self.contiguous += n

    def _fill(self, missing: int, batch: SensorBatch) -> None:
        """Interpolate ``missing`` samples between the window's newest sample and the batch's first."""
        w = (np.arange(1, missing + 1, dtype=np.float64) / (missing + 1))[:, None]
        imu = (1 - w) * self.imu[-1] + w * batch.imu[0]
        enc = (1 - w) * self.encoders[-1] + w * batch.encoder[0].astype(np.float64)
        self._append(imu.astype(np.float32), enc.astype(np.float32))
        self.samples_filled += missing

    def restarted(self) -> SensorWindows:
        """An empty window of the same size (after a reconnect), keeping the counters."""
        fresh = SensorWindows(
            self.window, self.image_shape, self.imu.shape[1], 1e6 / self.sample_us, self.max_fill, self.needs_image,
            self.encoders.shape[1],
        )  # fmt: skip
        for name in ("duplicates", "out_of_order", "gaps", "samples_missing", "samples_filled", "bad_images"):
            setattr(fresh, name, getattr(self, name))
        return fresh

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
        """True once a whole window of contiguous IMU samples and at least one image have arrived."""
        return self.contiguous >= self.window and (self.images > 0 or not self.needs_image)

    def inputs(self) -> dict[str, np.ndarray]:
        """Batch-1 model inputs: imu (1, C, W), encoder (1, E, W) (every encoder), image (1, 1, H, W)."""
        return {
            "imu": np.ascontiguousarray(self.imu.T[None]),
            "encoder": self.encoders.T[None].copy(),
            "image": self.image.copy(),
        }
