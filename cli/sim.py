"""``sim`` command line: ``sim train`` (the training pipeline) and ``sim twin`` (the simulated device).

A thin shell: heavy imports happen inside the subcommand, so ``sim twin`` stays on the
light runtime path (no torch, SB3 or gymnasium).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from pathlib import Path

from sensorimotor.cli.common import OneLineParser, add_config_arguments, add_shortcut
from sensorimotor.cli.common import overrides as shortcut_overrides
from sensorimotor.configs.schema import ConfigError
from sensorimotor.control.algorithms import ALGORITHMS
from sensorimotor.control.names import DEVICE_ENV
from sensorimotor.perception.config import FREEZE, IMU_OBJECTIVES
from sensorimotor.perception.errors import DatasetError, WeightsError

EPILOG = """examples:
  sim train --preset quick --out runs/quick
  sim train --preset full --out runs/full           # swing-up through perception (docs/results.md)
  sim train --resume runs/full                      # continue from its last checkpoint
  sim train --preset quick --init runs/pretrain/encoders.pt   # start from other pretrained encoders
  sim pretrain --out runs/pretrain                  # self-supervised encoders (docs/model-card.md)
  sim finetune --modality imu --freeze linear --labels 1000 --out runs/ft-imu
  sim finetune --from runs/quick --export --out runs/quick-ft   # then: hw run --model runs/quick-ft/policy.onnx
  sim train --env Pendulum-v1 --preset pendulum-sac --out runs/pendulum-sac
  sim eval runs/full                                # RL vs classical, nominal and perturbed
  sim robustness runs/quick                         # success map over pendulum damping x motor resistance
  sim robustness runs/quick --set device.physics.Dp=0.0005 --axis device.physics.Dr=0.5:4:4
  sim identify excite.mcap --out device.yaml        # fit damping and motor to an hw excite log
  sim robustness runs/quick --device device.yaml    # the run's policy on the identified device
  sim train --from runs/quick --device device.yaml  # adapt it to that device (runs/quick-adapted)
  sim train --config runs/quick/config.yaml --preset tiny --out runs/again
  sim train --preset quick --set rl.total_timesteps=300000 --set device.camera.rate_hz=25
  sim twin --set device.stream_rate_hz=200
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="sim", description="Simulator commands: train the perception+control chain, serve the twin.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{train,pretrain,finetune,eval,robustness,identify,sweep,twin}"
    )
    train = sub.add_parser(
        "train", help="train perception and the RL controller, evaluate, export one ONNX model",
        description="Generate labelled sensor data in simulation, fine-tune perception from the shipped "
        "pretrained encoders (--init), train the RL controller (PPO or SAC, rl.algo) with perception in the "
        "loop, evaluate it, export raw-sensors-to-volts as one ONNX file, and write report.json and plots "
        "into --out.",
    )  # fmt: skip
    add_config_arguments(train, "every section")
    train.add_argument("--preset", default=None, help="preset from the config's `presets:` section, e.g. quick or tiny")
    train.add_argument("--out", type=Path, default=None, help="output folder (default: runs/quick)")
    add_shortcut(train, "--seed", "seed", "override the config's seed", type=int)
    add_shortcut(
        train, "--algo", "rl.algo", "RL algorithm; it brings its own rl.n_envs, rl.gamma and rl.net_arch unless the "
        "config or --set gives them", choices=tuple(ALGORITHMS),
    )  # fmt: skip
    add_shortcut(train, "--env", "rl.env", "a registered Gymnasium env with vector observations instead of the device",
                 metavar="ID")  # fmt: skip
    train.add_argument(
        "--resume", type=Path, default=None, metavar="RUN",
        help="continue RUN's training from its last checkpoint, with RUN/config.yaml (--set may extend "
        "rl.total_timesteps); refused, touching nothing, if the checkpoint is missing or does not fit",
    )  # fmt: skip
    train.add_argument(
        "--from", dest="source", type=Path, default=None, metavar="RUN",
        help="adapt RUN's controller to another device: RUN/config.yaml with --device and --set applied, its "
        "perception, PPO/SAC from its last checkpoint for --steps more steps, then evaluated, exported and scored "
        "like any run (default --out: RUN-adapted; docs/sim-to-real.md)",
    )  # fmt: skip
    train.add_argument(
        "--device", type=Path, default=None, metavar="YAML",
        help="with --from: the device to adapt to, a device.yaml as `sim identify` writes it",
    )  # fmt: skip
    train.add_argument("--steps", type=int, default=None, metavar="N",
                       help="with --from: training steps on the new device (default: 1000000)")  # fmt: skip
    train.add_argument("--force", action="store_true", help="overwrite an existing run in --out")
    add_shortcut(
        train, "--init", "perception.init", "encoder weights to fine-tune from: an encoders.pt of `sim pretrain`, "
        "`shipped` (default) or `scratch`", metavar="PATH",
    )  # fmt: skip

    pre = sub.add_parser(
        "pretrain", help="self-supervised pretraining of the IMU and image encoders",
        description="Simulate an unlabelled corpus (randomized device, swing-up, pumping, rotating, balance and random "
        "motion), pretrain the IMU encoder (pretrain.imu_objective: one of " + ", ".join(IMU_OBJECTIVES) + ") and the image encoder "
        "(denoising), grade both with a linear probe on held-out labelled data, and write OUT/encoders.pt, "
        "pretrain.json and pretrain.png. `sim train --init OUT/encoders.pt` starts from them.",
    )  # fmt: skip
    add_config_arguments(pre, "the pretrain, perception and device sections")
    pre.add_argument("--preset", default=None, help="preset from the config's `presets:` section, e.g. tiny")
    pre.add_argument("--out", type=Path, default=Path("runs/pretrain"), help="output folder (default: runs/pretrain)")
    add_shortcut(pre, "--seed", "seed", "override the config's seed", type=int)
    add_shortcut(pre, "--objective", "pretrain.imu_objective", "IMU objective", choices=IMU_OBJECTIVES)
    pre.add_argument(
        "--ship", action="store_true",
        help="also install the result as the project's shipped weights (perception/pretrained/encoders.pt); "
        "then `make docs` regenerates docs/model-card.md",
    )  # fmt: skip

    ft = sub.add_parser(
        "finetune", help="fine-tune perception on labelled data; optionally re-export a run's controller with it",
        description="Start from a run's perception (--from RUN) or from pretrained encoders (perception.init), "
        "fine-tune on labelled simulated samples (AdamW, warm-up + cosine, early stopping on a validation split of "
        "whole episodes), measure on held-out samples and write OUT/perception.pt, metrics.json and finetune.png. "
        "With --from RUN --export, also OUT/policy.onnx: the run's controller behind the new perception.",
    )  # fmt: skip
    add_config_arguments(ft, "the perception and device sections; default: RUN/config.yaml with --from")
    ft.add_argument("--preset", default=None, help="preset from the config's `presets:` section")
    ft.add_argument("--from", dest="source", type=Path, default=None, metavar="RUN",
                    help="a sim train run folder: its config, perception and (for --export) controller")  # fmt: skip
    ft.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/finetune, or runs/finetune)")
    ft.add_argument("--modality", choices=("imu", "image", "fused", "all"), default="all",
                    help="which heads learn (default: all)")  # fmt: skip
    add_shortcut(ft, "--freeze", "perception.freeze", "what learns besides the heads (default lp-ft: heads first on "
                 "the pretrained encoders, then everything)", choices=FREEZE)  # fmt: skip
    ft.add_argument("--labels", type=int, default=None, metavar="N",
                    help="use only N labelled training samples (whole episodes; default: all)")  # fmt: skip
    add_shortcut(ft, "--init", "perception.init", "encoders to start from without --from: shipped (default), scratch "
                 "or an encoders.pt", metavar="PATH")  # fmt: skip
    add_shortcut(ft, "--seed", "seed", "override the config's seed", type=int)
    ft.add_argument("--export", action="store_true", help="with --from: write OUT/policy.onnx for `hw run`")
    ft.add_argument(
        "--logs", nargs="+", type=Path, default=None, metavar="LOG",
        help="fine-tune on these `hw run --record` logs instead of simulated data; they need REFERENCE frames "
        "(a reference sensor; the twin: --set device.reference=true)",
    )  # fmt: skip
    ft.add_argument("--label-channel", default="alpha", metavar="NAME",
                    help="the REFERENCE value that labels the logs (default: alpha)")  # fmt: skip

    ev = sub.add_parser(
        "eval", help="compare trained controllers and the classical baseline, nominal and perturbed",
        description="Run each RUN's exported policy.onnx (perception in the loop) and its actor on the true state, "
        "and the classical energy swing-up + LQR on the true state and on the first run's perception (exported to "
        "OUT/classical.onnx), on the same seeded episodes: nominal physics, each physical parameter x0.7 and x1.3, "
        "latency x2, sensor noise x2, camera faults. Writes OUT/results.md, results.json and comparison.png.",
    )  # fmt: skip
    ev.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="sim train run folders of the device")
    ev.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/eval of the first run)")
    ev.add_argument("--episodes", type=int, default=100, help="episodes per controller and condition (default: 100)")
    ev.add_argument("--seed", type=int, default=12345, help="episode seed, the same for every controller")
    ev.add_argument("--nominal-only", action="store_true", help="skip the perturbation set")
    ev.add_argument("--no-classical", action="store_true", help="RL runs only")

    rob = sub.add_parser(
        "robustness", help="where a run's controller breaks: a success map over one or two parameters",
        description="Run RUN's exported policy.onnx (onnxruntime, the artifact hw run loads) on a grid of devices: "
        "each --axis multiplies one config value (the device's own field names). Every cell runs --episodes "
        "episodes with nothing randomized on top; where the policy fails, a CMA-ES-tuned energy + LQR controller "
        "on the true state (the oracle) says whether any controller could succeed at the device's actuator range. "
        "First, one line on the centre device (RUN's config with --device/--set applied): the policy's success "
        "and, if it fails, whether the device can be done at all and the range it would need. Writes "
        "OUT/robustness.png (a heat map), robustness.md and robustness.json.",
    )  # fmt: skip
    rob.add_argument("run", type=Path, metavar="RUN", help="a sim train run folder (config.yaml, policy.onnx)")
    rob.add_argument(
        "--axis", action="append", default=None, metavar="PATH=LO:HI[:N]",
        help="a config value and its multipliers: N log-spaced from LO to HI (default N 5), or F1,F2,...; "
        "at most two (default: device.physics.Dp=0.25:12:7 and device.physics.Rm=0.4:1.5:5)",
    )  # fmt: skip
    rob.add_argument("--device", type=Path, default=None, metavar="YAML",
                     help="the centre device: a device.yaml of `sim identify` (or any `device:` section) over "
                     "RUN's config")  # fmt: skip
    rob.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE",
                     help="change the centre device, e.g. --set device.physics.Dp=0.0005 (repeatable)")  # fmt: skip
    rob.add_argument("--episodes", type=int, default=10, help="episodes per cell (default: 10)")
    rob.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/robustness)")

    ident = sub.add_parser(
        "identify", help="fit the device's physical parameters to an excitation log (hw excite)",
        description="Replay the log's commands through the batched simulator for many candidate parameter sets "
        "and match the logged IMU and encoder samples: CMA-ES (cma), then least squares (scipy) with the "
        "uncertainty of each parameter. Writes OUT (device.yaml: the identifiable values by the config's own "
        "field names, loadable with sim robustness --device; how they were found in its identification: "
        "section), OUT with .png (logged against simulated signals) and .json. Parameters the log cannot "
        "identify are named with the reason and left at the config's values.",
    )  # fmt: skip
    ident.add_argument("log", type=Path, metavar="LOG", help="an hw excite log (.mcap)")
    add_config_arguments(ident, "the device section (the model the parameters are fitted in)")
    ident.add_argument(
        "--out", type=Path, default=Path("device.yaml"), help="device file to write (default: device.yaml)"
    )
    ident.add_argument(
        "--free", default=None, metavar="NAMES",
        help="comma-separated device.physics fields to fit (default: Dp,Dr,Rm; e.g. add coulomb_r,v_deadzone; "
        "docs/sim-to-real.md says which the signals can tell apart)",
    )  # fmt: skip
    ident.add_argument("--seed", type=int, default=0, help="seed of the CMA-ES search (default: 0)")
    ident.add_argument("--force", action="store_true", help="overwrite an existing --out")

    sweep = sub.add_parser(
        "sweep", help="many trainings on Ray: a grid over seeds, or an Optuna search; spreads over seeds",
        description="Run `sim train` once per grid point and seed (or per Optuna suggestion and seed) as Ray Tune "
        "trials: on this machine by default, on a cluster with --address. Each trial is an ordinary run folder "
        "(OUT/runs/<point>/seed<N>: sim eval, hw run and sim train --resume work on it). A crashed trial is "
        "retried once and the sweep goes on; Ctrl-C stops it and --resume continues. At the end: OUT/summary.md "
        "and summary.json (per configuration: mean, std, interquartile mean and 95 % bootstrap intervals over "
        "seeds), curves.png (learning curves with bands), final.png (each seed's figures) and best.yaml (the best "
        "configuration by --metric, as a config sim train --config reproduces). docs/sweeps.md.",
    )  # fmt: skip
    add_config_arguments(sweep, "every section; --set applies to every trial")
    sweep.add_argument("--preset", default=None, help="preset from the config's `presets:` section, e.g. quick")
    sweep.add_argument("--out", type=Path, default=None, help="the sweep's folder (required unless --resume)")
    sweep.add_argument("--seeds", default="0", help="seeds of every configuration: 0-4, 0,2,7 or 3 (default: 0)")
    sweep.add_argument(
        "--grid", action="append", default=[], metavar="PATH=V1,V2",
        help="a config value and the values to try (repeatable: every combination runs); with --optuna also "
        "LOW..HIGH (uniform) or LOW..HIGH:log, searched",
    )  # fmt: skip
    sweep.add_argument("--optuna", type=int, default=0, metavar="N",
                       help="search the --grid axes with Optuna's TPE over N configurations (each on every seed), "
                       "the periodic evaluations pruned by the median rule")  # fmt: skip
    sweep.add_argument("--metric", default="heldout_success",
                       help="the figure the search and best.yaml rank by (default: heldout_success; a Gymnasium "
                       "env's runs: mean_return)")  # fmt: skip
    sweep.add_argument("--no-prune", action="store_true", help="--optuna: run every suggestion to the end")
    sweep.add_argument(
        "--twin-runs", type=int, default=0, metavar="N",
        help="after training, run each trial's policy with `hw run --twin` on N twin seeds over the pty, in real "
        "time (about 16 s each for the swing-up): the spread of twin_success (default: 0, none)",
    )  # fmt: skip
    sweep.add_argument(
        "--cpus-per-trial",
        type=float,
        default=1.0,
        help="CPUs each trial reserves and torch uses (default: 1: the networks are small)",
    )
    sweep.add_argument("--cpus", type=int, default=None, help="local Ray: CPUs to use (default: all of this machine's)")
    sweep.add_argument(
        "--address",
        default=None,
        help="an existing Ray cluster's head, HOST:PORT or auto (default: a local Ray instance)",
    )
    sweep.add_argument("--dashboard", action="store_true", help="start Ray's dashboard (http://127.0.0.1:8265)")
    sweep.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="DIR",
        help="continue the sweep in DIR where it stopped (its own arguments are kept; --twin-runs N may be "
        "added: finished trials without a twin check get one)",
    )
    sweep.add_argument("--inject-fault", default="", help=argparse.SUPPRESS)  # tests: POINT/seedN[:always]

    twin = sub.add_parser(
        "twin", help="serve the simulated device on a pseudo-terminal",
        description="Run the simulator as a serial device on a pseudo-terminal, speaking the real protocol "
        "(docs/protocol.md). Prints the port path, then runs in real time until stopped (Ctrl-C).",
    )  # fmt: skip
    from sensorimotor.cli.twin import add_twin_arguments  # light: numpy and the protocol only

    add_twin_arguments(twin)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "eval":
            return _eval(args)
        if args.command == "pretrain":
            return _pretrain(args)
        if args.command == "finetune":
            return _finetune(args)
        if args.command == "robustness":
            return _robustness(args)
        if args.command == "identify":
            return _identify(args)
        if args.command == "sweep":
            return _sweep(args)
        return _twin(args)
    except ConfigError as exc:
        print(f"sim {args.command}: config error: {exc}", file=sys.stderr)
        return 2
    except (RunFolderError, DatasetError) as exc:
        print(f"sim {args.command}: {exc}", file=sys.stderr)
        return 2
    except WeightsError as exc:
        print(f"sim {args.command}: encoder weights: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sim {args.command}: interrupted", file=sys.stderr)
        return 130


class RunFolderError(Exception):
    """The output folder cannot be used as asked (holds a run, or cannot be resumed)."""


def _train(args: argparse.Namespace) -> int:
    from sensorimotor.configs.schema import DEFAULT_CONFIG
    from sensorimotor.control.config import resolved_run

    overrides = shortcut_overrides(args)
    if args.source is not None:
        return _adapt(args, overrides)
    if args.device is not None or args.steps is not None:
        raise RunFolderError("--device and --steps adapt a run: give the run with --from RUN")
    if args.resume is not None:
        if args.config is not None or args.preset is not None or (args.out and args.out != args.resume):
            raise RunFolderError(
                "--resume RUN uses RUN/config.yaml and writes into RUN: drop --config, --preset and --out"
            )
        out, source, preset = args.resume, args.resume / "config.yaml", None
        if not source.is_file():
            raise RunFolderError(f"cannot resume {out}: {source} is missing (is it a sim train run folder?)")
    else:
        out, source, preset = args.out or Path("runs/quick"), args.config or DEFAULT_CONFIG, args.preset
        if _holds_run(out) and not args.force:
            raise RunFolderError(
                f"{out} already holds a training run: resume it with --resume {out}, choose another --out, "
                "or pass --force to overwrite it"
            )
    if _trains_elsewhere(source, preset, overrides):
        if args.resume is not None:
            raise RunFolderError(f"cannot resume {out}: --resume continues a furuta run (a {source} run starts over)")
        return _train_device(source, preset, overrides, out)
    cfg, config_text = resolved_run(source, preset, overrides, out)
    if cfg.rl.env == DEVICE_ENV and args.resume is None:
        from sensorimotor.perception.train import check_init  # heavy: torch

        check_init(cfg.perception.init, cfg.device.imu.window, cfg.perception.dim, cfg.device.image_shape)
    resume = None
    if args.resume is not None:
        from sensorimotor.control.checkpoints import ResumeError, find

        try:
            resume = find(out, cfg.rl)
        except ResumeError as exc:
            raise RunFolderError(f"cannot resume: {exc}") from None
    if resume is None:  # a fresh run (or --force): no checkpoint or TensorBoard log of an earlier run may remain
        for stale in ("checkpoints", "tensorboard"):
            shutil.rmtree(out / stale, ignore_errors=True)
    from sensorimotor.control.train import run  # heavy: torch, SB3

    report = run(cfg, out, preset, config_text, resume)
    return _print_report(out, report)


def _trains_elsewhere(source: Path, preset: str | None, overrides: list[str]) -> bool:
    """True when the config's device is not the Furuta: the device pipeline (control/device_train.py) trains it."""
    from sensorimotor.configs.schema import resolve
    from sensorimotor.sim.config import DeviceConfig, DeviceSection

    data, _ = resolve(source, preset, overrides)
    device = data.get("device")
    name = device.get("type") if isinstance(device, dict) else None
    if not isinstance(name, str):
        return False
    try:
        chosen = DeviceSection.lookup(name)
    except ValueError:  # the full load refuses it, naming the known types
        return False
    return not issubclass(chosen, DeviceConfig)


def _train_device(source: Path, preset: str | None, overrides: list[str], out: Path) -> int:
    """``sim train`` for a device described by MJCF: perception, PPO, evaluation, export (control/device_train.py)."""
    from sensorimotor.control import device_train  # heavy: torch, SB3, MuJoCo

    run = device_train.load_run(source, preset, overrides, out)
    for stale in ("checkpoints", "tensorboard"):
        shutil.rmtree(out / stale, ignore_errors=True)
    report = device_train.run(run.plan, run.rl, out, run.seed, run.windows, run.perception_steps,
                              run.eval_episodes, config_text=run.config_text)  # fmt: skip
    return _print_report(out, report)


def _adapt(args: argparse.Namespace, overrides: list[str]) -> int:
    """``sim train --from RUN [--device YAML]``: RUN's controller fine-tuned on another device (control/adapt.py)."""
    from sensorimotor.configs.schema import read_yaml
    from sensorimotor.control.config import resolved_yaml

    if args.resume is not None or args.config is not None or args.preset is not None or args.init is not None:
        raise RunFolderError("--from RUN adapts RUN with its own config: drop --resume, --config, --preset and --init")
    from sensorimotor.control import adapt  # heavy: SB3

    out = args.out or args.source.with_name(args.source.name + "-adapted")
    if out.resolve() == args.source.resolve():
        raise RunFolderError(f"--out {out} is the run adapted from; choose another --out")
    if _holds_run(out) and not args.force:
        raise RunFolderError(f"{out} already holds a training run: choose another --out, or pass --force")
    try:
        plan = adapt.prepare(
            args.source, args.device, overrides, adapt.DEFAULT_STEPS if args.steps is None else args.steps
        )
    except adapt.AdaptError as exc:
        raise RunFolderError(str(exc)) from None
    config_text = resolved_yaml(plan.cfg, read_yaml(args.source / "config.yaml").get("presets") or {}, plan.provenance)
    for stale in ("checkpoints", "tensorboard"):
        shutil.rmtree(out / stale, ignore_errors=True)
    shown = ", ".join(f"{k.removeprefix('device.')}={v}" for k, v in plan.values.items()) or "the --set values"
    print(f"sim train: adapting {args.source} (after {plan.checkpoint.steps} steps) to {shown}; "
          f"{plan.cfg.rl.total_timesteps - plan.checkpoint.steps} more steps into {out}")  # fmt: skip
    from sensorimotor.control.train import run  # heavy: torch, SB3

    report = run(plan.cfg, out, None, config_text, plan.checkpoint, adapted_from=args.source)
    return _print_report(out, report)


def _print_report(out: Path, report: dict) -> int:
    print(f"sim train: wrote {out / 'policy.onnx'} and {out / 'report.json'}")
    if "eval" in report:  # the device pipeline's report (control/device_train.py)
        ev, rms = report["eval"], report["perception"]["rms"]
        print(f"  {report['device']}: perception RMS " + ", ".join(f"{k} {v:.2f}" for k, v in rms.items())
              + f"\n  success {ev['success_rate']:.1%} of {ev['episodes']} episodes (upright {ev['upright_rate']:.1%}), "
              f"ONNX parity {max(max(p) for p in report['parity']):.1e}, total {report['seconds']:.0f} s")  # fmt: skip
        return 0
    if "env" in report:
        print(
            f"  {report['env']} ({report['algo']}): mean return {report['mean_return']:.1f} +- {report['std_return']:.1f} "
            f"over {report['episodes']} episodes, ONNX parity {report['onnx_parity_max_abs_diff']:.1e}, "
            f"total {report['seconds_total']:.0f} s"
        )
        return 0
    print(
        f"  IMU angle RMSE {report['imu_angle_rmse_deg']:.2f} deg, image angle RMSE {report['image_angle_rmse_deg']:.2f} deg, "
        f"camera-class accuracy {report['classification_accuracy']:.1%}\n"
        f"  {report['task']} success {report['eval_success_rate']:.1%} of {report['evaluation']['episodes']} episodes, "
        f"ONNX parity {report['onnx_parity_max_abs_diff']:.1e}, total {report['seconds_total']:.0f} s"
    )
    if report.get("heldout_counted"):
        print(f"  held-out zoo: {report['heldout_passed']} of {report['heldout_counted']} devices passed, "
              f"success {report['heldout_success']:.1%} (docs/sim-to-real.md)")  # fmt: skip
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from sensorimotor.configs.schema import DEFAULT_CONFIG
    from sensorimotor.control.config import load_experiment

    overrides = shortcut_overrides(args)
    cfg = load_experiment(args.config or DEFAULT_CONFIG, args.preset, overrides)
    command = " ".join(["sim pretrain", *(["--config", str(args.config)] if args.config else []),
                        *(["--preset", args.preset] if args.preset else []), *[f"--set {o}" for o in overrides],
                        "--out", str(args.out)])  # fmt: skip
    from sensorimotor.control.pretraining import run  # heavy: torch

    summary = run(cfg, args.out, command, ship=args.ship, log=lambda m: print(f"[sim pretrain] {m}", flush=True))
    q = summary["quality"]
    print(
        f"sim pretrain: wrote {args.out / 'encoders.pt'} ({summary['bytes'] / 1e6:.1f} MB), pretrain.json, pretrain.png"
    )
    for key, label in (("imu_angle_rmse_deg", "IMU angle"), ("image_angle_rmse_deg", "image angle")):
        print(
            f"  linear probe, {label}: {q['probe_pretrained'][key]:.2f} deg (random init {q['probe_random_init'][key]:.2f})"
        )
    print(f"  total {summary['seconds_total']:.0f} s")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from sensorimotor.configs.schema import DEFAULT_CONFIG
    from sensorimotor.control.config import load_experiment

    if args.labels is not None and args.labels <= 0:
        raise ConfigError(f"--labels: {args.labels} must be > 0")
    if args.export and args.source is None:
        raise ConfigError("--export needs --from RUN: the controller to re-export comes from the run")
    if args.source is not None:
        if args.init is not None:
            raise ConfigError("--init and --from exclude each other: --from starts from the run's own perception")
        if not (args.source / "config.yaml").is_file() or not (args.source / "perception.pt").is_file():
            raise RunFolderError(f"--from {args.source}: not a sim train run folder (config.yaml or perception.pt "
                                 "missing)")  # fmt: skip
    source = args.config or (args.source / "config.yaml" if args.source else DEFAULT_CONFIG)
    overrides = shortcut_overrides(args)
    cfg = load_experiment(source, args.preset, overrides)
    out = args.out or (args.source / "finetune" if args.source else Path("runs/finetune"))
    from sensorimotor.control.finetuning import run  # heavy: torch

    metrics = run(cfg, out, source_run=args.source, modality=args.modality, labels=args.labels, export=args.export,
                  logs=args.logs, label=args.label_channel,
                  log=lambda m: print(f"[sim finetune] {m}", flush=True))  # fmt: skip
    t = metrics["test"]
    print(f"sim finetune: wrote {out / 'perception.pt'}, metrics.json, finetune.png"
          + (", policy.onnx" if args.export else ""))  # fmt: skip
    print(f"  test angle RMSE: IMU {t['imu_angle_rmse_deg']:.2f} deg, image {t['image_angle_rmse_deg']:.2f} deg, "
          f"fused {t['fused_angle_rmse_deg']:.2f} deg; camera-class accuracy {t['camera_class_accuracy']:.1%}")  # fmt: skip
    return 0


def _eval(args: argparse.Namespace) -> int:
    if args.episodes <= 0:
        raise ConfigError(f"--episodes: {args.episodes} must be > 0")
    from sensorimotor.control.compare import compare  # heavy: torch

    out = args.out or args.runs[0] / "eval"
    compare(args.runs, out, args.episodes, args.seed, not args.nominal_only, not args.no_classical)
    print((out / "results.md").read_text())
    print(f"sim eval: wrote {out / 'results.md'}, {out / 'results.json'} and {out / 'comparison.png'}")
    return 0


def _robustness(args: argparse.Namespace) -> int:
    from sensorimotor.control.config import load_experiment
    from sensorimotor.sim.device_file import read_device_file

    if args.episodes <= 0:
        raise ConfigError(f"--episodes: {args.episodes} must be > 0")
    if len(args.axis or ()) > 2:
        raise ConfigError(f"--axis: at most two (a map over {len(args.axis)} parameters cannot be drawn)")
    for name in ("config.yaml", "policy.onnx"):
        if not (args.run / name).is_file():
            raise RunFolderError(f"{args.run}: not a sim train run folder ({name} missing)")
    values = read_device_file(args.device) if args.device else {}
    cfg = load_experiment(args.run / "config.yaml", None, args.overrides)
    from sensorimotor.control import robustness  # heavy: torch
    from sensorimotor.sim.zoo import with_values

    if values:
        cfg = dataclasses.replace(cfg, device=with_values(cfg.device, values, source=str(args.device)))

    axes = tuple(robustness.parse_axis(a) for a in (args.axis or robustness.DEFAULT_AXES))
    for axis in axes:  # every path checked before any episode runs
        robustness.cell_values(cfg, (axis,), (0,))
    out = args.out or args.run / "robustness"
    print(robustness.centre_line(args.run, cfg, args.episodes), flush=True)
    result = robustness.run(args.run, cfg, axes, args.episodes)
    title = f"{args.run.name}: success by device ({args.episodes} episodes per cell)"
    robustness.write(result, out, title)
    print(robustness.table(result))
    print(f"sim robustness: wrote {out / 'robustness.png'}, robustness.md and robustness.json")
    return 0


def _identify(args: argparse.Namespace) -> int:
    from sensorimotor.configs.schema import DEFAULT_CONFIG, load_section
    from sensorimotor.sim.config import DeviceConfig
    from sensorimotor.sim.furuta import PARAM_NAMES
    from sensorimotor.sim.identify import DEFAULT_FREE, IdentifyError, identify, load_log, plot_fit
    from sensorimotor.sim.identify_report import failure_advice, report_lines, write_result

    free = tuple(n.strip() for n in args.free.split(",") if n.strip()) if args.free else DEFAULT_FREE
    unknown = [n for n in free if n not in PARAM_NAMES]
    if unknown or not free:
        raise ConfigError(f"--free: {unknown[0] if unknown else '(empty)'} is not a device.physics field "
                          f"(known: {', '.join(PARAM_NAMES)})")  # fmt: skip
    if args.out.exists() and not args.force:
        raise RunFolderError(f"--out {args.out} exists: choose another path or pass --force to overwrite it")
    if not args.out.parent.is_dir():
        raise RunFolderError(f"--out {args.out}: folder {args.out.parent} does not exist")
    device = load_section(args.config or DEFAULT_CONFIG, "device", DeviceConfig, overrides=args.overrides)
    try:
        ex = load_log(args.log, device)
        print(f"sim identify: {args.log}: {ex.seconds:.1f} s of samples, {len(ex.volts)} commands; fitting "
              f"{', '.join(free)} and the actuator delay", flush=True)  # fmt: skip
        from tqdm import tqdm

        with tqdm(total=None, desc="identify", unit="step", leave=False, dynamic_ncols=True) as bar:

            def step(message: str) -> None:
                bar.update(1)
                bar.set_description_str(f"identify: {message}")

            result, prob, x, delay = identify(device, ex, free, seed=args.seed, progress=step)
    except IdentifyError as exc:
        print(f"sim identify: {exc}", file=sys.stderr)
        return 2
    for line in report_lines(result):
        print(line)
    advice = failure_advice(result)
    if advice is not None:
        print(f"sim identify: {advice}", file=sys.stderr)
        return 2
    write_result(result, args.out, args.log, device)
    plot_fit(prob, x, delay, args.out.with_suffix(".png"), f"{args.log.name}: logged and simulated")
    print(f"sim identify: wrote {args.out}, {args.out.with_suffix('.png')} and {args.out.with_suffix('.json')}")
    print(f"  next: sim robustness RUN --device {args.out}   (does RUN's policy work on this device?)")
    return 0


def _holds_run(out: Path) -> bool:
    return any((out / name).exists() for name in ("report.json", "checkpoints", "policy.onnx"))


def _sweep(args: argparse.Namespace) -> int:
    from sensorimotor.control.sweep.spec import SweepError, SweepSpec, check, check_address, metrics_of, parse_seeds

    try:
        check_address(args.address)
        if args.resume is not None:
            if args.out is not None or args.grid or args.optuna or args.config or args.preset:
                raise SweepError("--resume DIR keeps the sweep's own arguments: drop --out, --config, --preset, "
                                 "--grid and --optuna")  # fmt: skip
            spec = SweepSpec.load(args.resume)
            if args.twin_runs:  # a twin check added later: finished trials without one get it too
                spec.twin_runs = args.twin_runs
                check(spec, metrics_of(spec.config, spec.preset, spec.overrides))
                spec.save()
        else:
            if args.out is None:
                raise SweepError("--out DIR is required (where the run folders and the summary go)")
            if (args.out / "sweep.json").exists():
                raise SweepError(f"{args.out} already holds a sweep: continue it with --resume {args.out}, or "
                                 "choose another --out")  # fmt: skip
            spec = SweepSpec(
                out=str(args.out.resolve()),  # absolute: Ray runs each trial in a folder of its own
                config=str(args.config.resolve()) if args.config else None, preset=args.preset,
                seeds=parse_seeds(args.seeds), grid=list(args.grid), overrides=list(args.overrides),
                optuna=args.optuna, metric=args.metric, cpus_per_trial=args.cpus_per_trial,
                prune=not args.no_prune, twin_runs=args.twin_runs, inject_fault=args.inject_fault,
            )  # fmt: skip
            check(spec, metrics_of(spec.config, spec.preset, spec.overrides))
            args.out.mkdir(parents=True, exist_ok=True)
            spec.save()
        from sensorimotor.control.sweep.runner import run_sweep  # heavy: Ray

        return run_sweep(spec, args.address, args.resume is not None, args.cpus, args.dashboard)
    except SweepError as exc:
        print(f"sim sweep: {exc}", file=sys.stderr)
        return 2


def _twin(args: argparse.Namespace) -> int:
    from sensorimotor.cli.twin import run_from_args

    if not 0 <= args.inject_garbage <= 1:  # NaN fails both comparisons
        raise ConfigError(f"--inject-garbage: must be a probability in [0, 1], got {args.inject_garbage:g}")

    return run_from_args(args)


if __name__ == "__main__":
    sys.exit(main())
