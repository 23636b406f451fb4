"""Labelled perception samples from recorded run logs: ``hw run --record`` on a device that sends REFERENCE frames.

Each control cycle the log holds a command for becomes one sample: the model inputs exactly
as the loop built them (the same :class:`~sensorimotor.hardware.windows.SensorWindows` fed
the same logged frames, as ``hw replay`` does) and the labels a reference sensor sent
(docs/protocol.md, REFERENCE):

* the IMU label is the REFERENCE sent with the SENSOR frame that ends the window (matched by
  its timestamp): ``alpha``, ``alpha_d``, ``theta``, ``theta_d``;
* the image label is the REFERENCE sent after the IMAGE frame the window holds: ``f_alpha``,
  ``f_class`` (optional: without it, image samples carry no angle and count as unusable).

A log is cut into episodes of ``chunk`` consecutive cycles, so the validation split holds
out whole stretches of motion. The result is a :class:`~sensorimotor.perception.data.SensorDataset`,
the same interface simulated data has.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sensorimotor.hardware.framing import FramingError, decode_body
from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, TOPIC_DEVICE, TOPIC_RX, LogError, LogReader
from sensorimotor.hardware.messages import ImageFrame, MessageError, MessageReader, Reference, SensorBatch
from sensorimotor.hardware.spec import DeviceSpec, SpecError, compare
from sensorimotor.hardware.windows import SensorWindows
from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.errors import DatasetError
from sensorimotor.sim.sensors import CAMERA_OK

SENSOR_LABELS = ("alpha", "alpha_d", "theta", "theta_d")  # state order: theta, alpha, theta_dot, alpha_dot
FRAME_LABELS = ("f_alpha", "f_class")
NO_FRAME_LABEL = -1  # camera_class of a sample whose frame has no reference: no image loss, not classified


def _read_log(path: Path, device: DeviceSpec, label: str) -> dict[str, np.ndarray]:
    """One log's samples (arrays over cycles); DatasetError for a log that cannot label this model's inputs."""
    windows = SensorWindows.for_device(device, needs_image=True)
    sensor_refs: dict[int, dict[str, float]] = {}
    frame_refs: dict[int, dict[str, float]] = {}
    names: set[str] = set()
    images = 0  # IMAGE frames taken so far: the index of the frame the window holds
    cycles: list[tuple[dict[str, np.ndarray], int | None, int]] = []
    described = False
    read = MessageReader()  # the handshake's DESCRIBE comes before any SENSOR frame
    try:
        log = LogReader(path)
        for msg in log:
            if msg.topic == TOPIC_DEVICE:
                _check_device(path, msg.json(), device)
                described = True
            elif msg.topic == TOPIC_RX:
                try:
                    frame = decode_body(msg.data)
                    parsed = read(frame)
                except (FramingError, MessageError):
                    continue  # a corrupted frame: the loop dropped it too
                if isinstance(parsed, SensorBatch):
                    windows.add_sensor(parsed, frame.timestamp_us)
                elif isinstance(parsed, ImageFrame):
                    windows.add_image(parsed)
                    images += 1
                elif isinstance(parsed, Reference):
                    values = parsed.as_dict()
                    names.update(values)
                    if "f_alpha" in values:
                        frame_refs[images] = values  # sent right after its IMAGE frame
                    else:
                        sensor_refs[frame.timestamp_us] = values  # same timestamp as its SENSOR frame
            elif msg.topic == TOPIC_COMMAND and not msg.json().get("safe"):
                cycles.append((windows.inputs(), windows.last_stamp_us, images))
    except LogError as exc:
        raise DatasetError(f"{path}: not a readable run log ({exc})") from None
    if not described:
        raise DatasetError(f"{path}: no device description ({TOPIC_DEVICE}); record it with `hw run --record`")
    if label not in names:
        present = ", ".join(sorted(names)) or "none: the log has no REFERENCE frames"
        raise DatasetError(
            f"{path}: no label channel {label!r} (REFERENCE values present: {present}). Record with a reference "
            "sensor fitted; on the twin: hw run --twin --set device.reference=true --record LOG"
        )
    return _assemble(cycles, sensor_refs, frame_refs)


def _check_device(path: Path, info: dict[str, Any], device: DeviceSpec) -> None:
    try:
        logged = DeviceSpec.from_dict(info["spec"])
    except (KeyError, TypeError, SpecError) as exc:
        raise DatasetError(f"{path}: its device description is unreadable ({exc})") from None
    problems = compare(device, logged)
    if problems:
        raise DatasetError(
            f"{path} was recorded on device '{logged.name}', which does not match the model's device: "
            + "; ".join(problems)
            + ". Fine-tune with a config that describes the recorded device (--config), or record on this one."
        )


def _assemble(
    cycles: list[tuple[dict[str, np.ndarray], int | None, int]], sensor_refs: dict[int, dict[str, float]],
    frame_refs: dict[int, dict[str, float]],
) -> dict[str, np.ndarray]:  # fmt: skip
    rows: dict[str, list[np.ndarray]] = {k: [] for k in ("imu", "encoder", "image", "state", "image_state", "cls")}
    for inputs, stamp, image_index in cycles:
        ref = sensor_refs.get(stamp) if stamp is not None else None
        if ref is None or not all(k in ref for k in SENSOR_LABELS):
            continue  # no reference for this window's newest sample (e.g. the cycle before the first SENSOR)
        rows["imu"].append(inputs["imu"][0])
        rows["encoder"].append(inputs["encoder"][0, 0])  # the arm's: the Furuta's only encoder
        rows["image"].append(inputs["image"][0])
        rows["state"].append(np.array([ref["theta"], ref["alpha"], ref["theta_d"], ref["alpha_d"]], np.float32))
        fref = frame_refs.get(image_index)
        f_alpha = fref["f_alpha"] if fref else np.nan
        rows["image_state"].append(np.array([np.nan, f_alpha, np.nan, np.nan], np.float32))
        rows["cls"].append(np.array(int(fref["f_class"]) if fref and "f_class" in fref else NO_FRAME_LABEL))
    return {k: np.stack(v) if v else np.zeros(0) for k, v in rows.items()}


def load_logs(paths: Sequence[Path], device: DeviceSpec, label: str = "alpha", chunk: int = 20) -> SensorDataset:
    """Every labelled cycle of ``paths``, in episodes of ``chunk`` cycles (a log's tail shorter than that is dropped).

    ``label`` names the REFERENCE value that must be present (the pendulum angle by default).
    """
    if label not in SENSOR_LABELS:
        raise DatasetError(f"label channel {label!r}: this version fine-tunes on {', '.join(SENSOR_LABELS)}")
    parts: list[dict[str, np.ndarray]] = []
    for path in paths:
        part = _read_log(Path(path), device, label)
        n = (len(part["state"]) // chunk) * chunk if len(part["state"]) else 0
        if n:
            parts.append({k: v[:n] for k, v in part.items()})
    total = sum(len(p["state"]) for p in parts)
    if total == 0:
        raise DatasetError(
            f"{len(paths)} log(s) hold no labelled episode of {chunk} cycles: record longer runs "
            f"(at {device.control_rate_hz} Hz, {chunk} cycles take {chunk / device.control_rate_hz:.1f} s)"
        )
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    cls = cat["cls"].astype(np.int64)
    ok = cls == CAMERA_OK
    return SensorDataset(
        imu=torch.from_numpy(cat["imu"].astype(np.float32)), encoder=torch.from_numpy(cat["encoder"].astype(np.float32)),
        image=torch.from_numpy(cat["image"].astype(np.uint8)), clean=torch.zeros(0, dtype=torch.uint8),
        state=torch.from_numpy(cat["state"]), image_state=torch.from_numpy(np.where(ok[:, None], cat["image_state"], 0.0)),
        camera_class=torch.from_numpy(cls), seq_len=chunk,
    )  # fmt: skip
