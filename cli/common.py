"""What every command line shares: one-line usage errors, ``--config``/``--set``, the port or twin options.

:func:`connected` opens what those options name (a serial port, or a twin started on a pty,
optionally with the C firmware in the loop), performs the handshake and closes it all on the way
out; ``hw info``, ``hw monitor`` and ``hw calibrate`` stand on it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sensorimotor.cli.twin_process import TwinProcess
from sensorimotor.configs.schema import DEFAULT_CONFIG, ConfigError, load_section
from sensorimotor.hardware.config import LoopConfig
from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.spec import DeviceSpec
from sensorimotor.hardware.transport import SerialTransport


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, like every other user mistake.

    argparse prints its whole usage block before the error; here it is
    ``hw run: error: argument --rate: ... (see hw run --help)`` on stderr, exit status 2.
    Subcommand parsers are of the same class (argparse makes them with ``type(self)``).
    """

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_config_arguments(parser: argparse.ArgumentParser, sections: str) -> None:
    """``--config`` and repeatable ``--set``, shared by every command that reads a config."""
    parser.add_argument(
        "--config", type=Path, default=None,
        help=f"YAML config ({sections}); default: the furuta.yaml shipped with sensorimotor ({DEFAULT_CONFIG})",
    )  # fmt: skip
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="A.B.C=VALUE",
        help="override one config field, value in YAML syntax, validated like the file; repeatable "
        "(e.g. --set device.stream_rate_hz=200 --set device.randomization.action_delay_substeps=[0,4])",
    )  # fmt: skip


def add_shortcut(parser: argparse.ArgumentParser, flag: str, path: str, help: str, **kwargs: Any) -> None:
    """A flag that is short for ``--set PATH=VALUE``: :func:`overrides` turns it into that item."""
    action = parser.add_argument(flag, default=None, help=f"{help} (same as --set {path}=...)", **kwargs)
    known = parser.get_default("shortcuts") or {}
    parser.set_defaults(shortcuts={**known, action.dest: path})


def overrides(args: argparse.Namespace) -> list[str]:
    """The command's ``--set`` items, then its shortcut flags that were given, as ``--set`` items (they win)."""
    shortcuts: dict[str, str] = getattr(args, "shortcuts", None) or {}
    given = [f"{path}={getattr(args, dest)}" for dest, path in shortcuts.items() if getattr(args, dest) is not None]
    return [*args.overrides, *given]


def add_port_arguments(parser: argparse.ArgumentParser, twin_seed: bool = True) -> None:
    """Where the device is: ``--port`` or ``--twin``, exactly one; ``--firmware``; ``--seed`` of the twin unless
    the command has a ``--seed`` of its own (``twin_seed=False``)."""
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the device, e.g. /dev/ttyUSB0")
    where.add_argument("--twin", action="store_true", help="start the simulated device on a pty and use that port")
    if twin_seed:
        parser.add_argument("--seed", type=int, default=0, help="--twin only: seed of the twin")
    add_firmware_argument(parser)


def add_firmware_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--firmware", type=Path, default=None, metavar="PATH",
        help="--twin only: the C firmware in the loop (its native build, `make firmware`) speaks on the twin's pty "
             "and the simulator plays its sensors and motor",
    )  # fmt: skip


def check_firmware_option(args: argparse.Namespace) -> None:
    """--firmware needs --twin, and an executable (checked here so the user gets one line before anything starts)."""
    firmware = getattr(args, "firmware", None)
    if firmware is None:
        return
    if not args.twin:
        raise ConfigError("--firmware needs --twin: it is the twin's firmware in the loop")
    if not (firmware.is_file() and os.access(firmware, os.X_OK)):
        raise ConfigError(f"--firmware {firmware}: no such executable; `make firmware` builds the native one")


@contextlib.contextmanager
def connected(
    args: argparse.Namespace, truth: dict[str, Any] | None = None
) -> Iterator[tuple[DeviceClient, DeviceSpec]]:
    """Open the port (or a twin), handshake, and close everything on the way out; a twin's ground truth into ``truth``."""
    loop_cfg = load_section(args.config, "loop", LoopConfig, overrides=args.overrides)
    check_firmware_option(args)
    twin = TwinProcess(args.config, args.seed, overrides=args.overrides, firmware=args.firmware) if args.twin else None
    try:
        transport = SerialTransport(twin.port if twin else args.port, loop_cfg.baudrate)
        try:
            client = DeviceClient(transport)
            yield client, client.connect(loop_cfg.handshake_timeout_s)
        finally:
            transport.close()
    finally:
        if twin:
            reported = twin.stop()
            if truth is not None:
                truth.update(reported)
