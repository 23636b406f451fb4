"""Simulator throughput in control steps/s (10 physics substeps each), against Gymnasium's CartPole in the same run.

For N = 1, 16, 256, 1024 envs and three sensor sets — state only; + IMU and encoder
(with the host's observation window gathered every step); + the 64x64 camera — and the
references: CartPole-v1 (single env) and Gymnasium's own numpy ``CartPoleVectorEnv`` at
the same N. "Where the time goes" is the difference between consecutive sensor sets.
The MuJoCo backend's Qube (sim/mujoco_backend.py: physics and its IMU and encoder sensors,
two threads as the numba core's pool) is measured beside the numba core's IMU row, and the
two-wheeled balancer (sim/balancer.py, the batched MuJoCo device with its sensors) after it.
Best of 3 timed repeats (the machine is shared). ``python benchmarks/bench_sim.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
from gymnasium.envs.classic_control.cartpole import CartPoleVectorEnv

import sensorimotor.sim.envs  # noqa: F401  (registers the env)
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.envs import ENV_ID
from sensorimotor.sim.vector import FurutaVectorEnv

SIZES = (1, 16, 256, 1024)
MODES = {"state only": (False, False), "+ IMU, encoder": (True, False), "+ camera 64x64": (True, True)}
TARGET_S = 0.4  # seconds of stepping per measurement


def _rate(step: Callable[[], object], n: int) -> float:
    """Best of 3: env steps per second of ``step`` (which advances n envs)."""
    step()
    reps = 1
    while True:  # calibrate: enough repeats for ~TARGET_S
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        took = time.perf_counter() - t0
        if took > TARGET_S / 4:
            break
        reps *= 4
    reps = max(1, int(reps * TARGET_S / took))
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            step()
        best = max(best, reps * n / (time.perf_counter() - t0))
    return best


def core_rate(n: int, imu: bool, camera: bool) -> float:
    sim = FurutaSim(DeviceConfig(), n, seed=0, imu=imu, camera=camera)
    sim.reset()
    volts = np.zeros(n)

    def step() -> None:
        sim.step(volts)
        if imu:
            sim.observation()

    return _rate(step, n)


def mujoco_rate(n: int, threads: int = 2) -> float:
    """The Qube's MJCF (sim/mujoco_backend.py, friction on) in control steps/s: 10 MuJoCo RK4 steps each.

    One ``mujoco.rollout`` call advances the n trajectories 100 control steps, so its fixed
    cost is spread as a training rollout would spread it; sensors are computed (gyro,
    accelerometer, encoder), no camera.
    """
    from sensorimotor.sim.device import nominal_params
    from sensorimotor.sim.mujoco_backend import MujocoBatch, furuta_mjcf

    cfg = DeviceConfig()
    batch = MujocoBatch(furuta_mjcf(nominal_params(cfg), 1.0 / cfg.imu.rate_hz), threads=threads)
    states = batch.initial_states(np.tile([0.0, np.pi], (n, 1)), np.zeros((n, 2)))
    ctrl = np.zeros((n, 100 * cfg.substeps_per_control, 1))
    return 100 * _rate(lambda: batch.run(states, ctrl), n)


def balancer_rate(n: int, threads: int = 2) -> float:
    """The two-wheeled balancer (sim/balancer.py on sim/mujoco_device.py) in control steps/s.

    The whole device as a training env steps it: one ``mujoco.rollout`` per control step (10
    implicit steps with wheel-floor contacts), the actuator FIFO, IMU noise, encoder counts
    and the observation window gathered every step. Zero volts: the robots fall and lie on
    the floor, contacts and all.
    """
    from sensorimotor.sim.balancer import BalancerConfig, BalancerDevice
    from sensorimotor.sim.mujoco_device import MujocoDeviceSim

    sim = MujocoDeviceSim(BalancerDevice(BalancerConfig()), n=n, threads=threads)
    sim.reset()
    volts = np.zeros((n, 2))

    def step() -> None:
        sim.step(volts)
        sim.observation()

    return _rate(step, n)


def cartpole_single() -> float:
    env = gym.make("CartPole-v1")
    env.reset(seed=0)
    state = {"done": False}

    def step() -> None:
        if state["done"]:
            env.reset()
        _, _, term, trunc, _ = env.step(0)
        state["done"] = term or trunc

    return _rate(step, 1)


def cartpole_vector(n: int) -> float:
    env = CartPoleVectorEnv(num_envs=n)
    env.reset(seed=0)
    actions = np.zeros(n, np.int64)
    return _rate(lambda: env.step(actions), n)


def furuta_envs() -> dict[str, float]:
    """The registered envs through their APIs (what a training script sees)."""
    single = gym.make(ENV_ID, obs_mode="state")
    single.reset(seed=0)
    a = np.zeros(1, np.float32)
    state = {"done": False}

    def step() -> None:
        if state["done"]:
            single.reset()
        _, _, term, trunc, _ = single.step(a)
        state["done"] = term or trunc

    vec = FurutaVectorEnv(256, obs_mode="state")
    vec.reset(seed=0)
    actions = np.zeros((256, 1), np.float32)
    return {"gym_env_state": _rate(step, 1), "vector_env_state_256": _rate(lambda: vec.step(actions), 256)}


def run() -> dict[str, object]:
    ref_single = cartpole_single()
    print(f"reference: CartPole-v1 single env {ref_single:12,.0f} steps/s")
    out: dict[str, object] = {"cartpole_single": ref_single}
    header = f"{'':16}" + "".join(f"{f'N = {n}':>16}" for n in SIZES)
    print(header)
    ref_vec = {n: cartpole_vector(n) for n in SIZES}
    print(f"{'CartPoleVecEnv':16}" + "".join(f"{ref_vec[n]:16,.0f}" for n in SIZES))
    out["cartpole_vector"] = ref_vec
    rates: dict[str, dict[int, float]] = {}
    for name, (imu, camera) in MODES.items():
        rates[name] = {n: core_rate(n, imu, camera) for n in SIZES}
        print(f"{name:16}" + "".join(f"{rates[name][n]:16,.0f}" for n in SIZES))
        print(f"{'  vs CartPoleVec':16}" + "".join(f"{rates[name][n] / ref_vec[n]:15.2f}x" for n in SIZES))
        print(f"{'  vs CartPole-v1':16}" + "".join(f"{rates[name][n] / ref_single:15.1f}x" for n in SIZES))
    out["furuta"] = rates
    mj = {n: mujoco_rate(n) for n in SIZES}
    print(f"{'MuJoCo, sensors':16}" + "".join(f"{mj[n]:16,.0f}" for n in SIZES))
    print(f"{'  vs numba core':16}" + "".join(f"{mj[n] / rates['+ IMU, encoder'][n]:15.2f}x" for n in SIZES))
    out["mujoco"] = mj
    bal = {n: balancer_rate(n) for n in SIZES}
    print(f"{'balancer (MJCF)':16}" + "".join(f"{bal[n]:16,.0f}" for n in SIZES))
    print(f"{'  vs CartPoleVec':16}" + "".join(f"{bal[n] / ref_vec[n]:15.2f}x" for n in SIZES))
    out["balancer"] = bal
    print("where the time goes at N = 256 (us per env step):")
    us = {name: 1e6 / rates[name][256] for name in MODES}
    print(f"  physics (10 RK4 substeps, actuator FIFO)     {us['state only']:8.3f}")
    print(f"  IMU + encoder samples, noise, window gather  {us['+ IMU, encoder'] - us['state only']:8.3f}")
    print(f"  camera (renders when a frame is due)         {us['+ camera 64x64'] - us['+ IMU, encoder']:8.3f}")
    envs = furuta_envs()
    print(f"through the APIs, state obs: gym env {envs['gym_env_state']:,.0f} steps/s "
          f"({envs['gym_env_state'] / ref_single:.2f}x CartPole-v1); FurutaVectorEnv N = 256 "
          f"{envs['vector_env_state_256']:,.0f} steps/s ({envs['vector_env_state_256'] / ref_vec[256]:.2f}x "
          "CartPoleVecEnv)")  # fmt: skip
    out.update(envs)
    targets = {("state only", 256): 1e6, ("state only", 1): 5e4, ("+ IMU, encoder", 256): 3e5,
               ("+ camera 64x64", 256): 3e4}  # fmt: skip
    for (name, n), target in targets.items():
        got = rates[name][n]
        print(f"target {name} N = {n}: >= {target:,.0f}  got {got:,.0f}  {'met' if got >= target else 'MISSED'}")
    return out


if __name__ == "__main__":
    run()
