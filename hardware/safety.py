"""Safety clamps as pure functions: what is actually sent is what these return."""

from __future__ import annotations

import math


def command_limits(device_min: float, device_max: float, host_limit: float) -> tuple[float, float]:
    """The tighter of the device's actuator range and the host's |V| limit."""
    return max(device_min, -abs(host_limit)), min(device_max, abs(host_limit))


def clamp_command(volts: float, lo: float, hi: float) -> tuple[float, bool]:
    """(volts actually sent, whether it was changed). NaN or inf becomes 0 V (motor off)."""
    if not math.isfinite(volts):
        return 0.0, True
    sent = min(max(volts, lo), hi)
    return sent, sent != volts
