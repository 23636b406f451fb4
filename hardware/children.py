"""Child processes that die with their parent: the twin, the firmware in the loop, the relay.

A host command killed with SIGKILL leaves no orphaned simulator holding a pty (Linux:
``PR_SET_PDEATHSIG``; elsewhere the child watches its parent's pid itself).
"""

from __future__ import annotations

import contextlib
import ctypes
import signal

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> None:
    """In a child before exec (the twin, the firmware): the kernel sends it SIGTERM when its parent dies, even by kill -9 (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def exit_text(status: int) -> str:
    """``exit status 3`` or ``killed by SIGSEGV`` (subprocess reports a signal as -N)."""
    if status < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-status).name}"
        return f"killed by signal {-status}"
    return f"exit status {status}"
