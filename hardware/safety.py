"""Safety as pure functions: clamps, slew limit, failsafe timing, state-based stop. What is sent is what these return."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


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


def slew_limit(
    target: Sequence[float], previous: Sequence[float], max_step: float
) -> tuple[tuple[float, ...], bool]:  # fmt: skip
    """(values moved from ``previous`` toward ``target`` by at most ``max_step`` each, whether any was limited)."""
    # Within reach: the target itself (p + (t - p) can differ from t in the last bit).
    out = tuple(
        t if abs(t - p) <= max_step else p + math.copysign(max_step, t - p)
        for t, p in zip(target, previous, strict=True)
    )
    return out, any(o != t for o, t in zip(out, target, strict=True))


STALL_PERIODS = 1.75  # a frame this many control periods late is a stall: < 2, with room to wake and write


def stale_deadline_ns(last_fresh_ns: int, period_ns: int, in_failsafe: bool) -> int:
    """When the loop must act without a fresh sensor frame.

    Normally ``STALL_PERIODS`` control periods after the last fresh frame (the next frame is
    then most of a period late): the safe command goes out within 2 control periods of the
    last frame, never a model output computed on a stale window. In failsafe the safe
    command is repeated every control period (it also feeds the device's watchdog).
    """
    return last_fresh_ns + (period_ns if in_failsafe else round(STALL_PERIODS * period_ns))


def failsafe_window_ok(period_s: float, device_watchdog_s: float) -> bool:
    """The host must fall back to the safe command before the device's own watchdog would."""
    return STALL_PERIODS * period_s < device_watchdog_s


def state_stop_reason(
    encoders: Sequence[tuple[str, float, float]], tilt_deg: float | None, fall_stop_deg: float
) -> str | None:  # fmt: skip
    """Why the run must stop now, from the measured state, or None.

    ``encoders``: (name, angle in rad, limit in rad) of each bounded encoder, which must stay
    within +-limit (the arm's cable limit); an encoder that turns freely (a wheel) is not listed.
    ``fall_stop_deg`` (0 = off): stop once the estimated tilt from upright (the pendulum's,
    the balancer's pitch) exceeds it (a balance task that has lost its balance).
    """
    for name, angle, limit in encoders:
        if not math.isfinite(angle) or abs(angle) > limit:
            return f"{name} at {angle:+.2f} rad is past its limit +-{limit:g} rad"
    if fall_stop_deg > 0 and tilt_deg is not None and abs(tilt_deg) > fall_stop_deg:
        return f"tilt estimate at {tilt_deg:+.0f} deg from upright is past fall_stop_deg {fall_stop_deg:g}"
    return None


def tilt_deg_from_estimates(estimates: Mapping[str, float], tilt: str | None = None) -> float | None:
    """The model's estimate of the tilt from upright (deg); None if absent.

    ``tilt``: the estimate (rad, 0 upright) the model's metadata names (``tilt_estimate``: the
    device pipeline's models, e.g. the balancer's ``pitch``). Without it, the Furuta's
    pendulum angle from its sin/cos heads: the camera's when it reports ok, else the IMU's.
    """
    if tilt is not None:
        return math.degrees(estimates[tilt]) if tilt in estimates else None
    use_camera = estimates.get("camera_ok", 0.0) > 0.5 and {"img_sin", "img_cos"} <= estimates.keys()
    prefix = "img" if use_camera else "imu"
    if not {f"{prefix}_sin", f"{prefix}_cos"} <= estimates.keys():
        return None
    return math.degrees(math.atan2(estimates[f"{prefix}_sin"], estimates[f"{prefix}_cos"]))
