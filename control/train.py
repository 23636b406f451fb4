"""``sim train``: perception -> RL controller -> evaluation -> ONE ONNX model -> report.

Reads top to bottom: each stage is one function; ``run`` calls them in order and writes
everything to the output folder (policy.onnx, report.json, config.yaml, plots).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor
from tqdm import tqdm

from sensorimotor.control.config import ExperimentConfig
from sensorimotor.control.evaluate import EvalResult, evaluate, torch_policy
from sensorimotor.control.export import PolicyChain, export_onnx, latency_us, parity, sb3_actor
from sensorimotor.control.plots import plot_perception, plot_training
from sensorimotor.control.vec_env import PerceivedFurutaVecEnv
from sensorimotor.hardware.config import to_dict
from sensorimotor.perception.data import generate
from sensorimotor.perception.models import ObservationModel, Perception
from sensorimotor.perception.train import evaluate as evaluate_perception
from sensorimotor.perception.train import finetune, pretrain


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def log(msg: str) -> None:
    tqdm.write(f"[sim train] {msg}")


def train_perception(cfg: ExperimentConfig, out: Path) -> tuple[Perception, dict[str, Any]]:
    """Generate data, pretrain (self-supervised), fine-tune, evaluate on held-out data."""
    pc = cfg.perception
    t0 = time.time()
    train = generate(cfg.device, pc.train_samples, seed=cfg.seed)
    test = generate(cfg.device, pc.test_samples, seed=cfg.seed + 10_000)
    log(f"perception data: {len(train)} train / {len(test)} test samples in {time.time() - t0:.0f} s")
    model = Perception(cfg.device.imu.window, pc.dim, cfg.device.image_shape)
    pre_losses = pretrain(model, train, pc, cfg.seed)
    ft_losses = finetune(model, train, pc, cfg.seed)
    metrics = evaluate_perception(model, test)
    log("perception: " + ", ".join(f"{k}={v:.3g}" for k, v in metrics.items()))
    torch.save(model.state_dict(), out / "perception.pt")
    plot_perception(model, test, pre_losses, ft_losses, out / "perception.png")
    return model.eval(), {**metrics, "seconds": time.time() - t0}


class _Progress(BaseCallback):
    """tqdm bar plus the training curve (mean episode return and length per rollout)."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.bar = tqdm(total=total, desc="rl", unit="step", leave=False, mininterval=1.0)
        self.curve: list[dict[str, float]] = []
        self._returns: list[float] = []
        self._lengths: list[int] = []

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self._returns.append(info["episode"]["r"])
                self._lengths.append(info["episode"]["l"])
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_rollout_end(self) -> None:
        if self._returns:
            self.curve.append(
                {"timesteps": self.num_timesteps, "return": float(np.mean(self._returns)),
                 "length": float(np.mean(self._lengths))}
            )  # fmt: skip
            self.bar.set_postfix(ret=f"{self.curve[-1]['return']:.0f}", len=f"{self.curve[-1]['length']:.0f}")
            self._returns, self._lengths = [], []

    def _on_training_end(self) -> None:
        self.bar.close()


def _linear_decay(lr: float) -> Callable[[float], float]:
    """Learning rate falling linearly to 0 (SB3 passes the remaining progress, 1 -> 0).

    A decaying rate lets PPO settle: with a constant one the last update can land in a dip.
    """
    return lambda progress: lr * progress


def train_controller(cfg: ExperimentConfig, obs_model: ObservationModel, out: Path) -> tuple[PPO, list[dict]]:
    """PPO on the vectorized simulator with the perception model in the loop."""
    rl = cfg.rl
    torch.set_num_threads(1)  # small MLPs: extra threads only contend (and oversubscribe a 2-core box)
    device = dataclasses.replace(
        cfg.device, initial=dataclasses.replace(cfg.device.initial, angle_deg=rl.init_angle_deg)
    )
    env = VecMonitor(PerceivedFurutaVecEnv(device, cfg.task, obs_model, rl.n_envs, seed=cfg.seed + 1))
    model = PPO(
        "MlpPolicy", env, n_steps=rl.n_steps, batch_size=rl.batch_size, n_epochs=rl.n_epochs,
        learning_rate=_linear_decay(rl.learning_rate), gamma=rl.gamma, gae_lambda=rl.gae_lambda, clip_range=rl.clip_range,
        ent_coef=rl.ent_coef, seed=cfg.seed, device="cpu", verbose=0,
        policy_kwargs={"net_arch": {"pi": list(rl.net_arch), "vf": list(rl.net_arch)}, "log_std_init": rl.log_std_init},
    )  # fmt: skip
    progress = _Progress(rl.total_timesteps)
    t0 = time.time()
    model.learn(total_timesteps=rl.total_timesteps, callback=progress)
    log(f"rl: {rl.total_timesteps} steps in {time.time() - t0:.0f} s")
    model.save(out / "ppo.zip")
    return model, progress.curve


def run(cfg: ExperimentConfig, out: Path, preset: str | None = None, config_text: str | None = None) -> dict[str, Any]:
    """The whole pipeline; returns the report (also written to report.json).

    ``config_text``: the resolved config to write as ``config.yaml`` (it must load back to
    ``cfg``); by default the config alone, without presets.
    """
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    (out / "config.yaml").write_text(config_text or yaml.safe_dump(to_dict(cfg), sort_keys=False))
    t_start = time.time()

    perception, perception_metrics = train_perception(cfg, out)
    for p in perception.parameters():
        p.requires_grad_(False)
    obs_model = ObservationModel(perception, cfg.device.encoder_cpr, cfg.device.imu.rate_hz)
    ppo, curve = train_controller(cfg, obs_model, out)

    chain = PolicyChain(obs_model, sb3_actor(ppo.policy), cfg.device.v_max).eval()
    ev: EvalResult = evaluate(
        torch_policy(chain), cfg.device, cfg.task, cfg.evaluation.episodes, cfg.evaluation.episode_s or None,
        seed=cfg.seed + 20_000, collect=cfg.evaluation.parity_inputs,
    )  # fmt: skip
    log(
        f"evaluation ({cfg.task.name}): success {ev.success_rate:.0%} of {ev.episodes} episodes, "
        f"RMS alpha {ev.rms_alpha_deg:.2f} deg while balancing, arm past its limit in {ev.arm_limit_rate:.0%}"
    )

    onnx_path = out / "policy.onnx"
    export_onnx(
        chain, cfg.device, onnx_path, {"preset": preset, "seed": cfg.seed, "eval_success_rate": ev.success_rate}
    )
    max_diff = parity(chain, onnx_path, ev.samples)
    lat = latency_us(chain, onnx_path, ev.samples)
    log(f"onnx parity max |diff| {max_diff:.2e} over {len(ev.samples['imu'])} inputs; "
        f"latency ort {lat['onnxruntime_us_p50']:.0f} us vs torch {lat['torch_us_p50']:.0f} us")  # fmt: skip
    plot_training(curve, out / "training.png")

    report = {
        "preset": preset,
        "task": cfg.task.name,
        "seed": cfg.seed,
        "perception": perception_metrics,
        "imu_angle_rmse_deg": perception_metrics["imu_angle_rmse_deg"],
        "image_angle_rmse_deg": perception_metrics["image_angle_rmse_deg"],
        "classification_accuracy": perception_metrics["camera_class_accuracy"],
        "evaluation": ev.as_dict(),
        "eval_success_rate": ev.success_rate,
        "onnx_parity_max_abs_diff": max_diff,
        "onnx_parity_inputs": len(ev.samples["imu"]),
        "latency_batch1": lat,
        "rl_curve": curve,
        "rl_timesteps": cfg.rl.total_timesteps,
        "seconds_total": time.time() - t_start,
        "host": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
        "artifacts": {"model": str(onnx_path), "config": str(out / "config.yaml")},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
