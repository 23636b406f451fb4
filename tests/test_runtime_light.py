"""The runtime path (hw run, hw replay, hw calibrate, hw excite, the twin) imports no torch, SB3, gymnasium or ray."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "stable_baselines3", "gymnasium", "ray")


def test_runtime_modules_do_not_import_the_training_stack() -> None:
    code = (
        "import sys\n"
        "import sensorimotor.cli.hw, sensorimotor.hardware.calibration, sensorimotor.hardware.excite, sensorimotor.hardware.loop, sensorimotor.hardware.log.replay, sensorimotor.hardware.device, sensorimotor.hardware.model, sensorimotor.sim.twin, sensorimotor.cli.sim, sensorimotor.cli.twin, sensorimotor.cli.relay\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"runtime path imported: {out.stdout.strip()}"
