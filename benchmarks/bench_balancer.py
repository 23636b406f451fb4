"""The two-wheeled balancer trained end to end (control/device_train.py) and scored on 500 randomized episodes.

Perception (the shipped IMU encoder fine-tuned on pitch and pitch rate), PPO through it on the
batched MuJoCo simulator, 500 evaluation episodes of randomized robots (masses, lengths,
motors, friction, deadzone, delays, IMU noise drawn per episode; seeds never trained on),
export to ONNX and parity. Prints success, perception RMS, training time against the
15-minute target, and parity; writes the run to ``runs/balancer`` (or ``--out``).

    python -m benchmarks.bench_balancer [--seed 0] [--steps 1200000] [--out runs/balancer]

The same run as ``sim train --config configs/balancer.yaml`` (its hyperparameters are the config's).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sensorimotor.control.device_train import load_run, run

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "balancer.yaml"
TARGET_SUCCESS, TARGET_MINUTES = 0.95, 15.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="PPO environment steps (default: the config's)")
    ap.add_argument("--out", type=Path, default=Path("runs/balancer"))
    args = ap.parse_args()
    overrides = [f"seed={args.seed}"] + ([f"rl.total_timesteps={args.steps}"] if args.steps else [])
    r = load_run(CONFIG, None, overrides, args.out)
    report = run(r.plan, r.rl, args.out, r.seed, r.windows, r.perception_steps, r.eval_episodes, r.config_text)
    ev, minutes = report["eval"], report["seconds"] / 60.0
    print(json.dumps({k: report[k] for k in ("eval", "perception", "parity", "train_seconds", "seconds")}, indent=1))
    print(f"success {ev['success_rate']:.1%} of {ev['episodes']} (target >= {TARGET_SUCCESS:.0%}): "
          f"{'met' if ev['success_rate'] >= TARGET_SUCCESS else 'MISSED'}")  # fmt: skip
    print(f"whole run {minutes:.1f} min, PPO {report['train_seconds'] / 60:.1f} min (target <= {TARGET_MINUTES:.0f} "
          f"min): {'met' if minutes <= TARGET_MINUTES else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
