"""Safety clamps as pure functions: what is actually sent is what these return."""

from __future__ import annotations

import math
from collections.abc import Sequence


def command_limits(device_min: float, device_max: float, host_limit: float) -> tuple[float, float]:
    """The tighter of the device's actuator range and the host's |V| limit."""
    return max(device_min, -abs(host_limit)), min(device_max, abs(host_limit))


def clamp_command(volts: float, lo: float, hi: float) -> tuple[float, bool]:
    """(volts actually sent, whether it was changed). NaN or inf becomes 0 V (motor off)."""
    if not math.isfinite(volts):
        return 0.0, True
    sent = min(max(volts, lo), hi)
    return sent, sent != volts


def actuator_limits(ranges: Sequence[tuple[float, float]], host_limit: float) -> list[tuple[float, float]]:
    """Per actuator, the tighter of its range (from the device's description) and the host's |V| limit."""
    return [command_limits(lo, hi, host_limit) for lo, hi in ranges]


def clamp_commands(volts: Sequence[float], limits: Sequence[tuple[float, float]]) -> tuple[tuple[float, ...], bool]:
    """(one value per actuator actually sent, whether any was changed).

    A command of the wrong length cannot be trusted at all: every actuator gets 0 V.
    """
    if len(volts) != len(limits):
        return tuple(0.0 for _ in limits), True
    pairs = [clamp_command(float(v), lo, hi) for v, (lo, hi) in zip(volts, limits, strict=False)]
    return tuple(s for s, _ in pairs), any(c for _, c in pairs)
