"""The relay's process: ``python -m sensorimotor.cli.relay PORT`` (a bad cable between a device and the host).

It prints the new pty's path as its first line; :class:`sensorimotor.sim.relay.Relay` does the work.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys

from sensorimotor.sim import relay as relay_module
from sensorimotor.sim.relay import Faults, Relay

FAULTS_HELP = "\n\n".join((relay_module.__doc__ or "").split("\n\n")[1:3])  # what it does; the faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sensorimotor.cli.relay",
        description="Relay a serial device to a new pty, corrupting frames on the way (a bad cable).",
        epilog=FAULTS_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("device_port", help="the device's port, e.g. the twin's /dev/pts/N")
    parser.add_argument("--to-host", default="", help='faults on device -> host frames, e.g. "flip=0.01,dup=0.02"')
    parser.add_argument("--to-device", default="", help='faults on host -> device frames, e.g. "stall=2+0.5"')
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault draws")
    args = parser.parse_args(argv)
    try:
        relay = Relay(args.device_port, Faults.parse(args.to_host), Faults.parse(args.to_device), args.seed)
    except ValueError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"relay: cannot open {args.device_port}: {exc.strerror}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: relay.request_stop())
    print(relay.port, flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the relay; the counts below are its report
        relay.run()
    print(f"relay: to host {relay.to_host.counts}, to device {relay.to_device.counts}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
