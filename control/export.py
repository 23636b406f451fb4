"""Export the whole chain (raw sensors -> voltage) as ONE ONNX model, and check parity.

Graph inputs (batch 1 at run time, dynamic batch allowed)::

    imu      float32 (B, 6, W)        gyro rad/s, accel m/s^2, oldest sample first
    encoder  float32 (B, E, W)        every encoder's counts, sampled with the IMU (the Furuta: E = 1)
    image    uint8   (B, 1, H, W)     latest camera frame

Outputs: ``volts`` float32 (B, n_actuators), already clipped to the actuator range;
``estimates`` float32 (B, len(OBS_NAMES)), the perception outputs the policy saw (names in the metadata).

Input scaling, the encoder-rate filter, the policy, action clipping and scaling all live
in the graph (stable-baselines3's own recipe leaves the last two out). Metadata key
``sensorimotor`` holds the format tag and the device's
:class:`~sensorimotor.hardware.spec.DeviceSpec`, which the runtime checks at load time and
against the device's handshake (:mod:`sensorimotor.hardware.model`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

from sensorimotor.hardware.model import FORMAT, INPUT_NAMES, OUTPUT_NAMES, STATE_SUFFIX, io_signature
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.filter import STATE_NAME as FILTER_STATE
from sensorimotor.perception.models import RATE_SCALE, ObservationModel, Perception
from sensorimotor.sim.config import DeviceSection

HISTORY_STATE = "policy_history"  # the last rl.history (observations, normalized command) pairs, newest first


class PolicyChain(nn.Module):
    """ObservationModel -> the policy's observations -> actor (deterministic) -> clip -> volts.

    ``actor`` maps the selected observations to the normalized command in [-1, 1] (e.g. a
    :class:`~sensorimotor.control.algos.DeterministicActor`); ``observations`` names the
    columns of :data:`OBS_NAMES` it sees (all by default; fewer for an ablation). The second
    output is always the full estimate vector, which the hardware loop logs.

    When the observation model keeps state (the IMU filter), the chain takes it after the
    sensor inputs and returns the next one after volts and estimates: ``states`` names it, as
    :func:`export_onnx` and the runtime expect (hardware/model.py). With ``history`` > 0 the
    actor also sees the last ``history`` steps' observations and commands, carried the same
    way as one more state (:data:`HISTORY_STATE`), so the exported model stays one graph.
    """

    index: torch.Tensor

    def __init__(
        self, obs_model: ObservationModel, actor: nn.Module, v_max: float, observations: Sequence[str] = OBS_NAMES,
        history: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.obs_model = obs_model
        self.actor = actor
        self.v_max = float(v_max)
        self.select = tuple(observations) != OBS_NAMES
        self.register_buffer("index", torch.tensor([OBS_NAMES.index(o) for o in observations], dtype=torch.long))
        self.history = history
        self.history_size = history_size(len(observations), history)
        self.step_size = len(observations) + 1

    @property
    def states(self) -> list[tuple[str, int]]:
        """(name, size) of each recurrent state input: the IMU filter's, then the policy's history."""
        filt = [(FILTER_STATE, self.obs_model.state_size)] if self.obs_model.state_size else []
        return filt + ([(HISTORY_STATE, self.history_size)] if self.history else [])

    @property
    def input_names(self) -> tuple[str, ...]:
        """The forward's (and the ONNX graph's) inputs, in order: sensors, then states."""
        return (*INPUT_NAMES, *(name for name, _ in self.states))

    def forward(self, imu: torch.Tensor, encoder: torch.Tensor, image: torch.Tensor, *state: torch.Tensor) -> Any:
        filtered = 1 if self.obs_model.state_size else 0
        obs, next_filter = self.obs_model(imu, encoder, image, *state[:filtered])
        seen = obs.index_select(1, self.index) if self.select else obs
        if not self.history:
            action = torch.clamp(self.actor(seen), -1.0, 1.0)
            return (action * self.v_max, obs, next_filter) if state else (action * self.v_max, obs)
        past = state[filtered]
        action = torch.clamp(self.actor(torch.cat([seen, past], dim=1)), -1.0, 1.0)
        # newest step first; the oldest step falls off the end (as PerceivedFurutaVecEnv does in training)
        next_past = torch.cat([seen, action, past[:, : self.history_size - self.step_size]], dim=1)
        return (action * self.v_max, obs, *([next_filter] if filtered else []), next_past)


def history_size(n_observations: int, steps: int) -> int:
    """Width of the policy's history state: ``steps`` past (observations, command) pairs."""
    return steps * (n_observations + 1)


class ImuOnlyChain(nn.Module):
    """IMU window + encoder -> volts, no camera: the shape of a fast (1 kHz) controller.

    The IMU encoder of :mod:`sensorimotor.perception.models`, the encoder angle and rate,
    and an MLP. Estimates: ``imu_sin``, ``imu_cos``, ``imu_rate``, ``arm_angle``, ``arm_rate``.
    """

    ESTIMATES = ("imu_sin", "imu_cos", "imu_rate", "arm_angle", "arm_rate")
    slope: torch.Tensor  # (rate_samples,) buffer: least-squares slope weights in rad/s per count

    def __init__(self, window: int, cpr: int, imu_rate_hz: float, v_max: float, dim: int = 64) -> None:
        super().__init__()
        obs = ObservationModel(Perception(window, dim), cpr, imu_rate_hz)  # stateless: no IMU filter
        self.imu_encoder, self.imu_head = obs.perception.imu_encoder, obs.perception.imu_head
        self.rate_samples, self.rad_per_count = obs.rate_samples, obs.rad_per_count
        self.register_buffer("slope", obs.slope.clone())
        self.actor = nn.Sequential(nn.Linear(5, 64), nn.Tanh(), nn.Linear(64, 1))
        self.v_max = float(v_max)

    def forward(self, imu: torch.Tensor, encoder: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        est = self.imu_head(self.imu_encoder(imu))
        encoder = encoder[:, 0]  # (B, E, W) -> the arm's (B, W)
        arm = encoder[:, -1:] * self.rad_per_count
        rate = ((encoder[:, -self.rate_samples :] - encoder[:, -1:]) * self.slope).sum(-1, keepdim=True) / RATE_SCALE
        obs = torch.cat([est, arm, rate], dim=-1)
        return torch.clamp(self.actor(obs), -1.0, 1.0) * self.v_max, obs


def model_metadata(
    device: DeviceSection, extra: dict[str, Any] | None = None, inputs: Sequence[str] = INPUT_NAMES,
    estimates: Sequence[str] = OBS_NAMES,
) -> dict[str, Any]:  # fmt: skip
    """What the runtime needs to check the model and refuse a device it does not fit."""
    spec = device.spec()
    meta: dict[str, Any] = {
        "format": FORMAT,
        "device": spec.to_dict(),
        "inputs": {
            name: {"dtype": dtype, "shape": ["batch", *shape[1:]]}
            for name, (dtype, shape) in io_signature(spec).items()
            if name in inputs
        },
        "estimates": list(estimates),
    }
    meta.update(extra or {})
    return meta


def example_inputs(device: DeviceSection) -> dict[str, torch.Tensor]:
    """Batch-1 zeros of each sensor input the device's spec declares: imu (1, C, W), encoder (1, E, W), image."""
    spec = device.spec()
    w = spec.imu_window
    out = {"imu": torch.zeros(1, len(spec.imu_channels), w), "encoder": torch.zeros(1, len(spec.encoders), w)}
    if spec.image_shape is not None:
        out["image"] = torch.zeros(1, 1, *spec.image_shape, dtype=torch.uint8)
    return out


def export_onnx(
    chain: nn.Module, device: DeviceSection, path: Path, extra_meta: dict[str, Any] | None = None,
    inputs: Sequence[str] = INPUT_NAMES, estimates: Sequence[str] = OBS_NAMES,
    states: Sequence[tuple[str, int]] | None = None,
) -> None:  # fmt: skip
    """Write ``chain`` (forward over ``inputs``, in order, then the ``states``) to ``path`` as one ONNX file.

    ``states``: (name, size) of each recurrent state the chain takes after its sensor inputs and
    returns after volts and estimates, as ``name_next`` (the runtime carries it: hardware/model.py).
    None: the chain's own ``states`` (a :class:`PolicyChain`'s IMU filter), else none.
    """
    import warnings

    states = getattr(chain, "states", []) if states is None else states

    chain = chain.eval()
    examples = example_inputs(device)
    args = (*(examples[n] for n in inputs), *(torch.zeros(1, size) for _, size in states))
    input_names = [*inputs, *(name for name, _ in states)]
    output_names = [*OUTPUT_NAMES, *(name + STATE_SUFFIX for name, _ in states)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            chain, args, str(path), input_names=input_names, output_names=output_names,
            dynamic_axes={n: {0: "batch"} for n in (*input_names, *output_names)}, dynamo=False, opset_version=17,
        )  # fmt: skip
    model = onnx.load(str(path))
    sizes = {name + STATE_SUFFIX: size for name, size in states}
    for out in model.graph.output:  # torch's shape inference may leave a concatenated state's width symbolic
        if out.name in sizes:
            out.type.tensor_type.shape.dim[1].dim_value = sizes[out.name]
    meta = model.metadata_props.add()
    state_meta = {"state": [{"name": name, "size": size} for name, size in states]} if states else {}
    meta.key, meta.value = "sensorimotor", json.dumps(model_metadata(device, {**state_meta, **(extra_meta or {})},
                                                                     inputs, estimates))  # fmt: skip
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def chain_inputs(chain: nn.Module) -> tuple[str, ...]:
    """A chain's inputs in order: a :class:`PolicyChain`'s ``input_names`` (sensors + states), else the sensors."""
    return tuple(getattr(chain, "input_names", INPUT_NAMES))


def _outputs(module: nn.Module, inputs: dict[str, np.ndarray], names: Sequence[str]) -> list[np.ndarray]:
    with torch.no_grad():
        out = module(*(torch.from_numpy(inputs[k]) for k in names))
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def parity(
    chain: nn.Module, path: Path, inputs: dict[str, np.ndarray], names: Sequence[str] | None = None
) -> tuple[float, float]:
    """Max |ONNX - torch| over every output: (onnxruntime at batch 1, onnx.reference on one batch)."""
    ort_diff, ref_diff = parity_by_output(chain, path, inputs, names)
    return max(ort_diff), max(ref_diff)


def parity_by_output(
    chain: nn.Module, path: Path, inputs: dict[str, np.ndarray], names: Sequence[str] | None = None
) -> tuple[list[float], list[float]]:
    """Max |ONNX - torch| per output, for onnxruntime (each input at batch 1) and onnx.reference (one batch).

    ``names``: the inputs, in the chain's order (None: its ``input_names``, else the sensors);
    a stateful chain's samples carry the state each input met, so its next state is compared too.

    onnxruntime is what the robot runs; ``onnx.reference.ReferenceEvaluator`` is ONNX's own
    reading of the graph's semantics, independent of onnxruntime's kernels.
    """
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    names = chain_inputs(chain) if names is None else names
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst: list[float] = []
    for i in range(len(inputs[names[0]])):
        one = {k: inputs[k][i : i + 1] for k in names}
        diffs = [
            float(np.max(np.abs(a - b))) for a, b in zip(sess.run(None, one), _outputs(chain, one, names), strict=True)
        ]
        worst = [max(w, d) for w, d in zip(worst, diffs, strict=True)] if worst else diffs
    batch = {k: inputs[k] for k in names}
    ref = ReferenceEvaluator(str(path)).run(None, batch)
    ref_worst = [float(np.max(np.abs(a - b))) for a, b in zip(ref, _outputs(chain, batch, names), strict=True)]
    return worst, ref_worst


def latency_us(chain: nn.Module, path: Path, inputs: dict[str, np.ndarray], repeats: int = 300) -> dict[str, float]:
    """Median batch-1 latency (us) of onnxruntime and torch eager on the same inputs."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    one = {k: inputs[k][:1] for k in chain_inputs(chain)}
    t_one = tuple(torch.from_numpy(v) for v in one.values())

    def median(fn: Any) -> float:
        for _ in range(20):
            fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return float(np.median(times) * 1e6)

    with torch.no_grad():
        t_ort = median(lambda: sess.run(None, one))
        t_torch = median(lambda: chain(*t_one))
    return {"onnxruntime_us_p50": t_ort, "torch_us_p50": t_torch, "torch_over_onnxruntime": t_torch / t_ort}
