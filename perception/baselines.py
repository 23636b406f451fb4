"""Classical IMU attitude baselines on the same IMU data: VQF and Madgwick, from maintained libraries.

* **VQF** (Laidig & Seel, Information Fusion 2023; ``vqf`` on PyPI, C++ core): 6-D gyro +
  accelerometer fusion with rest detection and gyro-bias estimation in rest and motion.
* **Madgwick** (``ahrs`` on PyPI): gradient-descent gyro + accelerometer fusion.

Both treat the accelerometer as a gravity sensor. An IMU on a swinging link also feels the
link's tangential and centripetal acceleration, which these filters can only down-weight
(their time constant / gain, tuned here on separate sequences).

The pendulum angle is the rotation about the sensor's x axis (the pivot axis): with the
device's axes, a still pendulum at angle alpha reads specific force g (0, -sin alpha, cos alpha),
so alpha = atan2(-u_y, u_z) for the estimated "up" direction u in the sensor frame.

Filters run on the continuous sample stream rebuilt from a sequence's consecutive windows
(each control step adds ``substeps`` new samples). Before the first sample they are given
``hold_s`` of the first window's mean reading: the pendulum is held still before an episode
(the simulator's warm-up), as a filter running since power-on would have seen.
"""

from __future__ import annotations

import numpy as np

FILTERS = ("vqf", "madgwick")


def sample_stream(windows: np.ndarray, substeps: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows (T, 6, W) -> samples (N, 6) and the index of each step's newest sample (T,)."""
    t, _, w = windows.shape
    parts = [windows[0].T] + [windows[k, :, w - substeps :].T for k in range(1, t)]
    samples = np.concatenate(parts).astype(np.float64)
    newest = w - 1 + substeps * np.arange(t)
    return samples, newest


def _with_hold(samples: np.ndarray, rate_hz: float, hold_s: float, first: int) -> tuple[np.ndarray, int]:
    n = round(hold_s * rate_hz)
    rest = np.repeat(samples[:first].mean(0, keepdims=True), n, axis=0)
    return np.concatenate([rest, samples]), n


def _alpha_from_quat(q: np.ndarray) -> np.ndarray:
    """(N, 4) w, x, y, z sensor-to-earth quaternions -> alpha: the earth's z axis seen in the sensor frame."""
    w, x, y, z = q.T
    uy = 2.0 * (y * z + w * x)  # third row of R (sensor->earth), i.e. R^T e_z
    uz = 1.0 - 2.0 * (x * x + y * y)
    return np.arctan2(-uy, uz)


def vqf_alpha(samples: np.ndarray, rate_hz: float, tau_acc: float, hold_s: float = 2.0, first: int = 64) -> np.ndarray:
    """VQF's pendulum angle at every sample (N,)."""
    from vqf import VQF

    data, skip = _with_hold(samples, rate_hz, hold_s, first)
    f = VQF(1.0 / rate_hz, tauAcc=tau_acc)
    out = f.updateBatch(np.ascontiguousarray(data[:, :3]), np.ascontiguousarray(data[:, 3:]))
    return _alpha_from_quat(out["quat6D"])[skip:]


def madgwick_alpha(
    samples: np.ndarray, rate_hz: float, gain: float, hold_s: float = 2.0, first: int = 64
) -> np.ndarray:
    """Madgwick's pendulum angle at every sample (N,)."""
    from ahrs.filters import Madgwick

    data, skip = _with_hold(samples, rate_hz, hold_s, first)
    f = Madgwick(gyr=data[:, :3], acc=data[:, 3:], frequency=rate_hz, gain=gain)
    return _alpha_from_quat(np.asarray(f.Q))[skip:]


def filter_alpha(name: str, windows: np.ndarray, substeps: int, rate_hz: float, param: float) -> np.ndarray:
    """Filter ``name``'s angle at each control step's newest sample, for one sequence of windows (T, 6, W)."""
    samples, newest = sample_stream(windows, substeps)
    run = {"vqf": vqf_alpha, "madgwick": madgwick_alpha}[name]
    return run(samples, rate_hz, param, first=windows.shape[-1])[newest]


def wrap(a: np.ndarray) -> np.ndarray:
    return np.remainder(a + np.pi, 2 * np.pi) - np.pi
