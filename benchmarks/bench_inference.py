"""Batch-1 latency of the exported chain: onnxruntime vs torch eager on the same inputs."""

from __future__ import annotations

import torch
from torch import nn

from benchmarks.common import median_s, report
from sensorimotor.control.export import PolicyChain, export_onnx
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.perception.models import OBS_NAMES, ObservationModel, Perception
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim


def run(tmpdir: str = "/tmp") -> dict[str, dict[str, float]]:
    torch.manual_seed(0)
    torch.set_num_threads(1)
    dev = DeviceConfig()
    obs = ObservationModel(Perception(dev.imu.window), dev.encoder_cpr, dev.imu.rate_hz)
    chain = PolicyChain(
        obs,
        nn.Sequential(nn.Linear(len(OBS_NAMES), 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1)),
        dev.v_max,
    ).eval()
    path = f"{tmpdir}/bench_policy.onnx"
    export_onnx(chain, dev, path)  # type: ignore[arg-type]
    sim = FurutaSim(dev, 1, seed=0)
    sim.reset()
    raw = sim.observation()
    policy = OnnxPolicy(path)
    t_in = tuple(torch.from_numpy(raw[k]) for k in ("imu", "encoder", "image"))
    with torch.no_grad():
        t_torch = median_s(lambda: chain(*t_in), 300)
    out = {
        "chain": report(
            "full chain (IMU CNN + image CNN + MLP), onnxruntime",
            median_s(lambda: policy.run(raw), 300),
            t_torch,
            "torch eager",
        )
    }
    return out


if __name__ == "__main__":
    run()
