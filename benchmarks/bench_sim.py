"""Simulator throughput: batched numpy core vs the single Gymnasium env, control steps per second."""

from __future__ import annotations

import time

import numpy as np

from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.envs import make_env


def steps_per_s(n: int, steps: int = 30) -> float:
    sim = FurutaSim(DeviceConfig(), n, seed=0)
    sim.reset()
    v = np.zeros(n)
    t0 = time.perf_counter()
    for _ in range(steps):
        sim.step(v)
    return n * steps / (time.perf_counter() - t0)


def run() -> dict[str, float]:
    env = make_env()
    env.reset(seed=0)
    a = np.zeros(1, np.float32)
    t0 = time.perf_counter()
    for _ in range(100):
        env.step(a)
    gym_rate = 100 / (time.perf_counter() - t0)
    print(f"{'gymnasium env, 1 pendulum':<48} {gym_rate:10.0f} control steps/s (reference)")
    out = {"gym_single": gym_rate}
    for n in (16, 256):
        r = steps_per_s(n)
        print(f"{f'batched core, {n} pendulums':<48} {r:10.0f} control steps/s   {r / gym_rate:6.1f}x the reference")
        out[f"batched_{n}"] = r
    return out


if __name__ == "__main__":
    run()
