"""IMU pretraining objectives compared: kinematic, crossmodal, forecast and masked reconstruction, graded by the same linear probe.

Runs ``sim pretrain``'s pipeline once per objective on the same corpus seed and budget (the
image objective is the same in all) and prints the linear-probe RMSE of the frozen IMU
features against a random init measured in the same run (docs/perception.md).

    python benchmarks/bench_pretrain.py [--steps 4000] [--corpus 80000] [--seed 0] [--out runs/bench-pretrain]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run(steps: int, corpus: int, seed: int, out: Path) -> dict[str, dict]:
    from sensorimotor.control.config import load_experiment
    from sensorimotor.control.pretraining import run as pretrain
    from sensorimotor.perception.config import IMU_OBJECTIVES

    results = {}
    for objective in IMU_OBJECTIVES:
        sets = [f"seed={seed}", f"pretrain.imu_objective={objective}", f"pretrain.steps={steps}",
                f"pretrain.corpus_samples={corpus}"]  # fmt: skip
        cfg = load_experiment(None, None, sets)
        results[objective] = pretrain(cfg, out / objective, "bench_pretrain " + " ".join(sets), log=lambda _m: None)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4000, help="pretraining steps per objective (default 4000)")
    parser.add_argument("--corpus", type=int, default=80000, help="unlabelled corpus samples (default 80000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-pretrain-"))
    results = run(args.steps, args.corpus, args.seed, out)
    keys = (("imu_angle_rmse_deg", "IMU angle (deg)"), ("imu_rate_rmse_rad_s", "IMU rate (rad/s)"),
            ("image_angle_rmse_deg", "image angle (deg)"))  # fmt: skip
    print(f"\nlinear probe on frozen features, {args.steps} steps, corpus {args.corpus}, seed {args.seed}")
    print(f"{'objective':<11} " + " ".join(f"{label:>28}" for _, label in keys))
    for objective, summary in results.items():
        q = summary["quality"]
        cells = [
            f"{q['probe_pretrained'][k]:8.3f} ({q['probe_random_init'][k] / q['probe_pretrained'][k]:4.1f}x vs random)"
            for k, _ in keys
        ]
        print(f"{objective:<11} " + " ".join(f"{c:>28}" for c in cells))
    random_init = next(iter(results.values()))["quality"]["probe_random_init"]
    print("random      " + " ".join(f"{random_init[k]:28.3f}" for k, _ in keys))
    print(f"{sum(r['seconds_total'] for r in results.values()):.0f} s in all")
    (out / "bench_pretrain.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
