"""The RL training loop shared by every environment: progress, curve, periodic evaluation, checkpoints, resume.

:func:`fit` trains a model to ``rl.total_timesteps`` (continuing from its current step count
when resumed) with one callback that

* shows a progress bar with the recent mean episode return and the last evaluation's score;
* records the learning curve (mean return and episode length every ``curve_every`` steps);
* every ``rl.eval_every`` steps runs ``evaluate_fn`` (the deterministic policy on fixed seeds)
  and logs its figures to TensorBoard (``RUN/tensorboard``) and the curve;
* every ``rl.checkpoint_every`` steps, and at the end, writes a checkpoint
  (:mod:`sensorimotor.control.checkpoints`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecEnv, VecMonitor, VecNormalize
from tqdm import tqdm

from sensorimotor.control import checkpoints
from sensorimotor.control.algorithms import algorithm
from sensorimotor.control.algos import build_model, find_vecnormalize
from sensorimotor.control.config import RLConfig

EvalFn = Callable[[BaseAlgorithm], dict[str, float]]  # model -> figures, e.g. {"success_rate": .9, "return": 700}
EvalHook = Callable[
    [int, dict[str, float]], None
]  # (steps so far, the periodic evaluation's figures), e.g. sim sweep's


@dataclass
class Curve:
    """The learning curve: training episodes (``train``) and periodic evaluations (``eval``)."""

    train: list[dict[str, float]] = field(default_factory=list)
    eval: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, list[dict[str, float]]]:
        return {"train": self.train, "eval": self.eval}


def _score(figures: dict[str, float]) -> str:
    if "success_rate" in figures:
        return f"{figures['success_rate']:.0%}"
    return f"{figures.get('return', float('nan')):.0f}"


class _Monitor(BaseCallback):
    def __init__(
        self, rl: RLConfig, run: Path, evaluate_fn: EvalFn | None, curve: Curve, curve_every: int, label: str,
        on_eval: EvalHook | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.on_eval = on_eval
        self.rl, self.run, self.evaluate_fn, self.curve = rl, run, evaluate_fn, curve
        self.curve_every = max(1, curve_every)
        self.label = label
        self._returns: list[float] = []
        self._lengths: list[float] = []
        self._next_curve = self._next_eval = self._next_ckpt = 0
        self.bar: tqdm | None = None

    def _on_training_start(self) -> None:
        n = self.num_timesteps
        self.bar = tqdm(total=self.rl.total_timesteps, initial=n, desc=self.label, unit="step", leave=False,
                        mininterval=1.0, dynamic_ncols=True)  # fmt: skip
        self._next_curve = n + self.curve_every
        self._next_eval = n + self.rl.eval_every if self.rl.eval_every else -1
        self._next_ckpt = n + self.rl.checkpoint_every if self.rl.checkpoint_every else -1

    def _on_step(self) -> bool:
        for info in self.locals["infos"]:
            if "episode" in info:
                self._returns.append(float(info["episode"]["r"]))
                self._lengths.append(float(info["episode"]["l"]))
        assert self.bar is not None
        self.bar.update(self.training_env.num_envs)
        n = self.num_timesteps
        if n >= self._next_curve and self._returns:
            point = {"timesteps": n, "return": float(np.mean(self._returns)), "length": float(np.mean(self._lengths))}
            self.curve.train.append(point)
            self._returns, self._lengths = [], []
            self._next_curve = n + self.curve_every
            self.bar.set_postfix_str(self._postfix(), refresh=False)
        if self._next_eval > 0 and n >= self._next_eval:
            self.run_eval()
            self._next_eval = n + self.rl.eval_every
        if self._next_ckpt > 0 and n >= self._next_ckpt:
            checkpoints.save(self.model, self.rl, self.run, find_vecnormalize(self.model.get_env()))
            self._next_ckpt = n + self.rl.checkpoint_every
        return True

    def _postfix(self) -> str:
        parts = []
        if self.curve.train:
            parts.append(f"return {self.curve.train[-1]['return']:.0f}")
        if self.curve.eval:
            parts.append(f"eval {_score(self.curve.eval[-1])}")
        return ", ".join(parts)

    def run_eval(self) -> dict[str, float]:
        if self.evaluate_fn is None:
            return {}
        figures = self.evaluate_fn(self.model)
        self.curve.eval.append({"timesteps": self.num_timesteps, **figures})
        for k, v in figures.items():
            self.logger.record(f"eval/{k}", v)
        self.logger.dump(self.num_timesteps)
        if self.bar is not None:
            self.bar.set_postfix_str(self._postfix())
        if self.on_eval is not None:
            self.on_eval(self.num_timesteps, figures)
        return figures

    def _on_training_end(self) -> None:
        if self.bar is not None:
            self.bar.close()


def prepare(rl: RLConfig, venv: VecEnv, seed: int, resume: checkpoints.Checkpoint | None = None) -> BaseAlgorithm:
    """The model to train on ``venv``: fresh from the config, or restored from ``resume``.

    ``venv`` is wrapped in VecMonitor (episode returns) and, when the config asks for it,
    VecNormalize (restored with the checkpoint's statistics on resume).
    """
    monitored = isinstance(venv, VecMonitor) or any(venv.env_is_wrapped(Monitor))  # make_vec_env adds Monitor
    env: VecEnv = venv if monitored else VecMonitor(venv)
    entry = algorithm(rl.algo)
    norm_reward = entry.normalize_reward(getattr(rl, rl.algo))
    if rl.normalize_obs or norm_reward:
        if resume is not None and resume.vecnormalize is not None:
            env = VecNormalize.load(str(resume.vecnormalize), env)
        else:
            env = VecNormalize(env, norm_obs=rl.normalize_obs, norm_reward=norm_reward, gamma=rl.gamma)
    if resume is None:
        return build_model(rl, env, seed)
    model = entry.load_class().load(resume.model, env=env, device="cpu")
    if resume.replay_buffer is not None and hasattr(model, "load_replay_buffer"):
        model.load_replay_buffer(resume.replay_buffer)
    return model


def fit(
    model: BaseAlgorithm, rl: RLConfig, run: Path, evaluate_fn: EvalFn | None = None, curve: Curve | None = None,
    label: str = "rl", log: Callable[[str], None] = print, callbacks: Sequence[BaseCallback] = (),
    on_eval: EvalHook | None = None,
) -> Curve:  # fmt: skip
    """Train ``model`` up to ``rl.total_timesteps`` steps in all; checkpoint at the end. Returns the curve.

    ``callbacks`` run after the progress/evaluation/checkpoint one at every step; ``on_eval`` is told each
    periodic evaluation's figures.
    """
    curve = curve or Curve()
    done = model.num_timesteps
    model.set_logger(configure(str(run / "tensorboard"), ["tensorboard"]))  # no stray SB3 folders in /tmp
    monitor = _Monitor(rl, run, evaluate_fn, curve, max(rl.total_timesteps // 200, 1), label, on_eval)
    t0 = time.time()
    remaining = rl.total_timesteps - done
    if remaining > 0:
        # reset_num_timesteps=False: a resumed run continues its step count, schedules and TensorBoard run
        model.learn(total_timesteps=remaining, callback=[monitor, *callbacks], reset_num_timesteps=done == 0)
    log(f"{rl.algo}: {max(remaining, 0)} steps in {time.time() - t0:.0f} s (now {model.num_timesteps} in all)")
    checkpoints.save(model, rl, run, find_vecnormalize(model.get_env()))
    return curve


def curve_from_report(report: dict[str, Any]) -> Curve:
    """The curve of an earlier (resumed) run, so the plot covers the whole training."""
    raw = report.get("rl_curve") or {}
    if isinstance(raw, dict):
        return Curve(list(raw.get("train", [])), list(raw.get("eval", [])))
    return Curve()
