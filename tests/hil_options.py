"""Options for tests that drive `hw run` with an untrained model on a shared test machine (hil and install tests).

Those runs test the link (frames, commands, logs, faults), not the controller or the
machine's timing: the arm's cable limit is lifted (an untrained model drives the arm
anywhere) and the timing health thresholds are relaxed (a busy CI core misses cycles).
Health still fails a run that loses frames or whose commands the device did not apply.
"""

from __future__ import annotations

from sensorimotor.hardware.config import LoopConfig

LINK_ONLY = (
    "--set", "loop.arm_limit_rad=100", "--set", "loop.health.min_rate_fraction=0.1",
    "--set", "loop.health.max_missed_fraction=1", "--set", "loop.health.max_latency_p99_periods=100",
    "--set", "loop.health.max_failsafe_cycles=100000",
)  # fmt: skip
LINK_ONLY_LOOP = LoopConfig(arm_limit_rad=100.0)
