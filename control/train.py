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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from tqdm import tqdm

from sensorimotor.configs.schema import to_dict
from sensorimotor.control.algos import DeterministicActor, find_vecnormalize
from sensorimotor.control.checkpoints import Checkpoint
from sensorimotor.control.config import DEVICE_ENV, ExperimentConfig, load_experiment
from sensorimotor.control.evaluate import EvalResult, evaluate, onnx_policy, torch_policy
from sensorimotor.control.export import PolicyChain, export_onnx, latency_us, parity_by_output
from sensorimotor.control.heldout import headline, known_verdicts, line, score_zoo
from sensorimotor.control.motions import swingup_scenarios
from sensorimotor.control.plots import plot_perception, plot_training
from sensorimotor.control.trainer import Curve, EvalHook, curve_from_report, fit, prepare
from sensorimotor.control.vec_env import PerceivedFurutaVecEnv
from sensorimotor.perception.data import SensorDataset, generate
from sensorimotor.perception.filter import FusedFilter, ImuFilter
from sensorimotor.perception.models import ObservationModel, Perception
from sensorimotor.perception.train import evaluate as evaluate_perception
from sensorimotor.perception.train import finetune, init_encoders, split
from sensorimotor.sim.config import DeviceConfig


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def log(msg: str) -> None:
    tqdm.write(f"[sim train] {msg}")


def train_perception(cfg: ExperimentConfig, out: Path) -> tuple[Perception, dict[str, Any]]:
    """Start from pretrained encoders (perception.init), fine-tune on simulated labels, evaluate on held-out data."""
    pc = cfg.perception
    t0 = time.time()
    data = labelled_data(cfg, pc.train_samples, seed=cfg.seed)
    test = labelled_data(cfg, pc.test_samples, seed=cfg.seed + 10_000)
    train, val = split(data, pc.val_fraction, cfg.seed, pc.batch_size)
    log(f"perception data: {len(train)} train / {len(val)} validation / {len(test)} test samples "
        f"in {time.time() - t0:.0f} s")  # fmt: skip
    model = perception_model(cfg)
    source = init_encoders(model, pc.init)
    log(f"encoders from {source.get('path', source['init'])}")
    result = finetune(model, train, val, pc, cfg.seed, pretrained=source["init"] != "scratch")
    metrics = evaluate_perception(model, test)
    log("perception: " + summary_line(metrics))
    torch.save(model.state_dict(), out / "perception.pt")
    plot_perception(model, test, result, out / "perception.png")
    return model.eval(), {**metrics, "encoders": source, "best_step": result.best_step, "seconds": time.time() - t0}


def summary_line(metrics: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.3g}" for k, v in metrics.items() if isinstance(v, float))


def labelled_data(cfg: ExperimentConfig, n: int, seed: int) -> SensorDataset:
    """Simulated labelled samples over the swing-up envelope, 50 ms apart within 20-sample episodes."""
    return generate(cfg.device, n, seed=seed, seq_len=20, every=5, scenarios=swingup_scenarios())


def make_chain(cfg: ExperimentConfig, obs_model: ObservationModel, model: BaseAlgorithm) -> PolicyChain:
    """Raw sensors -> volts: perception, the policy's observations, its deterministic actor."""
    actor = DeterministicActor(model, find_vecnormalize(model.get_env()))
    return PolicyChain(obs_model, actor, cfg.device.v_max, cfg.rl.observations, cfg.rl.history).eval()


def train_controller(
    cfg: ExperimentConfig, obs_model: ObservationModel, out: Path, resume: Checkpoint | None, curve: Curve,
    on_eval: EvalHook | None = None,
) -> tuple[BaseAlgorithm, Curve]:  # fmt: skip
    """PPO or SAC (rl.algo) on the vectorized simulator with the perception model in the loop."""
    rl = cfg.rl
    torch.set_num_threads(1)  # small MLPs: extra threads only contend (and oversubscribe a 2-core box)
    device = cfg.device
    if cfg.task.name == "balance":  # train wider than evaluated: the edge of the range is not the edge of experience
        device = dataclasses.replace(device, initial=dataclasses.replace(device.initial, angle_deg=rl.init_angle_deg))
    venv = PerceivedFurutaVecEnv(
        device, cfg.task, obs_model, rl.n_envs, seed=cfg.seed + 1, observations=rl.observations, history=rl.history
    )
    model = prepare(rl, venv, cfg.seed, resume)

    def periodic(m: BaseAlgorithm) -> dict[str, float]:
        ev = evaluate(torch_policy(make_chain(cfg, obs_model, m)), cfg.device, cfg.task, rl.eval_episodes, None,
                      seed=cfg.seed + 30_000)  # fmt: skip
        return {"success_rate": ev.success_rate, "arm_limit_rate": ev.arm_limit_rate}

    # The rollouts and the periodic evaluations read single frames: the mirror average doubles the image
    # encoder's cost in each of millions of steps (PPO ~1.4x slower) for a policy input a fraction of a degree
    # better. The policy so learns on a slightly noisier image estimate than it gets; the final evaluation, the
    # export and every command use the average (docs/perception.md, "Mirror averaging").
    at = round(rl.widen.at * rl.total_timesteps)
    widen = [WidenLater(venv, cfg.trained_device(), rl.widen.groups, at)] if rl.widen.active else []
    with obs_model.perception.single_frames():
        curve = fit(model, rl, out, periodic, curve, label=f"{rl.algo} ({cfg.task.name})", log=log, callbacks=widen,
                    on_eval=on_eval)  # fmt: skip
    return model, curve


class WidenLater(BaseCallback):
    """rl.widen: from step ``at`` on (at once when a resumed run is already past it), episodes draw the wider device."""

    def __init__(self, venv: PerceivedFurutaVecEnv, wider: DeviceConfig, groups: Sequence[str], at: int) -> None:
        super().__init__()
        self.venv, self.wider, self.groups, self.at, self.done = venv, wider, tuple(groups), at, False

    def _on_training_start(self) -> None:
        self._on_step()

    def _on_step(self) -> bool:
        if not self.done and self.num_timesteps >= self.at:
            self.venv.widen(self.wider)
            self.done = True
            r = self.wider.randomization
            spans = ", ".join(f"{g} 1/{1 + getattr(r, g):g}-{1 + getattr(r, g):g}x" for g in self.groups)
            log(f"from step {self.num_timesteps} on, training draws {spans} (rl.widen)")
        return True


def perception_model(cfg: ExperimentConfig) -> Perception:
    """A new perception network for ``cfg``'s device (random weights)."""
    return Perception(cfg.device.imu.window, cfg.perception.dim, cfg.device.image_shape, cfg.perception.mirror_average)


def read_perception(cfg: ExperimentConfig, run: Path) -> Perception:
    """``run``'s fine-tuned perception, RUN/perception.pt (weights only: nothing in the file is executed)."""
    model = perception_model(cfg)
    model.load_state_dict(torch.load(run / "perception.pt", map_location="cpu", weights_only=True))
    return model.eval()


def observation_model(cfg: ExperimentConfig, perception: Perception) -> ObservationModel:
    """The controller's view of the sensors: ``perception`` + the arm's encoder (+ the filters, if enabled)."""
    fc = cfg.perception.imu_filter
    dev = cfg.device
    filt = ImuFilter(fc, dev.imu.rate_hz, dev.stream_rate_hz) if fc.enabled else None
    fused = FusedFilter(fc, dev.imu.rate_hz, dev.stream_rate_hz) if fc.enabled and fc.fuse_image else None
    return ObservationModel(perception.eval(), dev.encoder_cpr, dev.imu.rate_hz, imu_filter=filt, fused_filter=fused)


def load_perception(cfg: ExperimentConfig, out: Path) -> tuple[Perception, dict[str, Any]]:
    """A resumed run's perception, re-measured on fresh test data."""
    model = read_perception(cfg, out)
    test = labelled_data(cfg, cfg.perception.test_samples, seed=cfg.seed + 10_000)
    metrics = evaluate_perception(model, test)
    log("perception (resumed): " + summary_line(metrics))
    return model, {**metrics, "seconds": 0.0}


def run(
    cfg: ExperimentConfig, out: Path, preset: str | None = None, config_text: str | None = None,
    resume: Checkpoint | None = None, adapted_from: Path | None = None, on_eval: EvalHook | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The whole pipeline; returns the report (also written to report.json).

    ``config_text``: the resolved config to write as ``config.yaml`` (it must load back to
    ``cfg``); by default the config alone, without presets. ``resume``: continue the
    controller's training from this checkpoint of ``out`` (perception is loaded, not retrained).
    ``adapted_from``: the run ``resume`` belongs to when it is not ``out`` (``sim train --from``):
    its perception is copied into ``out`` and its learning curve continued.
    ``on_eval``: told the steps and figures of each periodic evaluation (``sim sweep`` prunes on them).
    A config whose ``rl.env`` is a Gymnasium id goes to :func:`sensorimotor.control.gym_train.run`.
    """
    if cfg.rl.env != DEVICE_ENV:
        from sensorimotor.control.gym_train import run as run_gym

        return run_gym(cfg, out, preset, config_text, resume, on_eval)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    (out / "config.yaml").write_text(config_text or yaml.safe_dump(to_dict(cfg), sort_keys=False))
    t_start = time.time()

    source = adapted_from or out
    previous = json.loads((source / "report.json").read_text()) if resume and (source / "report.json").is_file() else {}
    perception, perception_metrics = load_perception(cfg, source) if resume else train_perception(cfg, out)
    if adapted_from is not None:
        torch.save(perception.state_dict(), out / "perception.pt")
    for p in perception.parameters():
        p.requires_grad_(False)
    obs_model = observation_model(cfg, perception)
    model, curve = train_controller(cfg, obs_model, out, resume, curve_from_report(previous), on_eval)

    chain = make_chain(cfg, obs_model, model)
    ev: EvalResult = evaluate(
        torch_policy(chain), cfg.device, cfg.task, cfg.evaluation.episodes, cfg.evaluation.episode_s or None,
        seed=cfg.seed + 20_000, collect=cfg.evaluation.parity_inputs,
    )  # fmt: skip
    log(
        f"evaluation ({cfg.task.name}): success {ev.success_rate:.1%} of {ev.episodes} episodes, "
        f"RMS alpha {ev.rms_alpha_deg:.2f} deg while balancing, arm past its limit in {ev.arm_limit_rate:.1%}"
    )
    fc = cfg.perception.imu_filter
    imu_kind, fused_kind = (
        ("filtered " if fc.enabled else "") + "IMU",
        ("filtered " if fc.enabled and fc.fuse_image else "") + "fused",
    )
    log(f"estimates along those episodes (closed loop, every control step): {imu_kind} angle RMSE "
        f"{ev.estimate_rmse_deg['imu']:.2f} deg, image {ev.estimate_rmse_deg['image']:.2f} deg (camera faults "
        f"included), {fused_kind} {ev.estimate_rmse_deg['fused']:.2f} deg")  # fmt: skip

    onnx_path = out / "policy.onnx"
    export_onnx(
        chain, cfg.device, onnx_path, {"preset": preset, "seed": cfg.seed, "eval_success_rate": ev.success_rate}
    )
    (volts_diff, est_diff, *state_diff), ref_by_output = parity_by_output(chain, onnx_path, ev.samples)
    max_diff, ref_diff = max(volts_diff, est_diff), max(ref_by_output)
    action_diff = max(volts_diff, ref_by_output[0]) / cfg.device.v_max  # the policy's own output, in [-1, 1]
    lat = latency_us(chain, onnx_path, ev.samples)
    log(f"onnx parity max |diff| {max_diff:.2e} (onnxruntime), {ref_diff:.2e} (onnx.reference) over "
        f"{len(ev.samples['imu'])} inputs (normalized action {action_diff:.1e}); "
        f"latency ort {lat['onnxruntime_us_p50']:.0f} us vs torch {lat['torch_us_p50']:.0f} us")  # fmt: skip
    # an adapted run is scored on its source run's zoo (the same devices, so the two reports compare), with
    # the source's feasibility verdicts: the oracle's answer depends on the device and the task only
    zoo_base = load_experiment(adapted_from / "config.yaml").device if adapted_from else None
    known = known_verdicts(adapted_from, previous) if adapted_from else None
    heldout = score_zoo(
        onnx_policy(onnx_path), cfg, cfg.evaluation.heldout_episodes, on_device=lambda row: log(line(row)),
        base=zoo_base, known=known,
    )  # fmt: skip
    log(headline(heldout))
    plot_training(curve, out / "training.png", f"{cfg.rl.algo.upper()} on {cfg.task.name} (perception in the loop)")

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
        **heldout,
        "algo": cfg.rl.algo,
        "onnx_parity_max_abs_diff": max_diff,
        "onnx_reference_max_abs_diff": ref_diff,
        "onnx_parity_volts_max_abs_diff": volts_diff,
        "onnx_parity_estimates_max_abs_diff": est_diff,
        "onnx_parity_action_max_abs_diff": action_diff,
        "onnx_parity_state_max_abs_diff": max(state_diff, default=None),
        "onnx_parity_inputs": len(ev.samples["imu"]),
        "latency_batch1": lat,
        "rl_curve": curve.as_dict(),
        "resumed_from_steps": resume.steps if resume else None,
        "adapted_from": str(adapted_from) if adapted_from else None,
        "rl_timesteps": cfg.rl.total_timesteps,
        "seconds_total": time.time() - t_start,
        "host": {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()},
        "artifacts": {"model": str(onnx_path), "config": str(out / "config.yaml")},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report
