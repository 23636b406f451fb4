"""``sim finetune``: fine-tune perception on labelled data, measure it, and optionally re-export a run's controller with it.

Starting point: a run's perception (``--from RUN``: its encoders and heads) or pretrained
encoders with new heads (``perception.init``). Labelled data: the simulated device (the
run's or the config's device; the test set is simulated from other seeds), or recorded logs
with a reference channel (``--logs``; a fifth of their episodes is held out as the test set,
:mod:`sensorimotor.perception.logs`).
With ``--from RUN``, ``--export`` writes ``OUT/policy.onnx``: the run's controller (its last
checkpoint) behind the fine-tuned perception, for ``hw run --model OUT/policy.onnx``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from sensorimotor.control.config import ExperimentConfig
from sensorimotor.control.export import PolicyChain, export_onnx, parity_by_output
from sensorimotor.control.plots import plot_perception
from sensorimotor.control.train import (
    labelled_data,
    observation_model,
    perception_model,
    read_perception,
    summary_line,
)
from sensorimotor.perception.data import SensorDataset
from sensorimotor.perception.models import Perception
from sensorimotor.perception.train import evaluate, finetune, init_encoders, phases, split


def starting_model(cfg: ExperimentConfig, source_run: Path | None) -> tuple[Perception, dict[str, Any]]:
    """``source_run``'s whole perception (weights only), or the configured pretrained encoders with new heads."""
    if source_run is None:
        model = perception_model(cfg)
        return model, init_encoders(model, cfg.perception.init)
    return read_perception(cfg, source_run), {"init": "run", "path": str(source_run / "perception.pt")}


def limit_labels(train: SensorDataset, labels: int | None) -> SensorDataset:
    """The first ``labels`` samples' worth of whole episodes (all when None)."""
    if labels is None or labels >= len(train):
        return train
    episodes = max(1, -(-labels // train.seq_len))
    return train.sequences(slice(0, episodes))


LOG_TEST_FRACTION = 0.2  # of the logs' episodes, held out as the test set


def labelled_sets(
    cfg: ExperimentConfig, logs: list[Path] | None, label: str
) -> tuple[SensorDataset, SensorDataset, SensorDataset, str]:
    """(train, validation, test, where they came from): simulated, or from logs with a reference channel."""
    pc = cfg.perception
    if logs:
        from sensorimotor.perception.logs import load_logs

        data = load_logs(logs, cfg.device.spec(), label)
        rest, test = split(data, LOG_TEST_FRACTION, cfg.seed + 1, pc.batch_size)
        return *split(rest, pc.val_fraction, cfg.seed, pc.batch_size), test, f"{len(logs)} log(s)"
    data = labelled_data(cfg, pc.train_samples, seed=cfg.seed + 500)
    test = labelled_data(cfg, pc.test_samples, seed=cfg.seed + 10_000)
    return *split(data, pc.val_fraction, cfg.seed, pc.batch_size), test, "simulated"


def run(
    cfg: ExperimentConfig, out: Path, *, source_run: Path | None = None, modality: str = "all",
    labels: int | None = None, export: bool = False, logs: list[Path] | None = None, label: str = "alpha",
    log: Any = print,
) -> dict[str, Any]:  # fmt: skip
    """The whole of ``sim finetune``; returns the metrics (also in OUT/metrics.json)."""
    pc = cfg.perception
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    model, source = starting_model(cfg, source_run)
    train, val, test, origin = labelled_sets(cfg, logs, label)  # before anything is written: bad logs lose nothing
    train = limit_labels(train, labels)
    out.mkdir(parents=True, exist_ok=True)
    log(f"data ({origin}): {len(train)} labelled training samples, {len(val)} validation, {len(test)} test")
    before = evaluate(model, test)
    pretrained = source["init"] != "scratch"
    result = finetune(model, train, val, pc, cfg.seed, modality=modality, pretrained=pretrained)
    after = evaluate(model, test)
    log("before: " + summary_line(before))
    log("after:  " + summary_line(after))
    torch.save(model.state_dict(), out / "perception.pt")
    plot_perception(model, test, result, out / "finetune.png")
    metrics: dict[str, Any] = {
        "modality": modality, "freeze": pc.freeze, "phases": phases(pc, pretrained), "labelled_samples": len(train),
        "start": source, "data": origin, "logs": [str(p) for p in logs or []],
        "test": after, "test_before": before, "best_step": result.best_step, "stopped_early": result.stopped_early,
        "steps_run": len(result.train), "validation_curve": result.val, "seconds": time.time() - t0,
    }  # fmt: skip
    if export:
        if source_run is None:
            raise ValueError("--export needs --from RUN (the controller comes from the run)")
        metrics["export"] = export_with(cfg, source_run, model, out / "policy.onnx")
        log(f"exported {out / 'policy.onnx'}: parity {metrics['export']['parity_volts']:.1e} V")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def export_with(cfg: ExperimentConfig, run: Path, perception: Perception, path: Path) -> dict[str, Any]:
    """``run``'s controller behind ``perception`` as one ONNX file; returns its parity against torch."""
    from sensorimotor.control.checkpoints import load_actor
    from sensorimotor.control.evaluate import evaluate as evaluate_policy
    from sensorimotor.control.evaluate import torch_policy

    for p in perception.parameters():
        p.requires_grad_(False)
    obs_model = observation_model(cfg, perception)
    actor = load_actor(run, cfg.rl)
    chain = PolicyChain(obs_model, actor, cfg.device.v_max, cfg.rl.observations, cfg.rl.history).eval()
    ev = evaluate_policy(torch_policy(chain), cfg.device, cfg.task, 8, None, seed=cfg.seed + 20_000, collect=1000)
    export_onnx(chain, cfg.device, path, {"finetuned_from": str(run), "eval_success_rate": ev.success_rate})
    (volts, estimates, *_), _ = parity_by_output(chain, path, ev.samples)
    return {"parity_volts": volts, "parity_estimates": estimates, "sim_success_rate_8_episodes": ev.success_rate}
