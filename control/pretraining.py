"""``sim pretrain``: simulate an unlabelled corpus, pretrain both encoders (and the IMU and fused heads), write them.

The corpus comes from the device randomized wider than training (``pretrain.randomization_scale``)
and driven through swing-up, pumping, rotations, balance and random motion
(:mod:`sensorimotor.control.motions`). The grade is a linear probe on held-out labelled data
from the nominal randomization, before and after pretraining. ``--ship`` also writes the
result to the project's shipped weights (``perception/pretrained/encoders.pt``), whose model card
``docs/model-card.md`` is generated from the file's metadata (``make docs``).
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from sensorimotor.configs.schema import to_dict
from sensorimotor.control.config import ExperimentConfig
from sensorimotor.control.motions import swingup_scenarios
from sensorimotor.perception.data import generate
from sensorimotor.perception.models import Perception
from sensorimotor.perception.pretrain import corpus_device, pretrains_heads, run_pretraining
from sensorimotor.perception.weights import HEADS, SHIPPED, save_encoders, sha256

PROBE_SEQ_LEN, PROBE_EVERY = 20, 5  # probe samples: 50 ms apart, so they are not near-duplicates


def run(cfg: ExperimentConfig, out: Path, command: str, ship: bool = False, log: Any = print) -> dict[str, Any]:
    """The whole of ``sim pretrain``; returns the metadata also stored in the weights file and pretrain.json."""
    pc = cfg.pretrain
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    device = corpus_device(cfg.device, pc.randomization_scale, pc.sensor_scale)
    corpus = generate(device, pc.corpus_samples, seed=cfg.seed, seq_len=pc.seq_len, every=1,
                      scenarios=swingup_scenarios(), progress=True)  # fmt: skip
    probe = generate(cfg.device, pc.probe_samples, seed=cfg.seed + 7_000, seq_len=PROBE_SEQ_LEN, every=PROBE_EVERY,
                     scenarios=swingup_scenarios(), clean=False)  # fmt: skip
    log(f"corpus: {len(corpus)} unlabelled samples, probe: {len(probe)} labelled, in {time.time() - t0:.0f} s")
    model = Perception(cfg.device.imu.window, cfg.perception.dim, cfg.device.image_shape)
    curves, quality = run_pretraining(model, corpus, probe, pc, cfg.device, cfg.seed)
    meta: dict[str, Any] = {
        "command": command,
        "objective": {"imu": pc.imu_objective, "image": "denoise"},
        "pretrain": to_dict(pc),
        "seed": cfg.seed,
        "architecture": {
            "dim": cfg.perception.dim,
            "imu_window": cfg.device.imu.window,
            "image_shape": list(cfg.device.image_shape),
        },
        "corpus": {
            "samples": len(corpus),
            "sequences": corpus.n_sequences,
            "seq_len": pc.seq_len,
            "scenarios": [s.name for s in swingup_scenarios()],
            "randomization_scale": pc.randomization_scale,
        },
        "quality": quality,
        "final_loss": {k: float(np.mean(v[-100:])) for k, v in curves.items()},
        "seconds_total": time.time() - t0,
        "machine": {"python": platform.python_version(), "torch": torch.__version__, "cpus": torch.get_num_threads()},
    }
    weights = out / "encoders.pt"
    heads = HEADS if pretrains_heads(pc) else ()
    meta["heads"] = list(heads)
    meta_digest = save_encoders(model, weights, meta, heads)

    def count(names: tuple[str, ...]) -> int:
        return sum(p.numel() for name in names for p in getattr(model, name).parameters())

    summary = {**meta, "sha256": meta_digest, "bytes": weights.stat().st_size,
               "parameters": count(("imu_encoder", "image_encoder")), "head_parameters": count(heads)}  # fmt: skip
    (out / "pretrain.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot_pretraining(curves, quality, out / "pretrain.png", pc.imu_objective)
    if ship:
        SHIPPED.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(weights, SHIPPED)
        log(f"shipped: {SHIPPED} (sha256 {sha256(SHIPPED)[:12]}); run `make docs` to regenerate docs/model-card.md")
    return summary


def plot_pretraining(curves: dict[str, list[float]], quality: dict[str, Any], path: Path, objective: str) -> None:
    """Loss curves (smoothed) and the linear probe before and after."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, values in curves.items():
        k = max(1, min(50, len(values) // 5))
        if values:
            ax1.semilogy(
                np.convolve(values, np.ones(k) / k, mode="valid"),
                label=f"{name} ({ {'imu': objective, 'image': 'denoise'}.get(name, 'pseudo-label, frozen encoders') })",
            )
    ax1.set(xlabel="step", ylabel="loss (moving mean)", title="self-supervised pretraining")
    ax1.legend()
    ax1.grid(alpha=0.3)
    keys = ["imu_angle_rmse_deg", "image_angle_rmse_deg"]
    x = np.arange(len(keys))
    ax2.bar(x - 0.2, [quality["probe_random_init"][k_] for k_ in keys], 0.4, label="random init")
    ax2.bar(x + 0.2, [quality["probe_pretrained"][k_] for k_ in keys], 0.4, label="pretrained")
    ax2.set_xticks(x, ["IMU angle", "image angle"])
    ax2.set(ylabel="linear-probe RMSE (deg)", title="frozen features -> ridge regression (held out)")
    ax2.legend()
    ax2.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
