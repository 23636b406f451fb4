"""The exported chain: parity with torch and an independent ONNX evaluator, clipping in the graph, metadata."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from torch import nn

from sensorimotor.control.export import PolicyChain, export_onnx, parity
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.hardware.spec import DeviceSpec
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import ObservationModel, Perception
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim


def _chain(bias: float = 0.0) -> PolicyChain:
    torch.manual_seed(0)
    dev = DeviceConfig()
    actor = nn.Sequential(nn.Linear(len(OBS_NAMES), 16), nn.Tanh(), nn.Linear(16, 1))
    with torch.no_grad():
        actor[2].bias.fill_(bias)
    return PolicyChain(ObservationModel(Perception(), dev.encoder_cpr, dev.imu.rate_hz), actor, dev.v_max).eval()


def _sensor_inputs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    sim = FurutaSim(DeviceConfig(), n, seed=seed)
    sim.reset()
    sim.step(np.random.default_rng(seed).uniform(-5, 5, n))
    return sim.observation()


def test_onnx_matches_torch_within_1e_5_over_1000_sensor_inputs(tmp_path) -> None:
    chain = _chain()
    path = tmp_path / "p.onnx"
    export_onnx(chain, DeviceConfig(), path)
    ort_diff, ref_diff = parity(chain, path, _sensor_inputs(1000))
    assert ort_diff <= 1e-5 and ref_diff <= 1e-5, (ort_diff, ref_diff)


def test_a_policy_on_fewer_observations_sees_exactly_those_columns(tmp_path) -> None:
    """The ablation's chain: the actor gets the selected estimates; the graph still outputs all of them."""
    dev = DeviceConfig()
    torch.manual_seed(0)
    obs_model = ObservationModel(Perception(), dev.encoder_cpr, dev.imu.rate_hz)
    keep = ("imu_sin", "imu_cos", "imu_rate", "img_sin", "img_cos", "arm_angle", "arm_rate")  # no camera_ok
    actor = nn.Linear(len(keep), 1)
    chain = PolicyChain(obs_model, actor, dev.v_max, keep).eval()
    raw = _sensor_inputs(64)
    t = [torch.from_numpy(raw[k]) for k in ("imu", "encoder", "image")]
    with torch.no_grad():
        volts, est = chain(*t)
        cols = [list(OBS_NAMES).index(k) for k in keep]
        expected = torch.clamp(actor(est[:, cols]), -1, 1) * dev.v_max
    assert est.shape[1] == len(OBS_NAMES)
    assert torch.equal(volts, expected)
    path = tmp_path / "p.onnx"
    export_onnx(chain, dev, path)
    assert max(parity(chain, path, raw)) <= 1e-5


def test_onnxruntime_matches_the_onnx_reference_evaluator(small_model) -> None:
    ref = ReferenceEvaluator(onnx.load(str(small_model)))
    policy = OnnxPolicy(small_model)
    raw = _sensor_inputs(5, seed=1)
    for i in range(5):
        one = {k: v[i : i + 1] for k, v in raw.items()}
        volts_ref, est_ref = ref.run(None, one)
        volts, est = policy.run(one)
        assert abs(volts - float(volts_ref[0, 0])) <= 1e-4
        assert np.allclose(est, est_ref[0], atol=1e-4)


@pytest.mark.parametrize("bias", [50.0, -50.0])
def test_action_clipping_and_scaling_are_inside_the_graph(tmp_path, bias: float) -> None:
    path = tmp_path / "p.onnx"
    export_onnx(_chain(bias), DeviceConfig(), path)
    volts, _ = OnnxPolicy(path).run({k: v[:1] for k, v in _sensor_inputs(2).items()})
    assert volts == pytest.approx(np.sign(bias) * DeviceConfig().v_max)


def test_metadata_embeds_the_device_spec(small_model) -> None:
    meta = json.loads({p.key: p.value for p in onnx.load(str(small_model)).metadata_props}["sensorimotor"])
    assert meta["format"] == "sensorimotor.policy.v3"
    assert DeviceSpec.from_dict(meta["device"]) == DeviceConfig().spec()
    assert meta["inputs"]["imu"] == {"dtype": "float32", "shape": ["batch", 6, 64]}
    assert meta["inputs"]["encoder"] == {"dtype": "float32", "shape": ["batch", 1, 64]}  # (B, E, W)
    assert meta["inputs"]["image"] == {"dtype": "uint8", "shape": ["batch", 1, 64, 64]}
    assert OnnxPolicy(small_model).spec == DeviceConfig().spec()


class _FirstEncoderOnly(nn.Module):
    """A v2 model's signature: the first encoder's window alone, (B, W)."""

    def forward(self, imu: torch.Tensor, encoder: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        volts = torch.clamp(encoder[:, -1:] * 1e-3 + imu[:, 0, -1:], -5.0, 5.0)
        return volts, torch.cat([volts, encoder[:, :1]], dim=-1)


def test_a_model_exported_before_every_encoder_was_an_input_still_runs(tmp_path) -> None:
    """sensorimotor.policy.v2 took encoder (B, W), the first encoder: it loads, and the loop's (1, E, W) windows
    reach it as that encoder's window."""
    dev = DeviceConfig()
    path = tmp_path / "v2.onnx"
    w = dev.imu.window
    torch.onnx.export(_FirstEncoderOnly(), (torch.zeros(1, 6, w), torch.zeros(1, w), torch.zeros(1, 1, 64, 64, dtype=torch.uint8)),
                      str(path), input_names=["imu", "encoder", "image"], output_names=["volts", "estimates"],
                      dynamic_axes={n: {0: "batch"} for n in ("imu", "encoder", "image", "volts", "estimates")},
                      dynamo=False, opset_version=17)  # fmt: skip
    model = onnx.load(str(path))
    meta = model.metadata_props.add()
    meta.key, meta.value = "sensorimotor", json.dumps({"format": "sensorimotor.policy.v2", "device": dev.spec().to_dict(),
                                                       "estimates": ["volts", "counts"]})  # fmt: skip
    onnx.save(model, str(path))
    policy = OnnxPolicy(path)
    raw = {k: v[:1] for k, v in _sensor_inputs(1).items()}
    assert raw["encoder"].shape == (1, 1, w)
    volts, est = policy.run(raw)
    with torch.no_grad():
        want, _ = _FirstEncoderOnly()(torch.from_numpy(raw["imu"]), torch.from_numpy(raw["encoder"][:, 0]),
                                      torch.from_numpy(raw["image"]))  # fmt: skip
    assert volts == pytest.approx(float(want[0, 0]), abs=1e-6) and est[1] == raw["encoder"][0, 0, 0]
