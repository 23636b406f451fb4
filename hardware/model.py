"""The exported policy run by onnxruntime, and its compatibility check against a device.

The ONNX file carries a JSON metadata entry ``sensorimotor`` (written by
``sensorimotor.control.export``): input shapes, rates, encoder resolution, actuator range and
protocol version. ``check_device`` refuses a device that does not match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from sensorimotor.hardware.errors import ModelError, ModelMismatchError
from sensorimotor.hardware.messages import DeviceInfo

INPUT_NAMES = ("imu", "encoder", "image")


class OnnxPolicy:
    """Raw sensor inputs -> (volts, estimates), batch 1, one CPU thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist; train one with `sim train --out runs/quick`")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # batch 1: threads cost more than they give
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path} is not a loadable ONNX model ({str(exc).splitlines()[0]})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get("sensorimotor")
        if raw is None:
            raise ModelError(f"{self.path} has no 'sensorimotor' metadata: export it with `sim train`")
        self.meta: dict[str, Any] = json.loads(raw)
        names = tuple(i.name for i in self.session.get_inputs())
        if sorted(names) != sorted(INPUT_NAMES):
            raise ModelError(f"{self.path} has inputs {names}, expected {INPUT_NAMES}")
        self.estimate_names: list[str] = self.meta.get("outputs", {}).get("estimates", {}).get("names", [])

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        """(volts, estimates) for one set of inputs."""
        volts, estimates = self.session.run(None, inputs)
        return float(volts[0, 0]), estimates[0]

    def check_device(self, info: DeviceInfo, control_rate_hz: float | None = None) -> None:
        """Raise ModelMismatchError naming every way the device does not fit the model."""
        m = self.meta
        problems = []
        pairs = [
            ("protocol version", m["protocol_version"], info.protocol_version),
            ("IMU rate (Hz)", m["imu_rate_hz"], info.imu_rate_hz),
            ("IMU channels", 6, info.imu_channels),
            ("encoder counts/rev", m["encoder_cpr"], info.encoder_cpr),
            ("image size", f"{m['image_height']}x{m['image_width']}", f"{info.image_height}x{info.image_width}"),
            ("actuators", 1, info.n_actuators),
        ]
        for what, want, got in pairs:
            if want != got:
                problems.append(f"{what}: model expects {want}, device has {got}")
        if info.v_max < m["v_max"] * 0.999 or info.v_min > -m["v_max"] * 0.999:
            problems.append(f"actuator range: model commands +-{m['v_max']} V, device accepts [{info.v_min}, {info.v_max}] V")
        if control_rate_hz is not None and abs(control_rate_hz - m["control_rate_hz"]) > 1e-6:
            problems.append(f"control rate: model was trained at {m['control_rate_hz']} Hz, --rate is {control_rate_hz}")
        if problems:
            raise ModelMismatchError(
                f"model {self.path.name} does not fit device '{info.name}': " + "; ".join(problems)
                + ". Train a model for this device (sim train with a matching config) or use the matching model."
            )
