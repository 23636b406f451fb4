"""Is a finished run healthy? Pure checks of a run summary against the config's thresholds.

``hw run`` exits 1 when any check fails, so a degraded run (too slow, late, lossy, or a
device that did not apply what was sent) cannot pass for a good one in a script or CI.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sensorimotor.hardware.config import HealthConfig


def health_problems(s: Mapping[str, Any], cfg: HealthConfig, rate_hz: float, lockstep: bool = False) -> list[str]:
    """One line per breached threshold (empty: healthy). ``s`` is the loop summary plus link counters.

    ``lockstep``: the twin waits for each command, so rate and latency say nothing; they are not judged.
    """
    problems = []
    if not lockstep:
        problems += _timing_problems(s, cfg, rate_hz)
    frames = max(1, s.get("frames_in", 0) + s.get("frames_lost", 0))
    lost = s.get("frames_lost", 0) + s.get("frames_bad", 0)
    if lost > cfg.max_lost_fraction * frames:
        problems.append(f"{lost} frames lost or corrupted of {frames} (> {cfg.max_lost_fraction:.1%})")
    sent, applied = s.get("commands_sent", 0), s.get("device_commands_applied")
    if applied is None:
        problems.append("the device reported no STATUS counters: cannot confirm it applied the commands")
    elif not s.get("device_acknowledged_stop"):
        problems.append(
            f"the device did not acknowledge STOP (by its last STATUS it had applied {applied} of {sent} commands)"
        )
    elif sent and (sent - applied) > cfg.max_unapplied_fraction * sent:
        problems.append(f"the device applied {applied} of {sent} commands sent (command path losing frames?)")
    if s.get("device_status_timeouts", 0):
        problems.append(f"the device's STATUS heartbeat went silent {s['device_status_timeouts']} time(s)")
    if s.get("device_watchdog_trips", 0):
        problems.append(f"the device's watchdog tripped {s['device_watchdog_trips']} time(s)")
    if s.get("failsafe_cycles", 0) > cfg.max_failsafe_cycles:
        problems.append(f"{s['failsafe_cycles']} cycles on the safe command after sensor stalls")
    return problems


def _timing_problems(s: Mapping[str, Any], cfg: HealthConfig, rate_hz: float) -> list[str]:
    problems = []
    achieved = s.get("achieved_rate_hz", 0.0)
    if achieved < cfg.min_rate_fraction * rate_hz:
        problems.append(f"achieved rate {achieved:.1f} Hz < {cfg.min_rate_fraction:.0%} of {rate_hz:g} Hz")
    cycles = max(1, s.get("cycles", 0) + s.get("missed_cycles", 0))
    if s.get("missed_cycles", 0) > cfg.max_missed_fraction * cycles:
        problems.append(f"{s['missed_cycles']} missed cycles of {cycles} (> {cfg.max_missed_fraction:.1%})")
    p99_ms, limit_ms = s.get("latency_us_p99", 0.0) / 1e3, cfg.max_latency_p99_periods * 1e3 / rate_hz
    if p99_ms > limit_ms:
        problems.append(f"latency p99 {p99_ms:.2f} ms > {limit_ms:.2f} ms ({cfg.max_latency_p99_periods:g} periods)")
    return problems
