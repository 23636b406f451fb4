"""Inference cost: the exported chain at batch 1 (onnxruntime vs torch eager on the same inputs), and the
torch perception at an evaluation's batch, in chunks and with the frame cache against the whole batch.

    python benchmarks/bench_inference.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: the repo's benchmarks package

from benchmarks.common import median_s, report
from sensorimotor.control.export import PolicyChain, export_onnx
from sensorimotor.hardware.model import OnnxPolicy
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import INFERENCE_CHUNK, FrameCache, ObservationModel, Perception
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
    out.update(evaluation_batch(dev))
    return out


def evaluation_batch(dev: DeviceConfig, n: int = 500, steps: int = 40, rounds: int = 3) -> dict[str, dict[str, float]]:
    """One control step of ``n`` simulated episodes through the perception (mirror average on), one thread.

    The reference is the whole batch in one pass, as before the chunking and the frame cache
    (perception/models.py). The three ways take turns on each of ``steps`` consecutive steps of one
    simulated batch (whose camera holds about half the frames from one step to the next), so a
    load that comes and goes on a shared machine falls on all three alike; medians over the steps.
    """
    model = Perception(dev.imu.window).eval()
    sim = FurutaSim(dev, n, seed=0)
    sim.reset()
    batches = []
    for _ in range(steps):
        sim.step(0.5 * dev.v_max * (sim.state[:, 1] > 0).astype(float))
        batches.append({k: torch.from_numpy(v.copy()) for k, v in sim.observation().items()})
    cache = FrameCache()

    def whole(b: dict[str, torch.Tensor]) -> None:
        model.imu_encoder.chunk = model.image_encoder.chunk = 10**9  # the whole batch in one pass
        try:
            model(b["imu"], b["image"])
        finally:
            model.imu_encoder.chunk = model.image_encoder.chunk = INFERENCE_CHUNK

    def chunked(b: dict[str, torch.Tensor]) -> None:
        model(b["imu"], b["image"])

    def cached(b: dict[str, torch.Tensor]) -> None:
        with model.cached(cache):
            model(b["imu"], b["image"])

    ways = {"whole": whole, "chunked": chunked, "cached": cached}
    times: dict[str, list[float]] = {k: [] for k in ways}
    with torch.no_grad():
        for r in range(rounds + 1):
            for b in batches:
                for k, fn in ways.items():
                    t0 = time.perf_counter()
                    fn(b)
                    if r:  # the first round warms up (and fills the cache)
                        times[k].append(time.perf_counter() - t0)
    t_whole, t_chunked, t_cached = (float(np.median(times[k])) for k in ways)
    return {
        "eval_batch_chunked": report(f"perception, {n} episodes, in chunks (torch)", t_chunked, t_whole, "one pass"),
        "eval_batch_cached": report(f"perception, {n} episodes, chunks + frame cache", t_cached, t_whole, "one pass"),
    }


if __name__ == "__main__":
    run()
