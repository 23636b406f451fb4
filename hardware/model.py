"""The exported policy run by onnxruntime, checked when loaded and against the device it drives.

The ONNX file carries a JSON metadata entry ``sensorimotor`` (written by
:mod:`sensorimotor.control.export`): the format tag, the
:class:`~sensorimotor.hardware.spec.DeviceSpec` the model was trained for, and the names of
its estimates. :class:`OnnxPolicy` refuses, at load time and before anything reaches the
device, a file that is not a model, has no or malformed metadata, or whose input and
output names, dtypes and shapes do not match that spec. :meth:`OnnxPolicy.check_device`
then compares the model's spec with the device's handshake field by field.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from sensorimotor.hardware.errors import ModelError, ModelMismatchError
from sensorimotor.hardware.spec import DeviceSpec, SpecError, compare

FORMAT = "sensorimotor.policy.v2"
INPUT_NAMES = ("imu", "encoder", "image")  # "image" is optional: an IMU-only model has only the first two
REQUIRED_INPUTS = ("imu", "encoder")
OUTPUT_NAMES = ("volts", "estimates")
_ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}


def io_signature(spec: DeviceSpec, n_estimates: int | None = None) -> dict[str, tuple[str, tuple[int | None, ...]]]:
    """name -> (dtype, shape) the model must have for ``spec``; None marks the batch (or a free) axis."""
    c, w = len(spec.imu_channels), spec.imu_window
    return {
        "imu": ("float32", (None, c, w)),
        "encoder": ("float32", (None, w)),
        "image": ("uint8", (None, 1, spec.image_height, spec.image_width)),
        "volts": ("float32", (None, spec.n_actuators)),
        "estimates": ("float32", (None, n_estimates)),
    }


class Policy(Protocol):
    """What the control loop needs from a policy: an ONNX model, or recorded commands played back."""

    spec: DeviceSpec
    estimate_names: list[str]

    @property
    def uses_image(self) -> bool: ...

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]: ...

    def check_device(self, device: DeviceSpec, control_rate_hz: float | None = None) -> None: ...


class OnnxPolicy:
    """Raw sensor inputs -> (volts per actuator, estimates), batch 1, one CPU thread."""

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
        self.meta = self._read_metadata()
        try:
            self.spec = DeviceSpec.from_dict(self.meta["device"])
        except (KeyError, SpecError) as exc:
            raise ModelError(
                f"{self.path}: malformed device description in its metadata ({exc}); re-export it with `sim train`"
            ) from None
        names = self.meta.get("estimates", [])
        self.estimate_names: list[str] = [str(n) for n in names] if isinstance(names, list) else []
        self._check_io()

    def _read_metadata(self) -> dict[str, Any]:
        raw = self.session.get_modelmeta().custom_metadata_map.get("sensorimotor")
        if raw is None:
            raise ModelError(f"{self.path} has no 'sensorimotor' metadata: it was not exported by `sim train`")
        try:
            meta = json.loads(raw)
        except ValueError:
            raise ModelError(
                f"{self.path}: its 'sensorimotor' metadata is not valid JSON; re-export it with `sim train`"
            ) from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ModelError(
                f"{self.path}: metadata format {found!r}, this runtime reads {FORMAT!r}; re-export it with `sim train`"
            )
        return meta

    def _check_io(self) -> None:
        """Input/output names, dtypes and shapes against the model's own device description."""
        want = io_signature(self.spec, len(self.estimate_names) or None)
        have = {a.name: a for a in [*self.session.get_inputs(), *self.session.get_outputs()]}
        inputs = tuple(a.name for a in self.session.get_inputs())
        outputs = tuple(a.name for a in self.session.get_outputs())
        if not set(REQUIRED_INPUTS) <= set(inputs) <= set(INPUT_NAMES) or outputs != OUTPUT_NAMES:
            raise ModelError(
                f"{self.path} has inputs {inputs} and outputs {outputs}; expected {INPUT_NAMES} (image optional) "
                f"and {OUTPUT_NAMES}"
            )
        self.input_names = inputs
        problems = []
        for name, (dtype, shape) in want.items():
            if name not in have:
                continue  # an optional input the model does not take
            arg = have[name]
            if arg.type != _ORT_TYPES[dtype]:
                problems.append(f"{name} is {arg.type}, expected {_ORT_TYPES[dtype]}")
            got = tuple(d if isinstance(d, int) else None for d in arg.shape)
            if len(got) != len(shape) or any(
                w is not None and g is not None and w != g for w, g in zip(shape, got, strict=False)
            ):
                problems.append(
                    f"{name} has shape {list(arg.shape)}, expected {['batch' if d is None else d for d in shape]}"
                )
        if problems:
            raise ModelError(f"{self.path} does not match the device it describes: " + "; ".join(problems))

    @property
    def uses_image(self) -> bool:
        """False for an IMU-only model: the loop then needs no camera frame to start."""
        return "image" in self.input_names

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(volts (n_actuators,) float64, estimates) for one set of batch-1 inputs."""
        volts, estimates = self.session.run(None, {k: inputs[k] for k in self.input_names})
        return volts[0].astype(np.float64), estimates[0]

    def check_device(self, device: DeviceSpec, control_rate_hz: float | None = None) -> None:
        """Raise ModelMismatchError naming every field in which ``device`` does not fit the model."""
        self.check_spec(
            self.spec, device, f"model {self.path.name}", control_rate_hz,
            "Train a model for this device (sim train with a matching config) or use the matching model.",
        )  # fmt: skip

    @staticmethod
    def check_spec(
        expected: DeviceSpec, device: DeviceSpec, what: str, control_rate_hz: float | None = None,
        fix: str = "Use it with the device it was made for.",
    ) -> None:  # fmt: skip
        """ModelMismatchError naming every field in which ``device`` differs from ``expected`` (``what`` owns it)."""
        problems = compare(expected, device)
        if control_rate_hz is not None and abs(control_rate_hz - expected.control_rate_hz) > 1e-6:
            problems.append(
                f"control rate: {what} runs at {expected.control_rate_hz} Hz, --rate is {control_rate_hz:g}"
            )
        if problems:
            raise ModelMismatchError(f"{what} does not fit device '{device.name}': " + "; ".join(problems) + f". {fix}")
