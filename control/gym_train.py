"""``sim train`` on any registered Gymnasium env with vector observations (``rl.env: Pendulum-v1``).

The same trainer, algorithms, checkpoints and export as the device pipeline, without perception,
so the trainer can be checked against published results (docs/results.md, Pendulum-v1 peer check).
The exported ONNX graph maps ``obs`` (B, n) float32 in the env's units to ``action`` (B, m) in
the env's units (or (B,) int64 for a Discrete action space): observation normalization, the
actor, SAC's squashing and the action scaling and clipping are all inside it. Evaluation runs that exported actor, deterministic, on fixed seeds.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import onnx
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.env_util import make_vec_env

from sensorimotor.configs.schema import ConfigError
from sensorimotor.control.algorithms import ALGORITHMS, algorithm
from sensorimotor.control.algos import DeterministicActor, find_vecnormalize
from sensorimotor.control.checkpoints import Checkpoint
from sensorimotor.control.config import ExperimentConfig, RLConfig
from sensorimotor.control.export import parity
from sensorimotor.control.plots import plot_training
from sensorimotor.control.trainer import EvalHook, curve_from_report, fit, prepare

GYM_FORMAT = "sensorimotor-gym-policy/1"


def check_spaces(rl: RLConfig) -> tuple[gym.spaces.Space, gym.spaces.Space]:
    """The env's spaces, or a ConfigError saying why ``sim train --env`` cannot train it."""
    try:
        env = gym.make(rl.env)
    except gym.error.Error as exc:  # e.g. DependencyNotInstalled: Box2D, MuJoCo
        raise ConfigError(f"rl.env: {rl.env} cannot be created here: {exc}") from None
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        shape = getattr(obs_space, "shape", None)
        raise ConfigError(
            f"rl.env: {rl.env} observes {obs_space} (shape {shape}), not a vector. sim train --env trains on vector "
            "observations; image observations need a perception model in front of the policy, which the device "
            "pipeline has: drop --env (rl.env: device) and describe the camera in the device and perception "
            "sections, or wrap the env so it emits a feature vector."
        )
    discrete = isinstance(act_space, gym.spaces.Discrete)
    if not (isinstance(act_space, gym.spaces.Box) or discrete):
        raise ConfigError(f"rl.env: {rl.env} has {act_space} actions; sim train handles Box and Discrete actions.")
    if discrete and not algorithm(rl.algo).discrete:
        able = ", ".join(name for name, a in ALGORITHMS.items() if a.discrete)
        raise ConfigError(
            f"rl.algo: {rl.algo} needs continuous actions and {rl.env} has {act_space}; use --algo {able}"
        )
    return obs_space, act_space


def rollouts(
    actor: torch.nn.Module, env_id: str, episodes: int, seed: int, keep: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Returns of ``episodes`` deterministic episodes (env seeds seed, seed+1, ...) and up to ``keep`` observations."""
    env = gym.make(env_id)
    returns: list[float] = []
    seen: list[np.ndarray] = []
    with torch.no_grad():
        for i in range(episodes):
            obs, _ = env.reset(seed=seed + i)
            total, done = 0.0, False
            while not done:
                o = np.asarray(obs, np.float32)[None]
                if len(seen) < keep:
                    seen.append(o[0])
                action = actor(torch.from_numpy(o)).numpy()[0]
                obs, reward, terminated, truncated, _ = env.step(action)
                total += float(reward)
                done = terminated or truncated
            returns.append(total)
    env.close()
    return np.asarray(returns), np.asarray(seen, np.float32)


def export(actor: torch.nn.Module, n_obs: int, path: Path, meta: dict[str, Any]) -> None:
    """``actor`` as an ONNX graph ``obs`` -> ``action`` with metadata (not a device model: ``hw run`` refuses it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            actor.eval(), (torch.zeros(1, n_obs),), str(path), input_names=["obs"], output_names=["action"],
            dynamic_axes={"obs": {0: "batch"}, "action": {0: "batch"}}, dynamo=False, opset_version=17,
        )  # fmt: skip
    model = onnx.load(str(path))
    prop = model.metadata_props.add()
    prop.key, prop.value = "sensorimotor", json.dumps({"format": GYM_FORMAT, **meta})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def run(
    cfg: ExperimentConfig, out: Path, preset: str | None, config_text: str | None, resume: Checkpoint | None,
    on_eval: EvalHook | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Train, evaluate, export and report on ``cfg.rl.env``; returns the report (also report.json)."""
    rl = cfg.rl
    obs_space, _ = check_spaces(rl)
    assert obs_space.shape is not None
    out.mkdir(parents=True, exist_ok=True)
    if config_text is not None:
        (out / "config.yaml").write_text(config_text)
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(1)
    t_start = time.time()
    previous = json.loads((out / "report.json").read_text()) if resume and (out / "report.json").is_file() else {}
    venv = make_vec_env(rl.env, n_envs=rl.n_envs, seed=cfg.seed)
    model = prepare(rl, venv, cfg.seed, resume)

    def actor_of(m: BaseAlgorithm) -> DeterministicActor:
        return DeterministicActor(m, find_vecnormalize(m.get_env())).eval()

    def periodic(m: BaseAlgorithm) -> dict[str, float]:
        returns, _ = rollouts(actor_of(m), rl.env, rl.eval_episodes, seed=cfg.seed + 30_000)
        return {"return": float(returns.mean())}

    curve = fit(model, rl, out, periodic, curve_from_report(previous), label=f"{rl.algo} on {rl.env}", on_eval=on_eval)
    actor = actor_of(model)
    ev = cfg.evaluation
    returns, seen = rollouts(actor, rl.env, ev.episodes, seed=cfg.seed + 20_000, keep=ev.parity_inputs)
    onnx_path = out / "policy.onnx"
    export(actor, int(obs_space.shape[0]), onnx_path, {"env": rl.env, "algo": rl.algo, "seed": cfg.seed})
    ort_diff, ref_diff = parity(actor, onnx_path, {"obs": seen}, names=("obs",))
    sb3_diff = _predict_gap(model, actor, seen)
    plot_training(curve, out / "training.png", f"{rl.algo.upper()} on {rl.env}")
    report = {
        "env": rl.env,
        "algo": rl.algo,
        "preset": preset,
        "seed": cfg.seed,
        "rl_timesteps": rl.total_timesteps,
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "episodes": len(returns),
        "onnx_parity_max_abs_diff": ort_diff,
        "onnx_reference_max_abs_diff": ref_diff,
        "onnx_parity_inputs": len(seen),
        "sb3_predict_max_abs_diff": sb3_diff,
        "rl_curve": curve.as_dict(),
        "resumed_from_steps": resume.steps if resume else None,
        "seconds_total": time.time() - t_start,
        "artifacts": {"model": str(onnx_path), "config": str(out / "config.yaml")},
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _predict_gap(model: BaseAlgorithm, actor: torch.nn.Module, obs: np.ndarray) -> float:
    """Max |SB3 predict(deterministic) - exported actor|: the graph computes what SB3 would do."""
    norm = find_vecnormalize(model.get_env())
    x = norm.normalize_obs(obs) if norm is not None else obs
    sb3, _ = model.predict(x, deterministic=True)
    with torch.no_grad():
        ours = actor(torch.from_numpy(obs)).numpy()
    return float(np.max(np.abs(np.asarray(sb3, np.float32) - ours)))
