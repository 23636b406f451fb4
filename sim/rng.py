"""Counter-based random numbers: every draw is a pure function of (env key, episode, stream, counter, channel).

Why not a ``numpy.random.Generator``: a draw that depends only on its coordinates is the
same whichever batch an env runs in, whichever thread runs it and however many envs
there are — so a single env and sub-env ``i`` of a vector env produce bit-identical
trajectories, and the compiled kernels can run envs in parallel without sharing a
generator. The mixer is SplitMix64 (Steele et al. 2014, the seeding generator of
``java.util.SplittableRandom`` and xoshiro), whose output passes BigCrush.

The scalar functions are compiled by numba for the core; :func:`hash_np` is the plain
numpy equivalent the tests compare them with.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_INV_2_53 = 1.0 / 9007199254740992.0  # 2^-53

# Streams: which part of the simulator a draw belongs to (the 3rd hash coordinate).
STREAM_RESET = 1  # per-episode physics parameters, delays, initial state
STREAM_IMU = 2  # IMU white noise and bias random walk
STREAM_CAMERA_EPISODE = 3  # per-episode lighting, background, pose offset, exposure
STREAM_FRAME = 4  # per-frame camera faults
STREAM_PIXEL = 5  # per-pixel image noise
STREAM_BIAS = 6  # IMU turn-on bias and scale-factor error


@nb.njit(cache=True, inline="always")
def mix(z: np.uint64) -> np.uint64:
    """SplitMix64's output function (a bijection on 64-bit words)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@nb.njit(cache=True, inline="always")
def hash4(key: np.uint64, a: int, b: int, c: int) -> np.uint64:
    """A 64-bit hash of (key, a, b, c)."""
    h = mix(key + GOLDEN * np.uint64(a + 1))
    h = mix(h + GOLDEN * np.uint64(b + 1))
    return mix(h + GOLDEN * np.uint64(c + 1))


@nb.njit(cache=True, inline="always")
def uniform(h: np.uint64) -> float:
    """A double in [0, 1) from the top 53 bits of a hash."""
    return float(h >> np.uint64(11)) * _INV_2_53


@nb.njit(cache=True, inline="always")
def normal(h: np.uint64) -> float:
    """A standard normal draw from one hash (Box-Muller on two 32-bit halves)."""
    u1 = (float(h >> np.uint64(32)) + 0.5) / 4294967296.0  # (0, 1): log is finite
    u2 = float(h & np.uint64(0xFFFFFFFF)) / 4294967296.0
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@nb.njit(cache=True, inline="always")
def normal_pair(h: np.uint64) -> tuple[float, float]:
    """Two independent standard normal draws from one hash (both Box-Muller outputs)."""
    u1 = (float(h >> np.uint64(32)) + 0.5) / 4294967296.0
    u2 = float(h & np.uint64(0xFFFFFFFF)) / 4294967296.0
    rad, ang = math.sqrt(-2.0 * math.log(u1)), 2.0 * math.pi * u2
    return rad * math.cos(ang), rad * math.sin(ang)


@nb.njit(cache=True, inline="always")
def quick_normal(h: np.uint64) -> float:
    """An approximately normal draw (Irwin-Hall: four 16-bit uniforms, unit variance, |z| < 3.5); for pixel noise."""
    total = 0.0
    for k in range(4):
        total += float((h >> np.uint64(16 * k)) & np.uint64(0xFFFF))
    return (total / 65536.0 - 2.0) * 1.7320508075688772


def env_keys(seed: int, n: int) -> np.ndarray:
    """Keys of envs seeded ``seed, seed + 1, ..., seed + n - 1`` (sub-env i of a vector env seeded s = env seeded s + i)."""
    seeds = np.arange(seed, seed + n, dtype=np.int64).astype(np.uint64)
    return mix_np(mix_np(seeds * GOLDEN + GOLDEN))


def mix_np(z: np.ndarray) -> np.ndarray:
    """:func:`mix` on a uint64 array."""
    z = np.asarray(z, np.uint64)
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def hash_np(key: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """:func:`hash4` on arrays (broadcast)."""

    def word(v: np.ndarray) -> np.ndarray:
        return GOLDEN * (np.asarray(v, np.int64) + 1).astype(np.uint64)

    h = mix_np(np.asarray(key, np.uint64) + word(a))
    h = mix_np(h + word(b))
    return mix_np(h + word(c))


def normal_np(h: np.ndarray) -> np.ndarray:
    """:func:`normal` on an array of hashes."""
    u1 = ((h >> np.uint64(32)).astype(np.float64) + 0.5) / 4294967296.0
    u2 = (h & np.uint64(0xFFFFFFFF)).astype(np.float64) / 4294967296.0
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def normal_pair_np(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`normal_pair` on an array of hashes."""
    u1 = ((h >> np.uint64(32)).astype(np.float64) + 0.5) / 4294967296.0
    u2 = (h & np.uint64(0xFFFFFFFF)).astype(np.float64) / 4294967296.0
    rad, ang = np.sqrt(-2.0 * np.log(u1)), 2.0 * np.pi * u2
    return rad * np.cos(ang), rad * np.sin(ang)


def uniform_np(h: np.ndarray) -> np.ndarray:
    """:func:`uniform` on an array of hashes."""
    return (h >> np.uint64(11)).astype(np.float64) * _INV_2_53
