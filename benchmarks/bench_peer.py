"""Pendulum-v1 peer check: our trainer against rl-baselines3-zoo's published results.

Trains PPO (100k steps) and SAC (20k steps) on Pendulum-v1 with the zoo's hyperparameters
(presets ``pendulum-ppo`` and ``pendulum-sac`` in configs/furuta.yaml), 3 seeds each,
through the same code path as ``sim train --env Pendulum-v1``, and evaluates the exported
deterministic actor on 100 episodes per seed. Prints each seed, the mean over seeds and the
zoo's figures (mean +- std of episode return; higher is better, 0 is the maximum).

    python benchmarks/bench_peer.py [--seeds 0 1 2] [--out runs/peer]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# rl-baselines3-zoo benchmark table (benchmark.md): Pendulum-v1, mean +- std of episode return
ZOO = {"ppo": (-172.0, 104.0), "sac": (-157.0, 89.0)}
TARGET = -200.0  # the bar for each algorithm's mean over seeds


def run(seeds: tuple[int, ...] = (0, 1, 2), out: Path | None = None) -> dict[str, dict]:
    from sensorimotor.control.config import load_experiment
    from sensorimotor.control.train import run as train

    root = out or Path(tempfile.mkdtemp(prefix="peer-"))
    results: dict[str, dict] = {}
    for algo in ("ppo", "sac"):
        rows = []
        for seed in seeds:
            cfg = load_experiment(None, f"pendulum-{algo}", [f"seed={seed}"])
            report = train(cfg, root / f"{algo}-{seed}")
            rows.append(report)
            print(
                f"{algo} seed {seed}: {report['rl_timesteps']} steps, mean return {report['mean_return']:8.1f} "
                f"+- {report['std_return']:6.1f} over {report['episodes']} episodes ({report['seconds_total']:.0f} s)",
                flush=True,
            )
        means = np.array([r["mean_return"] for r in rows])
        results[algo] = {
            "seeds": list(seeds),
            "mean_return_per_seed": means.tolist(),
            "mean_return": float(means.mean()),
            "min_seed_mean_return": float(means.min()),
            "std_within_episodes": float(np.mean([r["std_return"] for r in rows])),
            "zoo_mean": ZOO[algo][0],
            "zoo_std": ZOO[algo][1],
            "meets_target": bool(means.min() >= TARGET),
        }
    print(f"\n{'algo':<5} {'steps':>7} {'ours: mean over seeds (per seed)':<44} {'zoo':>12}   target >= {TARGET:.0f}")
    for algo, r in results.items():
        per = ", ".join(f"{m:.0f}" for m in r["mean_return_per_seed"])
        zoo = f"{r['zoo_mean']:.0f} +- {r['zoo_std']:.0f}"
        steps = "100k" if algo == "ppo" else "20k"
        print(
            f"{algo:<5} {steps:>7} {r['mean_return']:8.1f} ({per}){'':<10} {zoo:>12}   {'met' if r['meets_target'] else 'NOT met'}"
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = ap.parse_args()
    results = run(tuple(args.seeds), args.out)
    Path(__file__).with_name("peer_results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
