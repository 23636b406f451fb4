"""Train a MuJoCo-described device end to end: IMU targets -> PPO through them -> evaluation -> ONE ONNX model.

The device-generic pipeline the balancer trains with (sim/balancer.py): nothing here names a
device's state. The device supplies its simulator (:class:`~sensorimotor.sim.mujoco_device.MjcfDevice`),
its perception targets and an exploring controller for their labelled windows, and its
task; this module fine-tunes the shipped IMU encoder on those targets, trains the
controller with the same trainer as ``sim train`` (control/trainer.py) on the simulator
seen through :class:`~sensorimotor.perception.device_observation.DeviceObservation`,
scores it on randomized episodes, and exports raw sensors -> commands as one ONNX file
with the device's spec in its metadata, checked against torch with onnxruntime.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn
from tqdm import tqdm

from sensorimotor.configs.schema import ConfigError, build, resolve, to_dict
from sensorimotor.control.algorithms import with_defaults
from sensorimotor.control.algos import DeterministicActor, find_vecnormalize
from sensorimotor.control.config import EvalConfig, RLConfig
from sensorimotor.control.device_env import PerceivedDeviceVecEnv
from sensorimotor.control.export import export_onnx, parity_by_output
from sensorimotor.control.trainer import fit, prepare
from sensorimotor.perception.config import PerceptionConfig
from sensorimotor.perception.device_observation import DeviceObservation
from sensorimotor.perception.imu_targets import ImuEstimator, Target, finetune, rms_errors, simulate_windows
from sensorimotor.sim.config import DeviceSection, load_device
from sensorimotor.sim.mujoco_device import MjcfDevice, MujocoDeviceSim

Array = np.ndarray


@dataclass(frozen=True)
class DevicePlan:
    """What a device brings to training: its config, simulator, perception targets, explorer and task."""

    config: DeviceSection
    device: MjcfDevice
    targets: tuple[Target, ...]
    explorer: Callable[[MujocoDeviceSim, int], Any]  # (sim, seed) -> callable driver with .fallen()
    task: Any  # reward(state, action), failed, upright, success(upright_throughout, final), measures, why_failed
    episode_s: float
    channels: tuple[str, ...]
    encoders: tuple[str, ...]
    cpr: tuple[int, ...]
    imu_rate_hz: int
    stream_rate_hz: int
    v_max: float

    @staticmethod
    def of(cfg: Any, task: Any) -> DevicePlan:
        """The plan of a device config that offers ``mjcf_device``, ``perception_targets``, ``explorer`` and
        ``make_task`` (sim/balancer.py's BalancerConfig), with its task section ``task``."""
        spec = cfg.spec()
        return DevicePlan(
            config=cfg, device=cfg.mjcf_device(), targets=tuple(Target(*t) for t in cfg.perception_targets()),
            explorer=cfg.explorer, task=cfg.make_task(task), episode_s=task.episode_s,
            channels=tuple(c.name for c in spec.imu_channels), encoders=tuple(e.name for e in spec.encoders),
            cpr=tuple(e.cpr for e in spec.encoders),
            imu_rate_hz=spec.imu_rate_hz, stream_rate_hz=spec.stream_rate_hz, v_max=cfg.v_max,
        )  # fmt: skip


class DeviceChain(nn.Module):
    """imu, encoder -> (commands (B, nu) in volts, the observation vector): the exported graph."""

    input_names = ("imu", "encoder")

    def __init__(self, obs_model: DeviceObservation, actor: nn.Module, v_max: float) -> None:
        super().__init__()
        self.obs_model, self.actor, self.v_max = obs_model, actor, float(v_max)

    def forward(self, imu: torch.Tensor, encoder: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        obs = self.obs_model(imu, encoder)
        return torch.clamp(self.actor(obs), -1.0, 1.0) * self.v_max, obs


@dataclass(frozen=True)
class DeviceRun:
    """What ``sim train`` reads from a config whose device trains here: the device, its task, the controller's
    training, and three figures of the Furuta's sections (perception.train_samples, perception.finetune_steps,
    evaluation.episodes); the rest of those sections is the Furuta pipeline's."""

    plan: DevicePlan
    rl: RLConfig
    seed: int
    windows: int
    perception_steps: int
    eval_episodes: int
    config_text: str  # config.yaml: the sections read, resolved, loadable with --config


def load_run(source: Path, preset: str | None, overrides: Sequence[str], out: Path) -> DeviceRun:
    """The run a config describes for a device that trains here (ConfigError naming the field otherwise)."""
    data, where = resolve(source, preset, overrides)
    device, task = load_device(source, overrides, preset)
    if not all(hasattr(device, m) for m in ("mjcf_device", "perception_targets", "explorer", "make_task")):
        raise ConfigError(f"{where}: device.type: {device.type_name!r} trains in neither pipeline (a device trains "
                          "here through mjcf_device(), perception_targets(), explorer() and make_task(): "
                          "docs/adding-a-device.md)")  # fmt: skip
    rl = build(RLConfig, with_defaults(data.get("rl") or {}), source=where, prefix="rl")
    perception = build(PerceptionConfig, data.get("perception") or {}, source=where, prefix="perception")
    evaluation = build(EvalConfig, data.get("evaluation") or {}, source=where, prefix="evaluation")
    seed = data.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise ConfigError(f"{where}: seed: {seed!r} (allowed: an integer in [0, 2^31))")
    provenance = (f"Resolved by `sim train` from {source}" + (f", preset {preset}" if preset else "")
                  + "".join(f", --set {o}" for o in overrides)
                  + f".\nLoads back as it is: sim train --config {out / 'config.yaml'} reproduces this run.")  # fmt: skip
    resolved = {"seed": seed, "device": to_dict(device), "task": to_dict(task), "rl": to_dict(rl),
                "perception": {"train_samples": perception.train_samples,
                               "finetune_steps": perception.finetune_steps},
                "evaluation": {"episodes": evaluation.episodes}}  # fmt: skip
    text = "".join(f"# {line}\n" for line in provenance.splitlines()) + yaml.safe_dump(resolved, sort_keys=False)
    return DeviceRun(DevicePlan.of(device, task), rl, seed, perception.train_samples, perception.finetune_steps,
                     evaluation.episodes, text)  # fmt: skip


def export_chain(plan: DevicePlan, chain: DeviceChain, path: Path) -> None:
    """``chain`` as one ONNX file: raw sensors in, commands and the named observation out, the spec in its metadata."""
    meta: dict[str, Any] = {"trained_by": "sensorimotor.control.device_train"}
    tilt = plan.config.tilt_target()
    if tilt is not None:
        meta["tilt_estimate"] = tilt  # hw run's fall stop watches it (hardware/safety.py)
    export_onnx(chain, plan.config, path, meta,
                inputs=DeviceChain.input_names, estimates=chain.obs_model.names, states=[])  # fmt: skip


def log(msg: str) -> None:
    tqdm.write(f"[device train] {msg}")


def windows(plan: DevicePlan, n: int, seed: int, envs: int = 64) -> Any:
    sim = MujocoDeviceSim(plan.device, envs, seed)
    explorer = plan.explorer(sim, seed)
    names = plan.device.state_names
    columns = [names.index(t.name) for t in plan.targets]
    return simulate_windows(sim, explorer, columns, n, every=5, restart=explorer.fallen, progress=True)


def train_perception(plan: DevicePlan, seed: int, n_train: int, steps: int) -> tuple[ImuEstimator, dict[str, Any]]:
    """The shipped IMU encoder fine-tuned on the device's targets; RMS errors on windows of other seeds."""
    t0 = time.time()
    data = windows(plan, n_train, seed)
    train, val = data.split(0.1, seed)
    test = windows(plan, max(1024, n_train // 5), seed + 10_000)
    torch.manual_seed(seed)  # before the head is built: its initial weights are the seed's
    est = ImuEstimator(plan.targets, window=plan.device.window)
    meta = est.load_shipped()
    finetune(est, train, val, steps, seed=seed, progress=True)
    errors = rms_errors(est, test)
    log("perception RMS: " + ", ".join(f"{k} {v:.2f}" for k, v in errors.items()) + " (deg, deg/s)")
    return est, {"rms": errors, "windows": len(data), "steps": steps, "encoders_objective": meta.get("objective"),
                 "seconds": time.time() - t0}  # fmt: skip


@torch.no_grad()
def evaluate(plan: DevicePlan, chain: DeviceChain, episodes: int, seed: int) -> dict[str, Any]:
    """``episodes`` randomized episodes of ``episode_s`` through the chain: success rate, upright rate, and the
    task's measures at the end (median, 90th percentile, worst)."""
    sim = MujocoDeviceSim(plan.device, episodes, seed)
    sim.reset()
    up = np.ones(episodes, bool)
    for _ in range(round(plan.episode_s * plan.stream_rate_hz)):
        raw = sim.observation()
        volts, _ = chain(torch.from_numpy(raw["imu"]), torch.from_numpy(raw["encoder"]))
        sim.step(volts.numpy().astype(np.float64))
        up &= plan.task.upright(sim.state)
    success = plan.task.success(up, sim.state)
    return {"episodes": episodes, "success_rate": float(success.mean()), "upright_rate": float(up.mean()),
            "final": {name: [float(x) for x in np.percentile(v, [50, 90, 100])]
                      for name, v in plan.task.measures(sim.state).items()}}  # fmt: skip


def run(plan: DevicePlan, rl: RLConfig, out: Path, seed: int = 0, perception_windows: int = 20_000,
        perception_steps: int = 1500, eval_episodes: int = 500, config_text: str | None = None,
        ) -> dict[str, Any]:  # fmt: skip
    """Perception, controller, evaluation, export and parity; writes policy.onnx and report.json to ``out`` (and
    ``config_text`` as config.yaml)."""
    out.mkdir(parents=True, exist_ok=True)
    if config_text is not None:
        (out / "config.yaml").write_text(config_text)
    t0 = time.time()
    torch.set_num_threads(1)
    est, perception = train_perception(plan, seed, perception_windows, perception_steps)
    obs_model = DeviceObservation(est, plan.channels, plan.encoders, plan.cpr, plan.imu_rate_hz,
                                  derived=plan.config.derived_observations()).eval()  # fmt: skip
    for p in obs_model.parameters():
        p.requires_grad_(False)
    sim = MujocoDeviceSim(plan.device, rl.n_envs, seed + 1)
    steps = round(plan.episode_s * plan.stream_rate_hz)
    venv = PerceivedDeviceVecEnv(sim, plan.task, obs_model, len(obs_model.names), plan.v_max, steps)
    model = prepare(rl, venv, seed)
    t1 = time.time()
    fit(model, rl, out, label=rl.algo, log=log)
    train_s = time.time() - t1
    chain = DeviceChain(obs_model, DeterministicActor(model, find_vecnormalize(model.get_env())), plan.v_max).eval()
    ev = evaluate(plan, chain, eval_episodes, seed + 20_000)
    log(f"evaluation: success {ev['success_rate']:.1%} of {eval_episodes}, upright {ev['upright_rate']:.1%}")
    path = out / "policy.onnx"
    export_chain(plan, chain, path)
    probe = MujocoDeviceSim(plan.device, 64, seed + 30_000)
    probe.reset()
    for _ in range(20):
        probe.step(np.zeros((64, probe.nu)))
    raw = probe.observation()
    parity = parity_by_output(chain, path, {"imu": raw["imu"], "encoder": raw["encoder"]}, chain.input_names)
    log(f"ONNX parity (max |onnxruntime - torch|): {parity}")
    report = {"device": plan.config.type_name, "seed": seed, "perception": perception, "eval": ev,
              "parity": parity, "train_seconds": train_s, "seconds": time.time() - t0,
              "timesteps": int(model.num_timesteps), "observations": list(obs_model.names)}  # fmt: skip
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
