"""``hw`` command line: run the control loop on a device (or the twin), replay a log.

Light runtime path: numpy, pyserial, onnxruntime, mcap — no torch, SB3 or gymnasium.
User mistakes (a wrong port, a silent device, a model that does not fit, a bad config
or log) print one line naming the problem and the fix, and exit non-zero.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sensorimotor.cli.common import (
    OneLineParser,
    add_config_arguments,
    add_port_arguments,
    check_firmware_option,
    connected,
)
from sensorimotor.cli.twin_process import TwinProcess
from sensorimotor.configs.schema import ConfigError, load_section
from sensorimotor.hardware import excite as ex
from sensorimotor.hardware.calibration import (
    MAX_OFFSET_DEG,
    MAX_SPREAD_DEG,
    MIN_FRAMES,
    CalibratedPolicy,
    Calibration,
    CalibrationError,
    check_image_model,
    collect,
    file_sha256,
    judge,
)
from sensorimotor.hardware.camera import HostCamera
from sensorimotor.hardware.config import LoopConfig
from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.errors import (
    DeviceNotRespondingError,
    HardwareError,
    Interrupted,
    LinkLostError,
    PortError,
    SafetyStopError,
    SensorTimeoutError,
    Terminated,
)
from sensorimotor.hardware.health import health_problems
from sensorimotor.hardware.live import DEFAULT_PORT as DEFAULT_LIVE_PORT
from sensorimotor.hardware.live import LiveView, check_live
from sensorimotor.hardware.log.mcaplog import (
    TOPIC_DEVICE,
    TOPIC_META,
    TOPIC_SUMMARY,
    LogError,
    LogWriter,
    model_metadata,
)
from sensorimotor.hardware.log.redrive import RecordedCommands, read_recording
from sensorimotor.hardware.loop import ControlLoop, LoopStats
from sensorimotor.hardware.model import LoopPolicy, OnnxPolicy, Policy
from sensorimotor.hardware.monitor import describe, monitor
from sensorimotor.hardware.safety import actuator_limits
from sensorimotor.hardware.transport import SerialTransport

EPILOG = """examples:
  hw run --port /dev/ttyUSB0 --model runs/quick/policy.onnx --rate 100 --duration 10 --record run.mcap
  hw run --twin --model runs/quick/policy.onnx --duration 10 --record run.mcap
  hw replay run.mcap --model runs/quick/policy.onnx
  hw calibrate --port /dev/ttyUSB0 --model runs/full/policy.onnx --out rig.json   # pendulum hanging still
  hw run --port /dev/ttyUSB0 --model runs/full/policy.onnx --calibration rig.json
  hw excite --port /dev/ttyUSB0 --out excite.mcap   # pendulum hanging still; a log for `sim identify`
  hw info --port /dev/ttyUSB0
  hw monitor --twin --duration 5
"""


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="hw", description="Run an exported policy on a serial device, or replay a recorded log.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="{run,replay,excite,calibrate,info,monitor}")
    run = sub.add_parser(
        "run", help="run the fixed-rate control loop against a device",
        description="Handshake with the device, check the model fits it, stream sensors, run the ONNX model at a "
        "fixed rate and send clamped motor commands; optionally record every frame to MCAP. Prints achieved rate, "
        "latency, frames lost and (with --twin) how long the pendulum stayed upright.",
    )  # fmt: skip
    add_port_arguments(run, twin_seed=False)
    run.add_argument("--model", type=Path, required=True, help="policy.onnx exported by `sim train`")
    add_config_arguments(run, "`loop` section, and `device` + `task` for --twin")
    run.add_argument(
        "--rate", type=positive_float, default=None, help="control rate in Hz (default: loop.rate_hz, 100)"
    )
    run.add_argument("--duration", type=positive_float, default=10.0, help="seconds to run (default: %(default)s)")
    run.add_argument("--record", type=Path, default=None, help="write an MCAP log of every frame and command here")
    run.add_argument("--seed", type=int, default=0, help="--twin only: seed of the twin's randomization and noise")
    run.add_argument("--json", type=Path, default=None, help="also write the run summary as JSON here")
    run.add_argument(
        "--calibration", type=Path, default=None, metavar="FILE",
        help="the rig's camera roll from `hw calibrate`: taken out of the logged image angle (img_sin, img_cos)",
    )  # fmt: skip
    run.add_argument(
        "--lockstep", action="store_true",
        help="--twin only: the twin advances one control period per command and the loop acts on each sensor "
             "frame as it comes; deterministic (same seed, same log) and faster than real time",
    )  # fmt: skip
    run.add_argument(
        "--twin-nominal", action="store_true",
        help="--twin only: the twin plays exactly the configured device (with --set), nothing randomized on top "
             "(how a held-out zoo device is run: benchmarks/bench_zoo.py)",
    )  # fmt: skip
    run.add_argument(
        "--camera", default=None, metavar="SOURCE",
        help="the model's image from a camera on the host: /dev/video0, a video file or a folder of images, "
             "cropped, rotated and scaled as loop.camera says (needs OpenCV: sensorimotor[camera])",
    )  # fmt: skip
    run.add_argument(
        "--live", action="store_true",
        help="serve the running loop to Foxglove (IMU, encoders, commands, estimates, camera, health) on a WebSocket; "
             "open ws://127.0.0.1:8765 in the Foxglove app (needs the foxglove-sdk package: sensorimotor[live])",
    )  # fmt: skip
    run.add_argument("--live-port", type=int, default=DEFAULT_LIVE_PORT, help="--live: port (default: %(default)s)")
    run.add_argument("--live-host", default="127.0.0.1",
                     help="--live: address to listen on (default: %(default)s; 0.0.0.0 for other machines)")  # fmt: skip
    run.add_argument(
        "--twin-garbage",
        type=probability,
        default=0.0,
        metavar="P",
        help="--twin only, fault injection: the twin sends random bytes before a frame with probability P",
    )

    replay = sub.add_parser(
        "replay", help="recompute every logged action from the logged sensor frames",
        description="Feed the sensor frames of a recorded log through a model, in recorded order, and compare each "
        "recomputed action with the logged one. Prints the divergence and writes a plot.",
    )  # fmt: skip
    replay.add_argument("log", type=Path, help="MCAP log written by `hw run --record`")
    replay.add_argument("--model", type=Path, default=None, help="policy.onnx to replay through")
    to = replay.add_mutually_exclusive_group()
    to.add_argument("--to", metavar="PORT", default=None,
                    help="instead: drive the device on PORT with the recorded commands, through the same limits and "
                         "safety as hw run (eased in; Ctrl-C stops with 0 V)")  # fmt: skip
    to.add_argument("--twin", action="store_true", help="instead: drive a twin started on a pty with them")
    replay.add_argument("--ease", type=positive_float, default=1.0, help="--to/--twin: seconds of ease-in (default 1)")
    replay.add_argument("--seed", type=int, default=0, help="--twin only: seed of the twin")
    add_config_arguments(replay, "`loop` section for --to, and `device` + `task` for --twin")
    replay.add_argument("--plot", type=Path, default=None, help="plot path (default: next to the log, .replay.png)")
    replay.add_argument(
        "--tolerance",
        type=non_negative_float,
        default=1e-5,
        help="max |divergence| (V) to call it reproduced (default: %(default)s)",
    )
    replay.add_argument("--json", type=Path, default=None, help="also write the replay summary as JSON here")
    looks = {
        "info": ("print the device's description (handshake only)",
                 "Handshake with the device and print what it says it is: IMU, encoder, camera, rates, watchdog "
                 "and actuator ranges. Sends nothing else."),
        "monitor": ("show live sensor values without controlling",
                    "Handshake, start streaming and print the sensor values (means over each interval), arm angle, "
                    "image brightness, frame rates and link counters. Sends no command: the device's watchdog holds "
                    "0 V."),
    }  # fmt: skip
    for name, (short, long) in looks.items():
        look = sub.add_parser(name, help=short, description=long)
        add_port_arguments(look)
        add_config_arguments(look, "`loop` section, and `device` for --twin")
    mon = sub.choices["monitor"]
    mon.add_argument("--duration", type=positive_float, default=10.0, help="seconds (default: %(default)s)")
    mon.add_argument("--every", type=positive_float, default=1.0, help="seconds between lines (default: %(default)s)")
    add_calibrate_parser(sub)
    add_excite_parser(sub)
    return parser


def add_excite_parser(sub: argparse._SubParsersAction) -> None:
    exc = sub.add_parser(
        "excite", help="drive the arm with a safe excitation and record the log for system identification",
        description="With the pendulum hanging still: rest (checks it hangs still), arm (a log chirp plus a seeded "
        "PRBS with a PD term holding the arm around its rest angle), kick (a pulse and the opposite one swing the "
        "pendulum tens of degrees), decay (0 V). Runs through the same control loop and safeguards as hw run and "
        "records an ordinary hw run log to --out for `sim identify`. With --twin the twin starts hanging still "
        "(task.name=swingup, task.hang_deg=0 unless --set otherwise).",
    )  # fmt: skip
    add_port_arguments(exc, twin_seed=False)
    exc.add_argument("--out", type=Path, required=True, help="the MCAP log to write (refused if it exists)")
    exc.add_argument("--force", action="store_true", help="replace --out if it exists")
    add_config_arguments(exc, "`loop` section, and `device` + `task` for --twin")
    exc.add_argument(
        "--duration", type=positive_float, default=ex.DEFAULT_DURATION_S,
        help=f"seconds, {ex.MIN_DURATION_S:g} to {ex.MAX_DURATION_S:g} (default: %(default)s)",
    )  # fmt: skip
    exc.add_argument(
        "--amplitude", type=positive_float, default=ex.DEFAULT_AMPLITUDE_V, metavar="V",
        help=f"peak of the arm excitation, at most {ex.MAX_AMPLITUDE_V:g} V (default: %(default)s)",
    )  # fmt: skip
    exc.add_argument("--seed", type=int, default=0, help="seed of the PRBS, and with --twin of the twin")
    exc.add_argument("--json", type=Path, default=None, help="also write the summary as JSON here")
    exc.add_argument(
        "--twin-nominal", action="store_true",
        help="--twin only: the twin plays exactly the configured device (with --set), nothing randomized on top",
    )  # fmt: skip


def add_calibrate_parser(sub: argparse._SubParsersAction) -> None:
    cal = sub.add_parser(
        "calibrate", help="measure the camera's mount roll with the pendulum hanging still",
        description="Handshake, stream without commanding (the device's watchdog holds 0 V) and run the model on "
        "every camera frame while the pendulum hangs still. The median of its image angle minus hanging is the "
        "camera's roll on its mount; it is written to --out for `hw run --calibration`. Refused, naming why: a "
        "pendulum that moves, one that does not hang, too few frames the camera head calls ok "
        "(docs/perception.md, 'Calibrating the camera on a rig').",
    )  # fmt: skip
    add_port_arguments(cal)
    cal.add_argument("--model", type=Path, required=True, help="policy.onnx with a camera head (sim train's)")
    add_config_arguments(cal, "`loop` section, and `device` + `task` for --twin")
    cal.add_argument("--out", type=Path, default=Path("calibration.json"), help="where (default: %(default)s)")
    cal.add_argument("--force", action="store_true", help="replace --out if it exists")
    cal.add_argument("--duration", type=positive_float, default=3.0, help="seconds of frames (default: %(default)s)")
    cal.add_argument("--min-frames", type=positive_int, default=MIN_FRAMES,
                     help="ok camera frames needed at least (default: %(default)s)")  # fmt: skip
    cal.add_argument("--max-spread-deg", type=positive_float, default=MAX_SPREAD_DEG,
                     help="robust spread of the image angle above which the pendulum counts as moving "
                          "(default: %(default)s)")  # fmt: skip
    cal.add_argument("--max-offset-deg", type=positive_float, default=MAX_OFFSET_DEG,
                     help="roll above which the pendulum counts as not hanging (default: %(default)s)")  # fmt: skip


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (``nan``, ``inf`` and ``0`` are refused with a clear message)."""
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def probability(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    value = _finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1], got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _firmware_named(args: argparse.Namespace, exc: Exception) -> str:
    """With ``--twin --firmware``, a silent or vanished port is the firmware's doing: say which firmware."""
    firmware = getattr(args, "firmware", None)
    if firmware is None or str(firmware) in str(exc) or not isinstance(exc, (DeviceNotRespondingError, PortError)):
        return str(exc)
    return f"--firmware {firmware} did not answer the handshake: {exc}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C stops every command, even one started in the background from a script, which
    # inherits SIGINT ignored (Python then installs no KeyboardInterrupt handler of its own).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        commands = {
            "run": _run, "replay": _replay, "excite": _excite, "calibrate": _calibrate, "info": _info, "monitor": _monitor,
        }  # fmt: skip
        return commands[args.command](args)
    except (HardwareError, ConfigError, LogError) as exc:
        print(f"hw {args.command}: error: {_firmware_named(args, exc)}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print(f"hw {args.command}: interrupted", file=sys.stderr)
        return 130


# ---------------------------------------------------------------------------- run


def _check_output_paths(*paths: Path | None) -> None:
    """Refuse, before any work, an output path that cannot be written (missing folder, no permission)."""
    for path in paths:
        if path is None:
            continue
        if not path.parent.is_dir():
            raise ConfigError(f"{path}: folder {path.parent} does not exist; create it or choose another path")
        if path.is_dir():
            raise ConfigError(f"{path}: is a folder; give a file path")
        if not os.access(path if path.exists() else path.parent, os.W_OK):
            raise ConfigError(f"{path}: not writable (permission denied); choose another path")


#: The signals that end a run safely (docs/protocol.md, section 5): SIGINT exits 130, SIGTERM and SIGHUP 143.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _stop_signals_raise() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt, SIGTERM and SIGHUP :class:`Terminated`, in the main thread, once.

    Installed explicitly, whatever was inherited: `hw run ... &` from a script starts with
    SIGINT ignored and `nohup` with SIGHUP ignored, and Python installs no handler for a
    signal it inherits ignored, so such a run would otherwise ignore Ctrl-C and run on.
    """

    def handler(signum: int, frame: object) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not interrupt the wind-down
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(f"stopped by {signal.Signals(signum).name}: sent 0 V and STOP, log closed")

    old = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _run(args: argparse.Namespace) -> int:
    loop_cfg = load_section(args.config, "loop", LoopConfig, overrides=args.overrides)
    rate = args.rate or loop_cfg.rate_hz
    _check_output_paths(args.record, args.json)
    policy: Policy = OnnxPolicy(args.model)  # checked before anything is sent to a device
    _check_twin_options(args)
    if args.lockstep and not args.twin:
        raise ConfigError("--lockstep needs --twin: only the simulated device can wait for each command")
    if args.live:
        check_live(args.live_host, args.live_port)  # before the device is touched
    plan = RunPlan.for_model(args)
    if args.camera is not None:
        plan.camera = _open_camera(args.camera, policy, loop_cfg)  # opened and checked before the device is touched
        plan.meta["camera"] = {"source": args.camera, **dataclasses.asdict(loop_cfg.camera)}
    if args.calibration is not None:
        cal = Calibration.load(args.calibration)
        policy = CalibratedPolicy(policy, cal, str(args.calibration))  # checked against the device at the handshake
        plan.meta["calibration"] = cal.to_dict()  # replay takes the same roll out of its image estimate
        for warning in cal.model_warnings(args.model, args.calibration):
            print(f"hw run: warning: {warning}", file=sys.stderr)
    return _drive(args, policy, loop_cfg, rate, plan)


def _open_camera(source: str, policy: Policy, loop_cfg: LoopConfig) -> HostCamera:
    camera = policy.spec.camera
    if camera is None or not policy.uses_image:
        raise ConfigError(
            f"--camera {source}: the model takes no image; drop --camera or use a model with a camera head"
        )
    return HostCamera(source, (camera.height, camera.width), camera.rate_hz, loop_cfg.camera)


def _check_twin_options(args: argparse.Namespace) -> None:
    if args.twin_nominal and not args.twin:
        raise ConfigError("--twin-nominal needs --twin: it sets how the simulated device is drawn")
    check_firmware_option(args)


def _print_and_save(summary: dict, stopped: HardwareError | None, args: argparse.Namespace) -> None:
    _print_summary(summary, stopped)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


@dataclass
class RunPlan:
    """What a command that drives the loop (hw run, hw replay --to, hw excite) adds to the common run."""

    model: str  # /run/meta's `model`: the ONNX model, or what stands in for one
    log_metadata: dict[str, str] = field(default_factory=dict)  # the log's metadata record (the port is added)
    meta: dict[str, Any] = field(default_factory=dict)  # more /run/meta fields
    prepare: Callable[[ControlLoop], None] | None = None  # after the loop is built, before streaming starts
    # print and save the summary (it may still change the summary's exit_code); hw run's by default
    report: Callable[[dict, HardwareError | None, argparse.Namespace], None] = _print_and_save
    camera: HostCamera | None = None  # hw run --camera: the model's image from the host

    @classmethod
    def for_model(cls, args: argparse.Namespace) -> RunPlan:
        """hw run's: the model's path, and its hash and ONNX metadata in the log."""
        return cls(str(args.model), model_metadata(args.model) if args.record else {})


def _drive(
    args: argparse.Namespace, policy: LoopPolicy, loop_cfg: LoopConfig, rate: float, plan: RunPlan
) -> int:  # fmt: skip
    """Run ``policy`` on the port (or a twin) with every safeguard, print and save the summary; the exit status."""
    with _stop_signals_raise():
        twin = (
            TwinProcess(
                args.config,
                args.seed,
                args.twin_garbage,
                args.overrides,
                args.lockstep,
                args.twin_nominal,
                args.firmware,
            )
            if args.twin
            else None
        )
        try:
            summary, stopped = _run_on_port(twin.port if twin else args.port, policy, loop_cfg, rate, args, plan)
        finally:
            truth = twin.stop() if twin else {}
        if twin:
            summary["twin"] = truth
        plan.report(summary, stopped, args)
    return int(summary["exit_code"])


def _run_on_port(
    port: str, policy: LoopPolicy, loop_cfg: LoopConfig, rate: float, args: argparse.Namespace, plan: RunPlan
) -> tuple[dict, HardwareError | None]:  # fmt: skip
    """Handshake, check, stream, run; (summary, the error that stopped the run early or None).

    Errors before streaming (no answer, wrong model) propagate. Once streaming, a stop
    (sensor timeout, safety stop, SIGTERM, Ctrl-C, a vanished port) still ends with 0 V,
    STOP, the device's counters and a closed log, and is returned with the summary.
    """
    transport = SerialTransport(port, loop_cfg.baudrate)
    recorder = (
        LogWriter(args.record, metadata={**plan.log_metadata, "port": port}, backend="process", batched=True)
        if args.record
        else None
    )  # logging in a child process: it never holds the loop's GIL (hardware/log/process.py)
    client = DeviceClient(transport, recorder)
    stopped: HardwareError | None = None
    try:
        spec = client.connect(loop_cfg.handshake_timeout_s)
        if plan.camera is not None:  # the model's camera is on the host: the device need not have one
            spec = client.spec = dataclasses.replace(spec, camera=plan.camera.described)
        policy.check_device(spec, rate)
        limits = actuator_limits([(a.min, a.max) for a in spec.actuators], loop_cfg.v_limit)
        if recorder is not None:
            recorder.write_json(TOPIC_DEVICE, {"spec": spec.to_dict(), "limits": limits,
                                               "slew_step_v": loop_cfg.slew_v_per_s / rate}, log_time_ns=client.now_ns())  # fmt: skip
            meta = {"model": plan.model, "rate_hz": rate, "duration_s": args.duration, "port": port,
                    "twin": bool(args.twin), **plan.meta}  # fmt: skip
            recorder.write_json(TOPIC_META, meta, log_time_ns=client.now_ns())
        loop = ControlLoop(client, policy, rate, limits, loop_cfg, recorder)
        loop.progress = _status_line if sys.stderr.isatty() else None
        loop.reopen = lambda: SerialTransport(port, loop_cfg.baudrate)
        if getattr(args, "live", False):
            loop.live = LiveView(spec, args.live_host, args.live_port)
            print(f"hw run: live view on ws://{args.live_host}:{loop.live.port} (Foxglove: Open connection)")
        if plan.prepare is not None:
            plan.prepare(loop)
        if plan.camera is not None:
            assert spec.camera is not None
            loop.use_camera(plan.camera, loop_cfg.camera.stall_periods / spec.camera.rate_hz)
        client.start()
        if plan.camera is not None:
            plan.camera.start()
        try:
            if args.lockstep:
                loop.run_lockstep(args.duration)
            else:
                loop.run(args.duration)
        except (SensorTimeoutError, SafetyStopError, Terminated, LinkLostError) as exc:
            stopped = exc
        except KeyboardInterrupt:
            stopped = Interrupted("interrupted (Ctrl-C): sent 0 V and STOP, log closed")
        finally:
            loop.finish()
            if loop.live is not None:
                loop.live.close()
            if plan.camera is not None:
                plan.camera.close()
            if loop.progress is not None:
                print(file=sys.stderr)  # end the status line
        d = client.decoder.stats
        summary = {
            "port": port, "device": spec.name, "duration_s": args.duration, "rate_hz": rate,
            **loop.stats.summary(1.0 / rate), "frames_in": client.stats.frames_in, "frames_out": client.stats.frames_out,
            "frames_lost": client.stats.frames_lost, "frames_bad": d.frames_bad, "garbage_bytes": d.bytes_discarded,
            "frames_duplicated": loop.windows.duplicates, "frames_out_of_order": loop.windows.out_of_order,
            "sensor_gaps": loop.windows.gaps, "reconnects": loop.stats.reconnects,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "stopped_by": str(stopped) if stopped else None,
            "record": str(args.record) if args.record else None,
            "live": None if loop.live is None else {"port": loop.live.port, "published": loop.live.published},
            "camera": None if plan.camera is None else {
                "source": plan.camera.source, "frames_read": plan.camera.frames_read, "frames_used": loop.camera_seq,
                "device_images_ignored": loop.device_images_ignored},
        }  # fmt: skip
        summary["health_problems"] = problems = health_problems(summary, loop_cfg.health, rate, args.lockstep)
        summary["exit_code"] = stopped.exit_code if stopped else (1 if problems else 0)
        if recorder is not None:
            recorder.write_json(TOPIC_SUMMARY, summary, log_time_ns=client.now_ns())
        return summary, stopped
    finally:
        if recorder is not None:
            recorder.close()
        client.transport.close()  # after a reconnect, not the transport we opened


def _status_line(stats: LoopStats, elapsed_s: float, duration_s: float, prefix: str = "") -> None:
    """The live one-line status on a terminal (overwritten in place once a second)."""
    lat = sorted(stats.latency_ns[-200:]) or [0]
    print(
        f"\r  {prefix}{elapsed_s:5.1f}/{duration_s:.0f} s  {stats.cycles / max(elapsed_s, 1e-9):7.1f} Hz  "
        f"latency p50 {lat[len(lat) // 2] / 1e6:5.2f} ms  missed {stats.missed}  safe {stats.safe_commands}  "
        f"watchdog trips {stats.watchdog_trips}   ",
        end="", file=sys.stderr, flush=True,
    )  # fmt: skip


def _print_summary(s: dict, stopped: HardwareError | None) -> None:
    print(f"hw run: {s['device']} on {s['port']}, {s['duration_s']:.1f} s at {s['rate_hz']:.0f} Hz")
    if stopped is not None:
        print(f"  STOPPED EARLY: {stopped}")
    _print_link(s)
    if s.get("record"):
        print(f"  recorded to {s['record']}")
    twin = s.get("twin")
    if twin and "twin_error" in twin:
        print(f"  twin: {twin['twin_error']}")
    elif twin:
        print(f"  twin: {twin.get('verdict', 'no verdict')}; {twin.get('details', '')}")
        ended = twin.get("firmware_exit")
        if ended:  # the host saw only silence; the twin knows why
            said = f" (it said: {ended['said'].splitlines()[-1]})" if ended.get("said") else ""
            print(f"  the firmware in the loop ended during the run: {ended['text']}{said}")
    _print_health(s)


def _print_health(s: dict) -> None:
    problems = s.get("health_problems") or []
    print("  health: " + ("OK" if not problems else "UNHEALTHY: " + "; ".join(problems)))


def _print_link(s: dict) -> None:
    """The loop's and the link's lines of a summary: rate, latency, frames, the device's counters, failsafe."""
    print(f"  achieved rate {s['achieved_rate_hz']:.1f} Hz over {s['cycles']} cycles, {s['missed_cycles']} missed; "
          f"{s['commands']} model commands ({s['clamped']} clamped, {s['slew_limited']} slew-limited), "
          f"{s['safe_commands']} safe")  # fmt: skip
    print(f"  latency sensor->command p50 {s['latency_us_p50'] / 1e3:.2f} ms, p99 {s['latency_us_p99'] / 1e3:.2f} ms, "
          f"max {s['latency_us_max'] / 1e3:.2f} ms; jitter p99 {s['jitter_us_p99'] / 1e3:.2f} ms; "
          f"compute p50 {s['compute_us_p50']:.0f} us")  # fmt: skip
    print(f"  frames in {s['frames_in']}, lost {s['frames_lost']}, bad {s['frames_bad']}, garbage bytes "
          f"{s['garbage_bytes']}, duplicated {s['frames_duplicated']}, out of order {s['frames_out_of_order']}")  # fmt: skip
    applied = s["device_commands_applied"]
    print(f"  device: applied {'?' if applied is None else applied} of {s['commands_sent']} commands sent, "
          f"watchdog trips {s['device_watchdog_trips']}, "
          f"{'acknowledged STOP' if s['device_acknowledged_stop'] else 'did NOT acknowledge STOP'}")  # fmt: skip
    if s.get("reconnects"):
        print(f"  the port vanished and came back {s['reconnects']} time(s): reconnected, handshake, resumed")
    if s["failsafe_events"]:
        print(f"  failsafe: {s['failsafe_events']} sensor stall(s), {s['failsafe_cycles']} safe cycles, "
              f"longest gap {s['max_stale_ms']:.0f} ms")  # fmt: skip


# ---------------------------------------------------------------------------- excite


def _excite(args: argparse.Namespace) -> int:
    """``hw excite``: the excitation (hardware/excite.py) in the model's place in hw run's loop; the exit status."""
    loop_cfg = load_section(args.config, "loop", LoopConfig, overrides=args.overrides)
    schedule = ex.Schedule.build(args.duration, args.amplitude, args.seed)  # duration and amplitude, or exit 2
    _check_twin_options(args)
    _check_output_paths(args.out, args.json)
    if args.out.exists() and not args.force:
        raise ex.ExciteError(f"{args.out} exists; pass --force to replace it, or choose another --out")
    overrides = ex.twin_overrides(args.overrides) if args.twin else args.overrides
    rate = loop_cfg.rate_hz
    policy = ex.ExcitationPolicy(schedule, rate, loop_cfg.arm_limit_rad)

    def prepare(loop: ControlLoop) -> None:
        policy.attach(loop.client.now_ns, loop.recorder)
        if loop.progress is not None:
            loop.progress = lambda stats, elapsed, duration: _status_line(
                stats, elapsed, duration, f"{policy.phase or 'start':<5}  "
            )

    plan = RunPlan(
        "hw excite (no model)", {ex.METADATA_KEY: schedule.to_json()}, {"excite": schedule.to_dict()}, prepare,
        lambda summary, stopped, _: _excite_report(summary, stopped, args, schedule),
    )  # fmt: skip
    run_args = argparse.Namespace(
        port=args.port, twin=args.twin, record=args.out, json=args.json, lockstep=False, duration=schedule.duration_s,
        config=args.config, overrides=overrides, seed=args.seed, twin_garbage=0.0, twin_nominal=args.twin_nominal,
        firmware=args.firmware,
    )  # fmt: skip
    return _drive(run_args, policy, loop_cfg, rate, plan)


def _excite_report(
    s: dict, stopped: HardwareError | None, args: argparse.Namespace, schedule: ex.Schedule
) -> None:  # fmt: skip
    """Print the excitation's summary, judge its log (the arm moved), save the JSON; may set the exit status to 2."""
    if isinstance(stopped, ex.NotHangingError):  # refused at rest: nothing moved
        print(f"hw excite: error: {stopped}", file=sys.stderr)
        report = None
    else:
        report = ex.analyse_log(args.out)
        print(f"hw excite: {s['device']} on {s['port']}, {schedule.duration_s:.1f} s at {s['rate_hz']:.0f} Hz, "
              f"arm amplitude {schedule.amplitude_v:g} V, seed {schedule.seed}")  # fmt: skip
        if stopped is not None:
            print(f"  STOPPED EARLY: {stopped}")
        for line in ex.report_lines(report):
            print(line)
        _print_link(s)
        twin = s.get("twin")
        if twin:
            print(f"  twin: max |theta| {twin.get('max_abs_theta_rad', 0):.2f} rad; its physics (what identification "
                  f"should recover) in --json under twin.physics")  # fmt: skip
        _print_health(s)
        if report.problem is not None:
            print(f"  log: {args.out} is kept but is NOT usable for identification")
            if s["exit_code"] in (0, 1):
                s["exit_code"] = 2
                print(f"hw excite: error: {report.problem}; the log {args.out} is kept but is not usable",
                      file=sys.stderr)  # fmt: skip
        elif stopped is not None:
            print(f"  log: {args.out} (partial: the run stopped early)")
        else:
            print(f"  log: {args.out}, for `sim identify {args.out}`")
    s["excite"] = {
        "schedule": schedule.to_dict(),
        **(report.to_dict() if report else {"usable": False}),
        "log": str(args.out),
    }
    if args.json:
        args.json.write_text(json.dumps(s, indent=2))


# ---------------------------------------------------------------------------- replay


def _redrive(args: argparse.Namespace) -> int:
    """``hw replay LOG --to PORT``: the recorded commands through the ordinary loop (:mod:`.redrive`)."""
    loop_cfg = load_section(args.config, "loop", LoopConfig, overrides=args.overrides)
    _check_output_paths(args.json)
    recording = read_recording(args.log)
    policy = RecordedCommands(recording, args.ease)
    run_args = argparse.Namespace(
        port=args.to, twin=args.twin, model=args.log, record=None, json=args.json, lockstep=False,
        duration=len(recording.commands) / recording.rate_hz, config=args.config, overrides=args.overrides,
        seed=args.seed, twin_garbage=0.0, twin_nominal=False, firmware=None,
    )  # fmt: skip
    print(f"hw replay: driving {len(recording.commands)} recorded commands at {recording.rate_hz:g} Hz "
          f"({args.ease:g} s ease-in)")  # fmt: skip
    return _drive(run_args, policy, loop_cfg, recording.rate_hz, RunPlan.for_model(run_args))


def _replay(args: argparse.Namespace) -> int:
    from sensorimotor.hardware.log.replay import plot_replay, replay

    if args.to or args.twin:
        return _redrive(args)
    if args.model is None:
        raise ConfigError(
            "hw replay needs --model (to recompute the actions), or --to PORT / --twin (to re-drive them)"
        )
    _check_output_paths(args.json, args.plot)
    policy = OnnxPolicy(args.model)
    t0 = time.perf_counter()
    result = replay(args.log, policy)
    div = result.max_divergence
    plot = args.plot or args.log.with_suffix(".replay.png")
    rate = float(policy.spec.control_rate_hz)
    plot_replay(result, policy.estimate_names, plot, rate, policy.spec.encoders[0].cpr)
    ok = div <= args.tolerance and result.state_divergence <= args.tolerance
    print(f"hw replay: {len(result.cycles)} commands recomputed from {result.frames} logged frames "
          f"in {time.perf_counter() - t0:.1f} s")  # fmt: skip
    print(
        f"  max |replayed - logged| = {div:.3g} V ({'reproduced' if ok else 'DIVERGED'}, tolerance {args.tolerance:g} V)"
    )
    if policy.state_names:
        print(f"  model state ({', '.join(policy.state_names)}): max |replayed - logged| = "
              f"{result.state_divergence:.3g} over {result.state_checked} cycles")  # fmt: skip
    print(f"  plot: {plot}")
    if result.warning:
        print(f"  WARNING: {result.warning}")
    if args.json:
        args.json.write_text(json.dumps({"commands": len(result.cycles), "frames": result.frames,
                                         "bad_frames": result.bad_frames, "max_divergence_v": div,
                                         "reproduced": ok, "tolerance_v": args.tolerance, "plot": str(plot),
                                         "state_divergence": result.state_divergence,
                                         "state_checked": result.state_checked,
                                         "truncated": result.truncated, "warning": result.warning}, indent=2))  # fmt: skip
    return 0 if ok else 1


# ---------------------------------------------------------------------------- look at a device


def _info(args: argparse.Namespace) -> int:
    with connected(args) as (client, spec):
        print(describe(spec, client.transport.name))
    return 0


def _monitor(args: argparse.Namespace) -> int:
    with connected(args) as (client, spec):
        print(describe(spec, client.transport.name))
        monitor(client, spec, args.duration, args.every)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    """``hw calibrate``: measure, judge, write the file; the exit status."""
    policy = OnnxPolicy(args.model)
    check_image_model(policy)
    if args.out.exists() and not args.force:
        raise CalibrationError(f"{args.out} exists; pass --force to replace it, or choose another --out")
    if not args.out.parent.is_dir():
        raise CalibrationError(f"cannot write {args.out}: folder {args.out.parent} does not exist; create it first")
    if args.twin:  # the simulated rig hangs still, as a user leaves a real one; --set can still change that
        args.overrides = ["task.name=swingup", "task.hang_deg=0", *args.overrides]
    truth: dict[str, Any] = {}
    with connected(args, truth) as (client, spec):
        policy.check_device(spec)
        print(f"calibrating the camera's roll on '{spec.name}' at {client.transport.name}: keep the pendulum "
              f"hanging still for {args.duration:g} s (no command is sent; the watchdog holds 0 V)", flush=True)  # fmt: skip
        angles, ok = collect(client, spec, policy, args.duration)
        port = client.transport.name
    verdict = judge(angles, ok)
    why = verdict.refusal(args.min_frames, args.max_spread_deg, args.max_offset_deg)
    if why is not None:
        raise CalibrationError(why)
    cal = Calibration(
        verdict.roll_deg, verdict.spread_deg, verdict.frames, verdict.ok_frames, spec.to_dict(), str(args.model),
        file_sha256(args.model), port, time.time(), truth.get("image_roll_deg"),
    )  # fmt: skip
    try:
        args.out.write_text(cal.to_json() + "\n")
    except OSError as exc:
        raise CalibrationError(f"cannot write {args.out}: {exc.strerror}; choose another --out") from None
    print(f"camera roll {cal.roll_deg:+.2f} deg (spread {cal.spread_deg:.2f} deg over {cal.ok_frames} of "
          f"{cal.frames} frames) -> {args.out}; use it with `hw run --calibration {args.out}`")  # fmt: skip
    if cal.twin_roll_deg is not None:
        print(f"  the twin's camera really has {cal.twin_roll_deg:+.2f} deg: "
              f"off by {cal.roll_deg - cal.twin_roll_deg:+.2f} deg")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
