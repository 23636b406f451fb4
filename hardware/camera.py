"""``hw run --camera SOURCE``: the model's image from a camera on the host, not from the serial line.

A real rig is a microcontroller (IMU, encoders, motor) and a USB camera on the host: 64x64
frames at 50 Hz are 200 kB/s, more than a 1 Mbaud UART carries. SOURCE is a camera device
(``/dev/video0``, read through OpenCV's V4L2 backend), a video file, or a folder of images
(read in name order: how the tests drive it). Each frame is turned to grayscale, cropped,
rotated and scaled to the model's input (``loop.camera``), and stamped with the host's clock
when it was read; a thread reads, the loop takes what arrived (:meth:`HostCamera.take`).
A file or folder is paced at ``loop.camera.rate_hz`` (0: the model's camera rate) and ends;
a camera that stops delivering is a stall the loop answers like a sensor stall.

OpenCV (``opencv-python-headless``) is an optional extra (``pip install 'sensorimotor[camera]'``),
imported only with ``--camera``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.hardware.config import HostCameraConfig
from sensorimotor.hardware.errors import HardwareError
from sensorimotor.hardware.messages import ImageFrame
from sensorimotor.hardware.spec import Camera

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".pgm", ".bmp", ".tif", ".tiff")


class CameraError(HardwareError):
    """The camera cannot be opened or delivers frames that do not fit: one line naming it and the size."""


class HostCamera:
    """Frames from ``source`` as the model's (height, width) uint8 images, read on a thread."""

    def __init__(self, source: str, shape: tuple[int, int], rate_hz: float, cfg: HostCameraConfig) -> None:
        try:
            import cv2
        except ImportError:
            raise CameraError("--camera needs OpenCV: pip install 'sensorimotor[camera]'") from None
        self.cv2, self.source, self.shape, self.cfg = cv2, source, shape, cfg
        self.described = Camera(shape[0], shape[1], round(rate_hz))  # what the model's device has: the host's now
        self.now_ns: Callable[[], int] = time.monotonic_ns  # the loop sets its client's clock (use_camera)
        self.period_s = 1.0 / (cfg.rate_hz or rate_hz)
        path = Path(source)
        self.files: list[Path] | None = None
        self.capture: Any = None
        self.frames_read_raw = 0
        if path.is_dir():
            self.files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self.files:
                raise CameraError(f"--camera {source}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            self.paced = True
        else:
            if not path.exists():
                raise CameraError(f"--camera {source}: no such camera, video file or image folder")
            self.capture = cv2.VideoCapture(source)
            if not self.capture.isOpened():
                raise CameraError(f"--camera {source}: cannot open it as a camera or a video (permission? in use?)")
            self.paced = not source.startswith("/dev/")  # a file: paced like a camera; a device: as it delivers
        first = self._read_raw()
        if first is None:
            raise CameraError(f"--camera {source}: delivered no frame")
        self.raw_shape = first.shape[:2]
        self._convert(first)  # a crop that does not fit the frame is refused now, not mid-run
        self.frames_read = 0
        self._pending: list[tuple[int, ImageFrame]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._first = first
        self._thread = threading.Thread(target=self._run, name="hw-camera", daemon=True)

    def start(self) -> None:
        """Begin reading (when streaming starts, so the first frames are not stale)."""
        self._thread.start()

    def _read_raw(self) -> np.ndarray | None:
        if self.files is not None:
            if self.frames_read_raw >= len(self.files):
                return None
            image = self.cv2.imread(str(self.files[self.frames_read_raw]), self.cv2.IMREAD_UNCHANGED)
            self.frames_read_raw += 1
            if image is None:
                raise CameraError(
                    f"--camera {self.source}: {self.files[self.frames_read_raw - 1].name} is not an image"
                )
            return image
        ok, image = self.capture.read()
        return image if ok else None

    def _convert(self, image: np.ndarray) -> ImageFrame:
        """Grayscale, crop, rotate, scale to the model's (height, width)."""
        cv2 = self.cv2
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
        if image.dtype != np.uint8:
            image = cv2.convertScaleAbs(image, alpha=255.0 / max(float(image.max()), 1.0))
        if any(self.cfg.crop):
            x, y, w, h = self.cfg.crop
            if x + w > image.shape[1] or y + h > image.shape[0]:
                raise CameraError(
                    f"--camera {self.source}: delivers {image.shape[1]}x{image.shape[0]} frames; the crop "
                    f"loop.camera.crop={list(self.cfg.crop)} does not fit in them"
                )
            image = image[y : y + h, x : x + w]
        turns = self.cfg.rotate_deg // 90
        if turns:
            image = np.rot90(image, k=-turns)  # clockwise
        height, width = self.shape
        if image.shape != (height, width):
            image = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_AREA)
        return ImageFrame(image)

    def _run(self) -> None:
        image: np.ndarray | None = self._first
        next_s = time.monotonic()
        while image is not None and not self._stop.is_set():
            frame = self._convert(image)
            with self._lock:
                self._pending.append((self.now_ns(), frame))
                self.frames_read += 1
            if self.paced:
                next_s += self.period_s
                self._stop.wait(max(0.0, next_s - time.monotonic()))
            try:
                image = self._read_raw()
            except CameraError:
                image = None  # an unreadable file ends the source, like an unplugged camera: the loop stalls

    def take(self) -> list[tuple[int, ImageFrame]]:
        """Frames read since the last call, oldest first, each with the host time it was read (client clock, ns)."""
        if not self._pending:
            return []
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self.capture is not None:
            self.capture.release()
