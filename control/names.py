"""Control's vocabularies, free of heavy imports so the command line's parser can offer them as choices."""

from __future__ import annotations

DEVICE_ENV = "device"  # rl.env naming the simulated device (perception in the loop), not a Gymnasium id
