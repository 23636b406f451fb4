"""The camera's mount roll, calibrated once per rig from frames of the pendulum hanging at rest.

A camera mounted with a roll offset r sees every pendulum angle as alpha + r, and a single
frame holds nothing level to measure r against (docs/perception.md, "What limits a single
frame"). A pendulum hanging at rest does: gravity puts it at alpha = pi exactly, so the
image head's angle on such frames, minus pi, is the roll (plus whatever the head gets wrong
about this rig's frames at that pose). Once measured it is subtracted from every later image
angle of the same rig; no IMU is involved.

Pure functions on numpy arrays (angles in rad). The median, over frames the camera head
calls ok, keeps an occluded or misread frame from moving the estimate.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sensorimotor.perception.baselines import wrap

HANGING = math.pi  # alpha of the pendulum hanging at rest (upright is 0)


def mount_roll(image_angles: np.ndarray, camera_ok: np.ndarray, hanging: float = HANGING) -> np.ndarray:
    """The roll (rad) per rig from its frames at rest: image_angles, camera_ok (..., K) -> (...).

    ``camera_ok`` is the camera head's probability that a frame is fine; frames at or below
    0.5 are left out. A rig with no usable frame gets NaN (calibrate again, with the view clear).
    """
    offset = wrap(np.asarray(image_angles, np.float64) - hanging)
    masked = np.where(np.asarray(camera_ok) > 0.5, offset, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "All-NaN slice": that rig's roll is NaN, as documented
        return np.asarray(np.nanmedian(masked, axis=-1))


def subtract_roll(image_angles: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Image angles with the rig's roll taken out: (..., T) and (...) -> (..., T), wrapped."""
    return wrap(np.asarray(image_angles, np.float64) - np.asarray(roll, np.float64)[..., None])
