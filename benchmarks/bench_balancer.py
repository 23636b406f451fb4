"""The two-wheeled balancer trained end to end (control/device_train.py) and scored on 500 randomized episodes.

Perception (the shipped IMU encoder fine-tuned on pitch and pitch rate), PPO through it on the
batched MuJoCo simulator, 500 evaluation episodes of randomized robots (masses, lengths,
motors, friction, deadzone, delays, IMU noise drawn per episode; seeds never trained on),
export to ONNX and parity. Prints success, perception RMS, training time against the
15-minute target, and parity; writes the run to ``runs/balancer`` (or ``--out``).

    python -m benchmarks.bench_balancer [--seed 0] [--steps 1200000] [--out runs/balancer]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from sensorimotor.control.config import PPOConfig, RLConfig
from sensorimotor.control.device_train import DevicePlan, run
from sensorimotor.sim.balancer import BalancerConfig
from sensorimotor.sim.balancer_task import BalancerTaskConfig

#: PPO for balancing: a long horizon (gamma 0.995 at 100 Hz: ~2 s) so holding the start position pays; observations
#: normalized (wheel rates reach tens of rad/s, pitch tenths of a rad; the statistics go into the graph).
RL = RLConfig(
    total_timesteps=1_200_000, n_envs=16, gamma=0.995, net_arch=(64, 64), normalize_obs=True,
    ppo=PPOConfig(n_steps=256, batch_size=1024, n_epochs=5, learning_rate=3e-4, lr_schedule="constant",
                  log_std_init=0.0),
)  # fmt: skip
TARGET_SUCCESS, TARGET_MINUTES = 0.95, 15.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=RL.total_timesteps, help="PPO environment steps")
    ap.add_argument("--out", type=Path, default=Path("runs/balancer"))
    args = ap.parse_args()
    rl = dataclasses.replace(RL, total_timesteps=args.steps)
    report = run(DevicePlan.of(BalancerConfig(), BalancerTaskConfig()), rl, args.out, seed=args.seed)
    ev, minutes = report["eval"], report["seconds"] / 60.0
    print(json.dumps({k: report[k] for k in ("eval", "perception", "parity", "train_seconds", "seconds")}, indent=1))
    print(f"success {ev['success_rate']:.1%} of {ev['episodes']} (target >= {TARGET_SUCCESS:.0%}): "
          f"{'met' if ev['success_rate'] >= TARGET_SUCCESS else 'MISSED'}")  # fmt: skip
    print(f"whole run {minutes:.1f} min, PPO {report['train_seconds'] / 60:.1f} min (target <= {TARGET_MINUTES:.0f} "
          f"min): {'met' if minutes <= TARGET_MINUTES else 'MISSED'}")  # fmt: skip


if __name__ == "__main__":
    main()
