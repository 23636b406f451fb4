"""The twin's ground truth (what the host cannot see) and its verdict on a run, in words.

Every device's twin fills :class:`TwinTruth`; a device adds what only it has (the Furuta's
``Truth`` in sim/twin_physics.py). The twin writes it as JSON (``--truth``) with the verdict
and a line of details, which ``hw run`` prints without knowing the device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TwinTruth:
    """Ground truth every twin reports when it stops."""

    task: str = "balance"
    streaming_s: float = 0.0
    upright_s: float = 0.0
    upright_whole_run: bool = True
    success: bool = False  # by the task's criterion (docs/tasks.md), so far
    failure: str | None = None  # why not, in words, when the task says more than "fell"
    commands_applied: int = 0
    max_abs_volts: float = 0.0  # the largest voltage commanded to an actuator (after the clamps)
    frames_sent: int = 0
    frames_dropped: int = 0
    watchdog_trips: int = 0
    bad_frames_received: int = 0
    garbage_bytes_injected: int = 0
    # the physical parameters this episode played (the config's device.physics names): what identification must recover
    physics: dict[str, float] = field(default_factory=dict)


def twin_verdict(truth: Mapping[str, Any]) -> str:
    """E.g. "swingup: success (upright after 2.31 s)", "balance: FAILED (arm past its cable limit)"."""
    task = truth.get("task", "balance")
    if truth.get("success"):
        ttu = truth.get("time_to_upright_s")
        when = f" (upright after {ttu:.2f} s)" if task == "swingup" and ttu is not None else ""
        return f"{task}: success{when}"
    if truth.get("failure"):
        why = truth["failure"]
    elif truth.get("arm_past_limit"):
        why = "arm past its cable limit"
    elif task == "balance":
        why = "fell"
    else:
        why = "not swung up and held"
    return f"{task}: FAILED ({why})"
