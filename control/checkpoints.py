"""Training checkpoints in a run folder, and the checks that make ``--resume`` safe.

Layout (``RUN/checkpoints/``)::

    rl_<steps>.zip        SB3's own archive (policy, optimizers, step count)
    vecnormalize.pkl      observation statistics (when rl.normalize_obs)
    replay_buffer.pkl     SAC's replay buffer (latest only: it can be large)
    latest.json           {"steps", "model", "algo", "env", "policy_kwargs", "observations"}

A run folder is resumable when ``latest.json`` names an archive that exists and its algorithm,
environment, policy architecture and observations equal the config's. Anything else is a
:class:`ResumeError` naming the mismatch, raised before anything in the folder is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.save_util import load_from_zip_file
from stable_baselines3.common.vec_env import VecNormalize

from sensorimotor.control.algos import DeterministicActor, policy_kwargs
from sensorimotor.control.config import RLConfig

CHECKPOINTS = "checkpoints"
LATEST = "latest.json"


class ResumeError(Exception):
    """A run folder cannot be resumed; the message says why and what to do."""


@dataclass(frozen=True)
class Checkpoint:
    """The checkpoint a run resumes from."""

    model: Path
    steps: int
    vecnormalize: Path | None
    replay_buffer: Path | None


def identity(rl: RLConfig) -> dict[str, Any]:
    """What must match between a checkpoint and the config that resumes it."""
    kwargs = policy_kwargs(rl)
    return {
        "algo": rl.algo, "env": rl.env, "net_arch": kwargs["net_arch"], "log_std_init": kwargs["log_std_init"],
        "observations": list(rl.observations), "normalize_obs": rl.normalize_obs, "history": rl.history,
    }  # fmt: skip


def save(model: BaseAlgorithm, rl: RLConfig, run: Path, normalizer: VecNormalize | None) -> Path:
    """Write a checkpoint at the model's current step count; returns the archive's path."""
    folder = run / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rl_{model.num_timesteps}.zip"
    model.save(path)
    extra: dict[str, str] = {}
    if normalizer is not None:
        normalizer.save(str(folder / "vecnormalize.pkl"))
        extra["vecnormalize"] = "vecnormalize.pkl"
    if hasattr(model, "save_replay_buffer"):
        model.save_replay_buffer(folder / "replay_buffer.pkl")
        extra["replay_buffer"] = "replay_buffer.pkl"
    meta = {"steps": model.num_timesteps, "model": path.name, **identity(rl), **extra}
    tmp = folder / (LATEST + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    tmp.replace(folder / LATEST)  # atomic: a crash mid-save leaves the previous checkpoint named
    return path


def find(run: Path, rl: RLConfig) -> Checkpoint:
    """The checkpoint to resume ``run`` from, checked against ``rl``; ResumeError otherwise."""
    latest = run / CHECKPOINTS / LATEST
    if not run.is_dir():
        raise ResumeError(f"{run} does not exist: nothing to resume (start a run with --out {run})")
    if not latest.is_file():
        raise ResumeError(
            f"{run} has no checkpoint ({latest} is missing): it was not trained by sim train with checkpoints, "
            "or it stopped before the first one; start it again without --resume"
        )
    try:
        meta = json.loads(latest.read_text())
        model = run / CHECKPOINTS / str(meta["model"])
        steps = int(meta["steps"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ResumeError(f"{latest} is malformed ({exc}); delete the checkpoints folder and start again") from None
    if not model.is_file():
        raise ResumeError(f"{latest} names {model.name}, which is missing from {model.parent}")
    want = identity(rl)
    saved_id = {"history": 0} | meta  # checkpoints written before rl.history had none
    diffs = [f"{k}: checkpoint {saved_id.get(k)!r}, config {v!r}" for k, v in want.items() if saved_id.get(k) != v]
    if not diffs:  # latest.json agrees; the archive itself must too (SB3 would rebuild its own architecture)
        try:
            data, _, _ = load_from_zip_file(model, device="cpu", load_data=True)
        except Exception as exc:
            raise ResumeError(f"{model} cannot be read ({type(exc).__name__}: {exc})") from None
        saved = (data or {}).get("policy_kwargs", {}).get("net_arch")
        if saved != want["net_arch"]:
            diffs.append(f"net_arch in the archive: {saved!r}, config {want['net_arch']!r}")
    if diffs:
        raise ResumeError(
            f"{model} does not fit this config: " + "; ".join(diffs)
            + ". Resume with the run's own config (drop the --set that changed it), or start a new run with --out"
        )  # fmt: skip
    folder = run / CHECKPOINTS
    vecnorm = folder / str(meta["vecnormalize"]) if meta.get("vecnormalize") else None
    replay = folder / str(meta["replay_buffer"]) if meta.get("replay_buffer") else None
    for extra in (vecnorm, replay):
        if extra is not None and not extra.is_file():
            raise ResumeError(f"{latest} names {extra.name}, which is missing from {folder}")
    return Checkpoint(model, steps, vecnorm, replay)


def load_actor(run: Path, rl: RLConfig) -> DeterministicActor:
    """The deterministic actor of ``run``'s last checkpoint, with its normalization statistics.

    Raises :class:`ResumeError` when the run has no usable checkpoint. The VecNormalize file is
    SB3's own pickle: a run folder is trusted like the model in it.
    """
    import pickle

    from sensorimotor.control.algorithms import algorithm

    ckpt = find(run, rl)
    model = algorithm(rl.algo).load_class().load(ckpt.model, device="cpu")
    normalizer = None
    if ckpt.vecnormalize is not None:
        with ckpt.vecnormalize.open("rb") as f:
            normalizer = pickle.load(f)
    return DeterministicActor(model, normalizer).eval()
