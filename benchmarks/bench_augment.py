"""Lighting augmentation A/B: the same fine-tuning with ``perception.augment`` on and off, under shifted cameras.

Fine-tunes every head from the shipped encoders on the same simulated samples, seed and
budget, once with the photometric augmentation (perception/augment.py) and once without,
and scores both on test sets drawn under bench_perception's camera conditions (nominal,
exposure shift, motion blur, the held-out set) and without the camera's roll offset. Prints
each RMSE and the ratio off / on (docs/perception.md).

    python benchmarks/bench_augment.py [--train 30000] [--test 3000] [--steps 3000] [--seed 0] [--out runs/bench-augment]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_perception import conditions

CONDITIONS = (
    "nominal (test seeds)", "exposure shift (darker rod)", "motion blur (8-16 ms exposure)",
    "camera roll 0 (a calibrated camera)", "held-out set (all of the above shifts)",
)  # fmt: skip
METRICS = (("image_angle_rmse_deg", "image deg"), ("fused_angle_rmse_deg", "fused deg"),
           ("imu_angle_rmse_deg", "IMU deg"), ("camera_class_accuracy", "camera acc"))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=30000, help="simulated labelled samples (validation included)")
    parser.add_argument("--test", type=int, default=3000, help="test samples per condition")
    parser.add_argument("--steps", type=int, default=3000, help="fine-tuning steps (no early stopping)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import torch

    from sensorimotor.control.config import load_experiment
    from sensorimotor.control.motions import swingup_scenarios
    from sensorimotor.control.train import perception_model
    from sensorimotor.perception.data import generate
    from sensorimotor.perception.train import evaluate, finetune, init_encoders, split

    torch.set_num_threads(2)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-augment-"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    cfg = load_experiment()
    data = generate(cfg.device, args.train, seed=500 + args.seed, seq_len=20, every=5, scenarios=swingup_scenarios(),
                    clean=False)  # fmt: skip
    train, val = split(data, 0.1, args.seed, cfg.perception.batch_size)
    devices = conditions(cfg.device)
    tests = {c: generate(devices[c], args.test, seed=9100, seq_len=20, every=5, scenarios=swingup_scenarios(),
                         clean=False) for c in CONDITIONS}  # fmt: skip
    print(
        f"data: {len(train)} training, {len(val)} validation, {args.test} test per condition ({time.time() - t0:.0f} s)"
    )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for augment in (True, False):
        torch.manual_seed(args.seed)
        model = perception_model(cfg)
        init_encoders(model, "shipped")
        pc = dataclasses.replace(cfg.perception, finetune_steps=args.steps, patience=0, augment=augment)
        t1 = time.time()
        finetune(model, train, val, pc, args.seed, pretrained=True, progress=False)
        name = "augment on" if augment else "augment off"
        results[name] = {c: {k: evaluate(model, d)[k] for k, _ in METRICS} for c, d in tests.items()}
        print(f"{name}: fine-tuned in {time.time() - t1:.0f} s", flush=True)
    print(f"\n{'condition':<40} " + " ".join(f"{label + ' on / off':>24}" for _, label in METRICS))
    for c in CONDITIONS:
        on, off = results["augment on"][c], results["augment off"][c]
        cells = [f"{on[k]:7.3g} / {off[k]:<7.3g}" for k, _ in METRICS]
        print(
            f"{c:<40} "
            + " ".join(f"{x:>24}" for x in cells)
            + f"   image {off[METRICS[0][0]] / on[METRICS[0][0]]:.2f}x"
        )
    result = {"results": results, "args": vars(args) | {"out": str(out)}, "seconds": time.time() - t0}
    (out / "bench_augment.json").write_text(json.dumps(result, indent=2))
    print(f"\nwrote {out / 'bench_augment.json'} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
