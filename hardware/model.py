"""The exported policy run by onnxruntime, checked when loaded and against the device it drives.

The ONNX file carries a JSON metadata entry ``sensorimotor`` (written by
:mod:`sensorimotor.control.export`): the format tag, the
:class:`~sensorimotor.hardware.spec.DeviceSpec` the model was trained for, and the names of
its estimates. :class:`OnnxPolicy` refuses, at load time and before anything reaches the
device, a file that is not a model, has no or malformed metadata, or whose input and
output names, dtypes and shapes do not match that spec. :meth:`OnnxPolicy.check_device`
then compares the model's spec with the device's handshake field by field.

**Recurrent state.** Besides the sensor inputs a model may take state inputs: any other input
``NAME`` (float32, shape (batch, K)) paired with an output ``NAME_next`` of the same shape
(after ``volts`` and ``estimates``). A stateful estimator (a filter or recurrent network)
keeps what it has learned across control cycles this way. :class:`OnnxPolicy` starts each
state at zeros, feeds it back every cycle it runs the model, and exposes it
(:attr:`OnnxPolicy.state_values`) so the loop logs it; replay runs the model at the same
cycles from the same zeros, so it reproduces the state exactly (and checks it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnxruntime as ort

from sensorimotor.hardware.errors import ModelError, ModelMismatchError
from sensorimotor.hardware.spec import DeviceSpec, SpecError, compare

FORMAT = "sensorimotor.policy.v3"  # encoder (B, E, W): every encoder the device declares
#: Models exported before v3 take only the first encoder, (B, W); they still load and run.
LEGACY_FORMATS = ("sensorimotor.policy.v2",)
INPUT_NAMES = ("imu", "encoder", "image")  # "image" is optional: an IMU-only model has only the first two
REQUIRED_INPUTS = ("imu", "encoder")
OUTPUT_NAMES = ("volts", "estimates")
STATE_SUFFIX = "_next"  # state input NAME -> state output NAME_next
_ORT_TYPES = {"float32": "tensor(float)", "uint8": "tensor(uint8)"}
ORT_ERROR = 3  # onnxruntime's log severity: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def _check_readable(path: Path) -> None:
    """ModelError naming the cause when ``path`` cannot be opened for reading (permissions, above all)."""
    try:
        with path.open("rb"):
            pass
    except PermissionError:
        raise ModelError(
            f"no permission to read {path}: make it readable (chmod a+r {path}) or run as its owner"
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None


def io_signature(
    spec: DeviceSpec, n_estimates: int | None = None, legacy: bool = False
) -> dict[str, tuple[str, tuple[int | None, ...]]]:
    """name -> (dtype, shape) the model must have for ``spec``; None marks the batch (or a free) axis.

    ``encoder`` holds every encoder the device declares, (B, E, W); a ``legacy`` (v2) model's only the first, (B, W).
    """
    c, w, e = len(spec.imu_channels), spec.imu_window, len(spec.encoders)
    image = {} if spec.image_shape is None else {"image": ("uint8", (None, 1, *spec.image_shape))}
    return {
        "imu": ("float32", (None, c, w)),
        "encoder": ("float32", (None, w) if legacy else (None, e, w)),
        **image,
        "volts": ("float32", (None, spec.n_actuators)),
        "estimates": ("float32", (None, n_estimates)),
    }


class LoopPolicy(Protocol):
    """What the control loop needs from what computes its commands: a :class:`Policy`, or an excitation.

    ``check_device`` refuses, before streaming, a device it cannot drive; ``run`` turns one
    set of batch-1 inputs (``SensorWindows.inputs``) into volts per actuator and the
    estimates logged beside them (named by ``estimate_names``).
    """

    estimate_names: list[str]
    tilt_estimate: str | None  # the estimate (rad, 0 upright) loop.fall_stop_deg watches; None: the Furuta's heads

    @property
    def uses_image(self) -> bool: ...

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]: ...

    def check_device(self, device: DeviceSpec, control_rate_hz: float | None = None) -> None: ...

    @property
    def state_values(self) -> dict[str, list[float]]: ...


class Policy(LoopPolicy, Protocol):
    """A policy made for a device: an ONNX model, or recorded commands played back (``spec``: that device)."""

    spec: DeviceSpec


class OnnxPolicy:
    """Raw sensor inputs -> (volts per actuator, estimates), batch 1, one CPU thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file {self.path} does not exist; train one with `sim train --out runs/quick`")
        _check_readable(self.path)  # onnxruntime would only say "system error number 13"
        # Our one-line error is the whole story: onnxruntime's coloured warnings (an unused
        # initializer, telemetry) printed before it would bury it. Errors only, process-wide.
        ort.set_default_logger_severity(ORT_ERROR)
        opts = ort.SessionOptions()
        opts.log_severity_level = ORT_ERROR
        opts.intra_op_num_threads = 1  # batch 1: threads cost more than they give
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path} is not a loadable ONNX model ({str(exc).splitlines()[0]})") from None
        self.legacy = False  # a v2 model: its encoder input is the first encoder's window only
        self.meta = self._read_metadata()
        try:
            self.spec = DeviceSpec.from_dict(self.meta["device"])
        except (KeyError, SpecError) as exc:
            raise ModelError(
                f"{self.path}: malformed device description in its metadata ({exc}); re-export it with `sim train`"
            ) from None
        names = self.meta.get("estimates", [])
        self.estimate_names: list[str] = [str(n) for n in names] if isinstance(names, list) else []
        tilt = self.meta.get("tilt_estimate")
        self.tilt_estimate: str | None = tilt if isinstance(tilt, str) and tilt in self.estimate_names else None
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
        if isinstance(meta, dict) and meta.get("format") in LEGACY_FORMATS:
            self.legacy = True
            return meta
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ModelError(
                f"{self.path}: metadata format {found!r}, this runtime reads {FORMAT!r}; re-export it with `sim train`"
            )
        return meta

    def _check_io(self) -> None:
        """Input/output names, dtypes and shapes against the model's own device description."""
        want = io_signature(self.spec, len(self.estimate_names) or None, self.legacy)
        have = {a.name: a for a in [*self.session.get_inputs(), *self.session.get_outputs()]}
        inputs = tuple(a.name for a in self.session.get_inputs())
        outputs = tuple(a.name for a in self.session.get_outputs())
        states = tuple(n for n in inputs if n not in INPUT_NAMES)
        expected_outputs = (*OUTPUT_NAMES, *(n + STATE_SUFFIX for n in states))
        if not set(REQUIRED_INPUTS) <= set(inputs) or outputs != expected_outputs:
            raise ModelError(
                f"{self.path} has inputs {inputs} and outputs {outputs}; expected {INPUT_NAMES} (image optional) "
                f"and {OUTPUT_NAMES}, and for each state input NAME an output NAME{STATE_SUFFIX} after them"
            )
        self.state_names = states
        self._state_sizes: dict[str, int] = {}
        for name in states:
            arg, out = have[name], have[name + STATE_SUFFIX]
            size = arg.shape[1] if len(arg.shape) == 2 and isinstance(arg.shape[1], int) else None
            if arg.type != _ORT_TYPES["float32"] or size is None or size < 1 or list(out.shape[1:]) != [size] \
                    or out.type != arg.type:  # fmt: skip
                raise ModelError(
                    f"{self.path}: state {name} must be float32 (batch, K) with a fixed K, and {name}{STATE_SUFFIX} "
                    f"the same; got {arg.type} {list(arg.shape)} and {out.type} {list(out.shape)}"
                )
            self._state_sizes[name] = size
        self.reset_state()
        inputs = tuple(n for n in inputs if n in INPUT_NAMES)
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

    def reset_state(self) -> None:
        """Every state input back to zeros (a new run)."""
        if not hasattr(self, "state"):
            self.state = {n: np.zeros((1, k), np.float32) for n, k in self._state_sizes.items()}
            self._binding: tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]] | None = None
        for value in self.state.values():
            value[...] = 0.0  # in place: the binding reads these buffers

    @property
    def state_values(self) -> dict[str, list[float]]:
        """The state after the last run (what the next run is fed); empty for a stateless model."""
        return {n: v[0].astype(np.float64).tolist() for n, v in self.state.items()}

    def run(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(volts (n_actuators,) float64, estimates) for one set of batch-1 inputs; advances the state."""
        if self._binding is None:
            self._binding = self._bind(inputs)
        binding, bound_inputs, outputs = self._binding
        for name, buffer in bound_inputs.items():
            np.copyto(buffer, self._input(inputs, name))
        self.session.run_with_iobinding(binding)
        for name, buffer in self.state.items():
            np.copyto(buffer, outputs[name + STATE_SUFFIX])
        return outputs["volts"][0].astype(np.float64), outputs["estimates"][0].copy()

    def _input(self, inputs: dict[str, np.ndarray], name: str) -> np.ndarray:
        """``inputs[name]`` as the model takes it: a v2 model's encoder is the first encoder's window (1, W)."""
        return inputs[name][:, 0] if self.legacy and name == "encoder" else inputs[name]

    def _bind(self, inputs: dict[str, np.ndarray]) -> tuple[Any, dict[str, np.ndarray], dict[str, np.ndarray]]:
        """One IOBinding over fixed batch-1 buffers (inputs, state, outputs): a cycle allocates and converts nothing
        (docs/results.md, the loop's compute time)."""
        binding = self.session.io_binding()
        bound_inputs = {name: np.empty_like(self._input(inputs, name)) for name in self.input_names}
        n_estimates = len(self.estimate_names) or int(self.session.get_outputs()[1].shape[1])
        outputs = {"volts": np.empty((1, self.spec.n_actuators), np.float32),
                   "estimates": np.empty((1, n_estimates), np.float32)}  # fmt: skip
        outputs |= {name + STATE_SUFFIX: np.empty((1, k), np.float32) for name, k in self._state_sizes.items()}
        for name, buffer in (*bound_inputs.items(), *self.state.items()):
            binding.bind_cpu_input(name, buffer)
        for name, buffer in outputs.items():
            binding.bind_output(name, "cpu", 0, buffer.dtype, buffer.shape, buffer.ctypes.data)
        return binding, bound_inputs, outputs

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
