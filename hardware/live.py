"""``hw run --live``: the running loop served to Foxglove over a WebSocket (the ``foxglove-sdk`` package).

Topics (JSON, except the camera): ``/imu`` the newest IMU sample by channel name, ``/encoder``
each encoder's angle (rad), ``/command`` the volts sent (and requested, and why a command was
the safe one), ``/estimates`` the model's named estimates, ``/camera`` the newest frame
(``foxglove.RawImage``, mono8), ``/health`` once a second (rate, latency, failsafe, frames lost,
the device's counters). Open ``ws://HOST:PORT`` in the Foxglove app.

The loop's cost is a time check and, at most ``rate_hz`` times a second per topic, one append
to a queue: a thread builds and publishes the messages. ``foxglove-sdk`` is an optional
extra (``pip install 'sensorimotor[live]'``) imported only when ``--live`` is given.
"""

from __future__ import annotations

import collections
import math
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

from sensorimotor.hardware.errors import HardwareError
from sensorimotor.hardware.messages import ImageFrame, SensorBatch
from sensorimotor.hardware.spec import DeviceSpec

DEFAULT_PORT = 8765  # the Foxglove app's default connection
TOPICS = ("/imu", "/encoder", "/command", "/estimates", "/camera", "/health")


class LiveError(HardwareError):
    """--live cannot start (the package is missing, the port is taken): one line for the user."""


def check_live(host: str, port: int) -> None:
    """Refuse --live before the run starts: the package is missing, or the port is taken (named)."""
    try:
        import foxglove  # noqa: F401
    except ImportError:
        raise LiveError("--live needs the foxglove-sdk package: pip install 'sensorimotor[live]'") from None
    if not 0 <= port <= 65535:
        raise LiveError(f"--live-port {port}: not a port number (0..65535; 0 picks a free one)")
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # as the server binds: a closed run's TIME_WAIT is no conflict, a listening server is
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError as exc:
        raise LiveError(f"--live: {host}:{port} is in use or not available ({exc.strerror}): another hw run --live? "
                        "Pass another --live-port") from None  # fmt: skip
    finally:
        probe.close()


class LiveView:
    """A Foxglove WebSocket server fed by the loop's hooks; :meth:`close` stops it."""

    def __init__(self, spec: DeviceSpec, host: str = "127.0.0.1", port: int = DEFAULT_PORT, rate_hz: float = 50.0):
        try:
            import foxglove
            from foxglove.channels import RawImageChannel
            from foxglove.messages import RawImage, Timestamp
        except ImportError:
            raise LiveError("--live needs the foxglove-sdk package: pip install 'sensorimotor[live]'") from None
        self._raw_image, self._timestamp = RawImage, Timestamp
        self.context = foxglove.Context()
        try:
            self.server = foxglove.start_server(name=f"sensorimotor hw run: {spec.name}", host=host, port=port,
                                                context=self.context)  # fmt: skip
        except RuntimeError as exc:
            raise LiveError(f"--live: cannot serve on {host}:{port} ({exc}); pass another --live-port") from None
        self.port = self.server.port
        self.channels: dict[str, Any] = {
            topic: foxglove.Channel(topic, message_encoding="json", context=self.context)
            for topic in TOPICS if topic != "/camera"
        }  # fmt: skip
        if spec.camera is not None:
            self.channels["/camera"] = RawImageChannel("/camera", context=self.context)
        self.channel_names = [c.name for c in spec.imu_channels]
        self.encoders = [(e.name, 2.0 * math.pi / e.cpr) for e in spec.encoders]
        self.period_ns = round(1e9 / rate_hz)
        self.due = dict.fromkeys(TOPICS, 0)
        self.queue: collections.deque[tuple[str, int, Any]] = collections.deque(maxlen=4096)
        self.published = dict.fromkeys(TOPICS, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish, name="hw-live", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the loop's hooks (cheap)

    def _take(self, topic: str, payload: Any) -> None:
        now = time.time_ns()
        if now >= self.due[topic]:
            self.due[topic] = now + self.period_ns
            self.queue.append((topic, now, payload))

    def sensor(self, batch: SensorBatch) -> None:
        self._take("/imu", batch)  # frozen: the thread reads it later without a copy

    def image(self, frame: ImageFrame) -> None:
        if "/camera" in self.channels:
            self._take("/camera", frame)

    def command(self, volts: Sequence[float], requested: Sequence[float] | None, safe: str | None) -> None:
        self._take("/command", (tuple(volts), None if requested is None else tuple(requested), safe))

    def estimates(self, named: dict[str, float]) -> None:
        self._take("/estimates", named)

    def health(self, values: dict[str, float], latencies_ns: list[int]) -> None:
        """Once a second: the loop's counters and its latencies since the last call (summarized by the thread)."""
        self.queue.append(("/health", time.time_ns(), (values, latencies_ns)))

    # ------------------------------------------------------------------ the thread

    def _publish(self) -> None:
        while not self._stop.wait(0.005):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        while self.queue:
            topic, t_ns, payload = self.queue.popleft()
            if topic == "/imu":
                self._log("/imu", t_ns, dict(zip(self.channel_names, payload.imu[-1].tolist(), strict=True)))
                counts = payload.encoder[-1].tolist()
                angles = {name: c * per_count for (name, per_count), c in zip(self.encoders, counts, strict=True)}
                self._log("/encoder", t_ns, angles)
            elif topic == "/command":
                volts, requested, safe = payload
                self._log("/command", t_ns, {"volts": list(volts), "requested": list(requested or volts),
                                             "safe": safe or ""})  # fmt: skip
            elif topic == "/camera":
                pixels = payload.pixels
                image = self._raw_image(
                    timestamp=self._timestamp(t_ns // 1_000_000_000, t_ns % 1_000_000_000), frame_id="camera",
                    width=pixels.shape[1], height=pixels.shape[0], encoding="mono8", step=pixels.shape[1],
                    data=pixels.tobytes(),
                )  # fmt: skip
                self.channels["/camera"].log(image, log_time=t_ns)
                self.published["/camera"] += 1
            elif topic == "/health":
                values, latencies = payload
                ordered = sorted(latencies)
                p50 = ordered[len(ordered) // 2] / 1e3 if ordered else float("nan")
                self._log("/health", t_ns, {**values, "latency_us_p50": p50})
            else:
                self._log(topic, t_ns, payload)

    def _log(self, topic: str, t_ns: int, message: dict[str, Any]) -> None:
        self.channels[topic].log(message, log_time=t_ns)
        self.published[topic] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.server.stop()
