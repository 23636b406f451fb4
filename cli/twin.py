"""The twin's process: ``python -m sensorimotor.cli.twin`` (what ``sim twin`` and ``hw ... --twin`` start).

It serves the simulated device on a pty (:func:`sensorimotor.sim.twin.serve_forever`) and prints
the port's path as its first line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sensorimotor.cli.common import OneLineParser, add_config_arguments
from sensorimotor.sim.twin import serve_forever


def add_twin_arguments(parser: argparse.ArgumentParser) -> None:
    """The twin's options, shared by ``sim twin`` and ``python -m sensorimotor.cli.twin``."""
    add_config_arguments(parser, "`device` and `task` sections")
    parser.add_argument("--seed", type=int, default=0, help="seed for physics randomization and sensor noise")
    parser.add_argument("--link", type=Path, default=None, help="also create a symlink to the port at this path")
    parser.add_argument("--truth", type=Path, default=None, help="write ground-truth statistics (JSON) here on exit")
    parser.add_argument("--nominal", action="store_true", help="nominal physics (no per-run randomization)")
    parser.add_argument("--inject-garbage", type=float, default=0.0, metavar="P",
                        help="fault injection: before each frame, with probability P, send 1-39 random bytes")  # fmt: skip
    parser.add_argument("--lockstep", action="store_true",
                        help="advance one control period per COMMAND instead of in real time: deterministic, "
                             "as fast as the host")  # fmt: skip
    parser.add_argument("--firmware", type=Path, default=None, metavar="PATH",
                        help="firmware in the loop: PATH (the native build, `make firmware`) speaks the protocol "
                             "on the pty; the simulator plays its sensors and motor")  # fmt: skip
    parser.add_argument("--parent-pid", type=int, default=None, help=argparse.SUPPRESS)  # stop when it is gone


def run_from_args(args: argparse.Namespace) -> int:
    return serve_forever(
        args.config, args.seed, args.link, args.truth, not args.nominal, args.inject_garbage, args.overrides,
        args.lockstep, args.parent_pid, args.firmware,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m sensorimotor.cli.twin", description="Serve the simulated device on a pty.")
    add_twin_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
