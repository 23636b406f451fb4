"""``sim`` command line: ``sim train`` (the training pipeline) and ``sim twin`` (the simulated device).

A thin shell: heavy imports happen inside the subcommand, so ``sim twin`` stays on the
light runtime path (no torch, SB3 or gymnasium).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sensorimotor.hardware.config import ConfigError, add_config_arguments

EPILOG = """examples:
  sim train --preset quick --out runs/quick
  sim train --config runs/quick/config.yaml --preset tiny --out runs/again
  sim train --preset quick --set rl.total_timesteps=300000 --set device.camera.rate_hz=25
  sim twin --set device.stream_rate_hz=200
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sim", description="Simulator commands: train the perception+control chain, serve the twin.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,twin}")
    train = sub.add_parser(
        "train", help="train perception and the RL controller, evaluate, export one ONNX model",
        description="Generate sensor data in simulation, pretrain and fine-tune perception, train a PPO "
        "controller with perception in the loop, evaluate it, export raw-sensors-to-volts as one ONNX file, "
        "and write report.json and plots into --out.",
    )  # fmt: skip
    add_config_arguments(train, "every section")
    train.add_argument("--preset", default=None, help="preset from the config's `presets:` section, e.g. quick or tiny")
    train.add_argument("--out", type=Path, default=Path("runs/quick"), help="output folder (default: %(default)s)")
    train.add_argument("--seed", type=int, default=None, help="override the config's seed (same as --set seed=N)")

    twin = sub.add_parser(
        "twin", help="serve the simulated device on a pseudo-terminal",
        description="Run the simulator as a serial device on a pseudo-terminal, speaking the real protocol "
        "(docs/protocol.md). Prints the port path, then runs in real time until stopped (Ctrl-C).",
    )  # fmt: skip
    from sensorimotor.sim.twin import add_twin_arguments  # light: numpy and the protocol only

    add_twin_arguments(twin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        return _twin(args)
    except ConfigError as exc:
        print(f"sim {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sim {args.command}: interrupted", file=sys.stderr)
        return 130


def _train(args: argparse.Namespace) -> int:
    from sensorimotor.control.config import load_experiment, resolved_yaml
    from sensorimotor.hardware.config import DEFAULT_CONFIG, read_yaml

    overrides = [*args.overrides, *([f"seed={args.seed}"] if args.seed is not None else [])]
    cfg = load_experiment(args.config, args.preset, overrides)
    source = args.config or DEFAULT_CONFIG
    provenance = (
        f"Resolved by `sim train` from {source}" + (f", preset {args.preset}" if args.preset else "")
        + "".join(f", --set {o}" for o in overrides)
        + f".\nLoads back as it is: sim train --config {args.out / 'config.yaml'} reproduces this run."
    )  # fmt: skip
    config_text = resolved_yaml(cfg, read_yaml(source).get("presets") or {}, provenance)
    from sensorimotor.control.train import run  # heavy: torch, SB3

    report = run(cfg, args.out, args.preset, config_text)
    print(f"sim train: wrote {args.out / 'policy.onnx'} and {args.out / 'report.json'}")
    print(
        f"  IMU angle RMSE {report['imu_angle_rmse_deg']:.2f} deg, image angle RMSE {report['image_angle_rmse_deg']:.2f} deg, "
        f"camera-class accuracy {report['classification_accuracy']:.1%}\n"
        f"  {report['task']} success {report['eval_success_rate']:.0%} of {report['evaluation']['episodes']} episodes, "
        f"ONNX parity {report['onnx_parity_max_abs_diff']:.1e}, total {report['seconds_total']:.0f} s"
    )
    return 0


def _twin(args: argparse.Namespace) -> int:
    from sensorimotor.sim.twin import run_from_args

    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
