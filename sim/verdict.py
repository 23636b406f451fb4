"""The twin's verdict on a run, in words, from its ground truth (``Truth`` as a dict: ``--truth``, ``hw run --json``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def twin_verdict(truth: Mapping[str, Any]) -> str:
    """E.g. "swingup: success (upright after 2.31 s)", "balance: FAILED (arm past its cable limit)"."""
    task = truth.get("task", "balance")
    if truth.get("success"):
        ttu = truth.get("time_to_upright_s")
        when = f" (upright after {ttu:.2f} s)" if task == "swingup" and ttu is not None else ""
        return f"{task}: success{when}"
    if truth.get("arm_past_limit"):
        why = "arm past its cable limit"
    elif task == "balance":
        why = "fell"
    else:
        why = "not swung up and held"
    return f"{task}: FAILED ({why})"
