"""The compiled core: N simulated devices (physics, sensors, delays) advanced by numba kernels.

One call advances every env by any number of physics substeps — no Python loop over
envs or substeps. Each env is independent (its own parameters, delays and counter-based
random numbers, :mod:`sensorimotor.sim.rng`), so the result for an env does not depend
on N, on the thread that ran it or on the other envs: the single env, the vector env and
the twin give bit-identical trajectories for one seed.

Why numba (docs/simulator.md has the measurements): the physics is a short scalar
recurrence per env (10 RK4 substeps, each 4 evaluations with a sin and a cos), which
numpy can only vectorize across envs — at N = 1 it pays ~40 array dispatches per
substep; numba compiles the scalar code, runs envs on all cores with ``prange`` and
installs from a wheel (no compiler on the user's machine, unlike a C extension; JAX
is not on this machine's package index and its dispatch costs dominate at N = 1).

Per substep, for each env: due commands leave the actuator FIFO, RK4 advances the state
(:mod:`sensorimotor.sim.furuta` is the numpy reference of the same equations), the IMU
and encoder take a sample into a ring buffer, and the camera captures a frame if one is
due (only then, only for that env). Observations read the rings *delayed* by the env's
sensor-to-host latency.

Buffers are plain arrays grouped in NamedTuples. numba writes through a NamedTuple's
arrays only inside a called function, not directly in a ``prange`` body (numba 0.68
silently drops such writes), so each parallel loop only calls a per-env function.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numba as nb
import numpy as np

from sensorimotor.sim.furuta import PARAM_NAMES, STOP_DAMPING_DEPTH
from sensorimotor.sim.rng import (
    GOLDEN,
    STREAM_BIAS,
    STREAM_CAMERA_EPISODE,
    STREAM_FRAME,
    STREAM_IMU,
    STREAM_PIXEL,
    STREAM_RESET,
    hash4,
    mix,
    normal,
    normal_pair,
    quick_normal,
    uniform,
)
from sensorimotor.sim.sensors import CAMERA_BLACKOUT, CAMERA_OCCLUDED, CAMERA_OK

# Parameter columns (order of FurutaParams' fields).
(RM, KT, KM, MR, LR, DR, MP, LP, DP, G, CR, SR, CP, SP, VSTR, VSMOOTH, VDZ, VSAT, THSTOP, KSTOP, CSTOP) = range(
    len(PARAM_NAMES)
)
N_PARAMS = len(PARAM_NAMES)

# Per-episode camera parameters (columns of Buffers.cam_ep); ranges come from the config.
CAM_EPISODE_NAMES = (
    "background", "brightness", "gradient_rows", "gradient_cols", "texture_amplitude", "texture_cycles",
    "texture_angle", "texture_phase", "noise_sigma", "shift_x_px", "shift_y_px", "roll_rad", "exposure_s",
)  # fmt: skip
(BG, BRIGHT, GRAD_R, GRAD_C, TEX_AMP, TEX_CYC, TEX_ANG, TEX_PHASE, NOISE, SHIFT_X, SHIFT_Y, ROLL, EXPOSURE) = range(
    len(CAM_EPISODE_NAMES)
)
N_CAM = len(CAM_EPISODE_NAMES)

# Delay columns (substeps): command -> actuator, IMU/encoder -> host, camera -> host.
D_ACT, D_IMU, D_CAM = 0, 1, 2

MAX_BLUR_POSES = 8  # motion blur renders at most this many poses over the exposure

_FLAGS: dict[str, Any] = {"cache": True, "error_model": "numpy", "fastmath": False}


class Settings(NamedTuple):
    """What is the same for every env: rates, sizes, noise model, fault probabilities."""

    dt: float  # substep (= IMU sample) period, s
    substeps: int  # substeps per control step
    window: int  # IMU samples per observation window
    ring: int  # IMU ring length (window + max IMU delay + margin)
    frame_substeps: int  # substeps between camera frames
    frames: int  # camera ring length
    queue: int  # actuator FIFO capacity
    warmup: int  # substeps the pendulum is held still after a reset
    cpr: float  # encoder counts per revolution
    use_imu: bool
    use_camera: bool
    imu_noise: bool
    imu_position: float  # m from the pendulum pivot
    height: int
    width: int
    m_per_px: float
    occlusion_prob: float
    blackout_prob: float
    v_max: float


class Buffers(NamedTuple):
    """Per-env state of N devices. Ticks count substeps since the env's last reset."""

    state: np.ndarray  # (N, 4) f8  theta, alpha, theta_dot, alpha_dot
    params: np.ndarray  # (N, N_PARAMS) f8  this episode's physics (FurutaParams order)
    volts: np.ndarray  # (N,) f8  voltage commanded to the amplifier now
    tick: np.ndarray  # (N,) i8
    key: np.ndarray  # (N,) u8  the env's random key (from its seed)
    episode: np.ndarray  # (N,) i8  episodes started (the random counter of resets)
    queue_v: np.ndarray  # (N, Q) f8  actuator FIFO: voltages ...
    queue_t: np.ndarray  # (N, Q) i8  ... and the tick each takes effect
    queue_n: np.ndarray  # (N,) i8
    dropped: np.ndarray  # (N,) i8  commands dropped from a full FIFO
    delay: np.ndarray  # (N, 3) i8  D_ACT, D_IMU, D_CAM in substeps
    cam_phase: np.ndarray  # (N,) i8  frames are captured when (tick - phase) % frame_substeps == 0
    imu: np.ndarray  # (N, R, 6) f4  ring: sample of tick t at t % R
    enc: np.ndarray  # (N, R) i4
    imu_state: np.ndarray  # (N, R, 4) f8  true state at each ring sample (perception's labels)
    bias: np.ndarray  # (N, 6) f8  IMU bias (Gauss-Markov)
    imu_scale: np.ndarray  # (N, 6) f8  scale-factor error
    imu_gain: np.ndarray  # (N,) f8  this episode's multiplier on the IMU noise densities (white noise, bias walk)
    imu_noise: np.ndarray  # (6, 6) f8  per channel: white sigma, walk sigma, decay, turn-on sigma, range, scale sigma
    cam_ep: np.ndarray  # (N, N_CAM) f8
    background: np.ndarray  # (N, H, W) f4  this episode's lighting and background texture
    frames: np.ndarray  # (N, F, H, W) u8  camera ring
    frame_tick: np.ndarray  # (N, F) i8  capture tick of each slot (-1: empty)
    frame_label: np.ndarray  # (N, F) i8  fault class of each slot
    frame_state: np.ndarray  # (N, F, 4) f8  true state at mid-exposure


class Ranges(NamedTuple):
    """What a reset draws from (uniform [lo, hi] per row); lo == hi when randomization is off."""

    nominal: np.ndarray  # (N_PARAMS,) f8
    scale: np.ndarray  # (N_PARAMS, 2) f8  multiplier range per parameter
    log_scale: np.ndarray  # (N_PARAMS,) bool  draw that multiplier log-uniformly (``randomization.wide``)
    delay: np.ndarray  # (3, 2) i8  delay ranges (substeps), inclusive
    initial: np.ndarray  # (4, 2) f8  initial theta, alpha, theta_dot, alpha_dot ranges
    camera: np.ndarray  # (N_CAM, 2) f8
    imu_gain: np.ndarray  # (2,) f8  IMU noise-density multiplier range


# ----------------------------------------------------------------------------- physics


@nb.njit(**_FLAGS, inline="always")
def _friction(v: float, coulomb: float, static: float, v_str: float, v_smooth: float) -> float:
    r = v / v_str
    level = coulomb + (static - coulomb) / (1.0 + r * r)
    return level * (v / math.sqrt(v * v + v_smooth * v_smooth))


@nb.njit(**_FLAGS, inline="always")
def _accelerations(th: float, al: float, th_d: float, al_d: float, volts: float, p: np.ndarray) -> tuple[float, float]:
    """Same equations, same order of operations as furuta.accelerations (the reference)."""
    s, co = math.sin(al), math.cos(al)
    half = p[LP] / 2.0
    a = p[MR] * p[LR] ** 2 / 3.0 + p[MP] * p[LR] ** 2
    b = p[MP] * p[LP] ** 2 / 12.0 + p[MP] * half**2
    c = p[MP] * p[LR] * half
    d = p[MP] * p[G] * half
    e = p[MP] * half**2
    m11 = a + e * s * s
    m12 = c * co
    mag = min(max(abs(volts) - p[VDZ], 0.0), p[VSAT])
    tau = p[KT] * (math.copysign(mag, volts) - p[KM] * th_d) / p[RM]
    pen = abs(th) - p[THSTOP]
    if pen > 0.0:
        side = math.copysign(1.0, th)
        stop = -side * p[KSTOP] * pen - p[CSTOP] * min(pen, STOP_DAMPING_DEPTH) * th_d
        if stop * side < 0.0:
            tau += stop
    rhs1 = tau - p[DR] * th_d - _friction(th_d, p[CR], p[SR], p[VSTR], p[VSMOOTH]) - 2.0 * e * s * co * th_d * al_d
    rhs1 = rhs1 + c * s * al_d**2
    rhs2 = -p[DP] * al_d - _friction(al_d, p[CP], p[SP], p[VSTR], p[VSMOOTH]) + e * s * co * th_d**2 + d * s
    det = m11 * b - m12 * m12
    return (b * rhs1 - m12 * rhs2) / det, (m11 * rhs2 - m12 * rhs1) / det


@nb.njit(**_FLAGS)
def _rk4(x: np.ndarray, volts: float, p: np.ndarray, dt: float) -> None:
    """One RK4 step of state ``x`` (4,) in place."""
    th, al, thd, ald = x[0], x[1], x[2], x[3]
    a1, b1 = _accelerations(th, al, thd, ald, volts, p)
    h = 0.5 * dt
    a2, b2 = _accelerations(th + h * thd, al + h * ald, thd + h * a1, ald + h * b1, volts, p)
    a3, b3 = _accelerations(th + h * (thd + h * a1), al + h * (ald + h * b1), thd + h * a2, ald + h * b2, volts, p)
    a4, b4 = _accelerations(th + dt * (thd + h * a2), al + dt * (ald + h * b2), thd + dt * a3, ald + dt * b3, volts, p)
    # k1..k4 of the position rows are the velocities at the four stages.
    v1, v2, v3, v4 = thd, thd + h * a1, thd + h * a2, thd + dt * a3
    w1, w2, w3, w4 = ald, ald + h * b1, ald + h * b2, ald + dt * b3
    s = dt / 6.0
    x[0] = th + s * (v1 + 2.0 * v2 + 2.0 * v3 + v4)
    x[1] = al + s * (w1 + 2.0 * w2 + 2.0 * w3 + w4)
    x[2] = thd + s * (a1 + 2.0 * a2 + 2.0 * a3 + a4)
    x[3] = ald + s * (b1 + 2.0 * b2 + 2.0 * b3 + b4)


# ----------------------------------------------------------------------------- sensors


@nb.njit(**_FLAGS)
def _imu_sample(b: Buffers, s: Settings, i: int, held: bool) -> None:
    """Store the IMU and encoder sample of env i's current tick (same model as sensors.imu_ideal + noise)."""
    x, p = b.state[i], b.params[i]
    th_d, al, al_d = x[2], x[1], x[3]
    if held:
        th_dd, al_dd = 0.0, 0.0
    else:
        th_dd, al_dd = _accelerations(x[0], al, th_d, al_d, b.volts[i], p)
    sn, c = math.sin(al), math.cos(al)
    r, lr, g = s.imu_position, p[LR], p[G]
    a_r = -2.0 * r * c * al_d * th_d - r * sn * th_dd - lr * th_d**2
    a_t = lr * th_dd + r * c * al_dd - r * sn * (al_d**2 + th_d**2)
    a_z = -r * c * al_d**2 - r * sn * al_dd + g
    ideal = (-al_d, -th_d * sn, th_d * c, a_r, c * a_t - sn * a_z, sn * a_t + c * a_z)
    t = b.tick[i]
    slot = t % s.ring
    n = b.imu_noise
    base = hash4(b.key[i], b.episode[i], STREAM_IMU, t) if s.imu_noise else np.uint64(0)
    for ch in range(6):
        v = ideal[ch]
        if s.imu_noise:
            white, walk = normal_pair(mix(base + GOLDEN * np.uint64(ch + 1)))
            v = v * (1.0 + b.imu_scale[i, ch]) + b.bias[i, ch] + b.imu_gain[i] * n[ch, 0] * white
            b.bias[i, ch] = b.bias[i, ch] * n[ch, 2] + b.imu_gain[i] * n[ch, 1] * walk
            v = min(max(v, -n[ch, 4]), n[ch, 4])
        b.imu[i, slot, ch] = v
    b.enc[i, slot] = math.floor(x[0] * (s.cpr / (2.0 * math.pi)))
    for j in range(4):
        b.imu_state[i, slot, j] = x[j]


@nb.njit(**_FLAGS, inline="always")
def _clip01(v: float) -> float:
    return min(max(v, 0.0), 1.0)


@nb.njit(**_FLAGS, inline="always")
def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    abx, aby = bx - ax, by - ay
    apx, apy = px - ax, py - ay
    t = (apx * abx + apy * aby) / max(abx * abx + aby * aby, 1e-12)
    t = min(max(t, 0.0), 1.0)
    dx, dy = apx - t * abx, apy - t * aby
    return math.sqrt(dx * dx + dy * dy)


@nb.njit(**_FLAGS)
def _capture(b: Buffers, s: Settings, i: int) -> None:
    """Render env i's camera frame of this tick into the next ring slot (sensors.render_clean is the reference)."""
    t = b.tick[i]
    k = (t - b.cam_phase[i]) // s.frame_substeps
    slot = k % s.frames
    ep, x = b.cam_ep[i], b.state[i]
    key, episode = b.key[i], b.episode[i]
    h_occl = hash4(key, episode, STREAM_FRAME, t * 8)
    h_black = hash4(key, episode, STREAM_FRAME, t * 8 + 1)
    occluded = uniform(h_occl) < s.occlusion_prob
    blackout = uniform(h_black) < s.blackout_prob
    hh, ww, mpp = s.height, s.width, s.m_per_px
    # Occluding patch (a hand, a cable) over the upper part of the view.
    o_top = o_left = o_h = o_w = 0
    o_level = 0.0
    if occluded:
        o_h = hh * 3 // 8 + int(uniform(hash4(key, episode, STREAM_FRAME, t * 8 + 2)) * (hh * 5 // 8 - hh * 3 // 8))
        o_w = ww * 7 // 16 + int(uniform(hash4(key, episode, STREAM_FRAME, t * 8 + 3)) * (ww * 7 // 8 - ww * 7 // 16))
        o_top = int(uniform(hash4(key, episode, STREAM_FRAME, t * 8 + 4)) * (hh // 2 - o_h // 2 + 1))
        o_left = int(uniform(hash4(key, episode, STREAM_FRAME, t * 8 + 5)) * (ww - o_w + 1))
        o_level = 0.5 * uniform(hash4(key, episode, STREAM_FRAME, t * 8 + 6))
    black_level = 0.04 * uniform(hash4(key, episode, STREAM_FRAME, t * 8 + 7))
    # Pose: pivot at the centre plus the episode's shift, rotated by its roll.
    cr, sr = math.cos(ep[ROLL]), math.sin(ep[ROLL])
    px0, py0 = ep[SHIFT_X] * mpp, ep[SHIFT_Y] * mpp
    lp = b.params[i, LP]
    # Motion blur: the pendulum moves during the exposure ending now; render poses along it.
    sweep = abs(x[3]) * ep[EXPOSURE]  # rad swept during the exposure
    poses = min(MAX_BLUR_POSES, 1 + int(sweep * lp / mpp))  # about one pose per pixel of tip travel
    tips = np.empty((poses, 2))
    lo_x, hi_x, lo_y, hi_y = px0, px0, py0, py0
    for q in range(poses):
        al = x[1] - (x[3] * ep[EXPOSURE] * q / (poses - 1) if poses > 1 else 0.0)
        ux, uy = lp * math.sin(al), lp * math.cos(al)
        tx, ty = px0 + cr * ux - sr * uy, py0 + sr * ux + cr * uy
        tips[q, 0], tips[q, 1] = tx, ty
        lo_x, hi_x, lo_y, hi_y = min(lo_x, tx), max(hi_x, tx), min(lo_y, ty), max(hi_y, ty)
    margin = 3.0 * mpp
    c_lo = max(0, math.floor((lo_x - margin) / mpp + ww / 2.0))
    c_hi = min(ww, math.ceil((hi_x + margin) / mpp + ww / 2.0))
    r_lo = max(0, math.floor(hh / 2.0 - (hi_y + margin) / mpp))
    r_hi = min(hh, math.ceil(hh / 2.0 - (lo_y - margin) / mpp))
    bright, sigma = ep[BRIGHT], ep[NOISE]
    base = hash4(key, episode, STREAM_PIXEL, t)
    out, bg = b.frames[i, slot], b.background[i]
    for r in range(hh):
        yy = hh * mpp / 2.0 - (r + 0.5) * mpp
        for col in range(ww):
            z = quick_normal(mix(base + np.uint64(r * ww + col)))
            if blackout:
                v = black_level + sigma * z
            else:
                inten = 0.0
                if r_lo <= r < r_hi and c_lo <= col < c_hi:
                    xx = (col + 0.5) * mpp - ww * mpp / 2.0
                    hub = _clip01(2.0 - math.sqrt((xx - px0) ** 2 + (yy - py0) ** 2) / mpp) * 0.6
                    for q in range(poses):
                        tx, ty = tips[q, 0], tips[q, 1]
                        rod = _clip01(1.6 - _segment_distance(xx, yy, px0, py0, tx, ty) / mpp)
                        bob = _clip01(2.5 - math.sqrt((xx - tx) ** 2 + (yy - ty) ** 2) / mpp)
                        inten += max(max(rod, hub), bob)
                    inten /= poses
                back = bg[r, col]
                v = back + inten * (bright - back)
                if occluded and o_top <= r < o_top + o_h and o_left <= col < o_left + o_w:
                    v = o_level
                v += sigma * z
            out[r, col] = np.uint8(_clip01(v) * 255.0 + 0.5)
    b.frame_tick[i, slot] = t
    b.frame_label[i, slot] = CAMERA_BLACKOUT if blackout else (CAMERA_OCCLUDED if occluded else CAMERA_OK)
    # The frame's state is the one at mid-exposure (angles moved back by rate x exposure / 2, the first
    # order the blur renders in): the instant the frame shows, the centre of its symmetric smear. The
    # end of the exposure cannot be told from its start in one frame, so a label there would be ambiguous.
    half = 0.5 * ep[EXPOSURE]
    b.frame_state[i, slot, 0] = x[0] - x[2] * half
    b.frame_state[i, slot, 1] = x[1] - x[3] * half
    b.frame_state[i, slot, 2] = x[2]
    b.frame_state[i, slot, 3] = x[3]


# ----------------------------------------------------------------------------- stepping


@nb.njit(**_FLAGS)
def _advance_env(b: Buffers, s: Settings, i: int, n_sub: int) -> None:
    """Advance env i by ``n_sub`` substeps."""
    x, p = b.state[i], b.params[i]
    for _ in range(n_sub):
        t = b.tick[i]
        while b.queue_n[i] > 0 and b.queue_t[i, 0] <= t:  # commands due now reach the amplifier
            b.volts[i] = b.queue_v[i, 0]
            for q in range(1, b.queue_n[i]):
                b.queue_v[i, q - 1] = b.queue_v[i, q]
                b.queue_t[i, q - 1] = b.queue_t[i, q]
            b.queue_n[i] -= 1
        _rk4(x, b.volts[i], p, s.dt)
        b.tick[i] = t + 1
        if s.use_imu:
            _imu_sample(b, s, i, False)
        if s.use_camera and (t + 1 - b.cam_phase[i]) % s.frame_substeps == 0:
            _capture(b, s, i)


@nb.njit(**_FLAGS)
def _push_command(b: Buffers, s: Settings, i: int, volts: float) -> None:
    """Queue a command for env i; it reaches the amplifier ``delay[D_ACT]`` substeps from now (FIFO)."""
    at = b.tick[i] + b.delay[i, D_ACT]
    n = b.queue_n[i]
    volts = min(max(volts, -s.v_max), s.v_max)
    if n > 0 and b.queue_t[i, n - 1] >= at:  # a later command for the same substep replaces it
        b.queue_v[i, n - 1] = volts
        return
    if n == s.queue:  # full: the oldest pending command is lost (counted)
        for q in range(1, n):
            b.queue_v[i, q - 1] = b.queue_v[i, q]
            b.queue_t[i, q - 1] = b.queue_t[i, q]
        n -= 1
        b.dropped[i] += 1
    b.queue_v[i, n] = volts
    b.queue_t[i, n] = at
    b.queue_n[i] = n + 1


@nb.njit(**_FLAGS)
def _step_env(b: Buffers, s: Settings, i: int, volts: float) -> None:
    _push_command(b, s, i, volts)
    _advance_env(b, s, i, s.substeps)


@nb.njit(**_FLAGS, parallel=True)
def step_parallel(b: Buffers, s: Settings, volts: np.ndarray) -> None:
    """One control step for every env: queue ``volts`` (N,), then advance ``substeps`` substeps."""
    for i in nb.prange(b.state.shape[0]):
        _step_env(b, s, i, volts[i])


@nb.njit(**_FLAGS)
def step_serial(b: Buffers, s: Settings, volts: np.ndarray) -> None:
    """:func:`step_parallel` on one thread (small N: no thread wake-up cost)."""
    for i in range(b.state.shape[0]):
        _step_env(b, s, i, volts[i])


@nb.njit(**_FLAGS)
def advance(b: Buffers, s: Settings, n_sub: int) -> None:
    """Advance every env ``n_sub`` substeps without a new command (the twin's real-time tick)."""
    for i in range(b.state.shape[0]):
        _advance_env(b, s, i, n_sub)


@nb.njit(**_FLAGS)
def push_commands(b: Buffers, s: Settings, volts: np.ndarray) -> None:
    """Queue one command per env without advancing."""
    for i in range(b.state.shape[0]):
        _push_command(b, s, i, volts[i])


# ----------------------------------------------------------------------------- reset


@nb.njit(**_FLAGS)
def _draw(b: Buffers, i: int, stream: int, k: int) -> float:
    return uniform(hash4(b.key[i], b.episode[i], stream, k))


@nb.njit(**_FLAGS)
def _reset_env(b: Buffers, s: Settings, rg: Ranges, i: int, start: np.ndarray, use_start: bool) -> None:
    """New episode for env i: draw its physics, delays, sensor errors and camera, then warm up held still."""
    b.episode[i] += 1
    for j in range(N_PARAMS):
        lo, hi = rg.scale[j, 0], rg.scale[j, 1]
        u = _draw(b, i, STREAM_RESET, j)  # one draw either way: a narrow config's episodes stay as they were
        if rg.log_scale[j]:
            b.params[i, j] = rg.nominal[j] * math.exp(math.log(lo) + (math.log(hi) - math.log(lo)) * u)
        else:
            b.params[i, j] = rg.nominal[j] * (lo + (hi - lo) * u)
    for j in range(3):
        lo_d, hi_d = rg.delay[j, 0], rg.delay[j, 1]
        b.delay[i, j] = lo_d + min(int(_draw(b, i, STREAM_RESET, 100 + j) * (hi_d - lo_d + 1)), hi_d - lo_d)
    b.cam_phase[i] = min(int(_draw(b, i, STREAM_RESET, 110) * s.frame_substeps), s.frame_substeps - 1)
    for j in range(4):
        lo, hi = rg.initial[j, 0], rg.initial[j, 1]
        b.state[i, j] = start[j] if use_start else lo + (hi - lo) * _draw(b, i, STREAM_RESET, 120 + j)
    b.imu_gain[i] = rg.imu_gain[0] + (rg.imu_gain[1] - rg.imu_gain[0]) * _draw(b, i, STREAM_RESET, 130)
    for ch in range(6):
        n = b.imu_noise[ch]
        b.bias[i, ch] = n[3] * normal(hash4(b.key[i], b.episode[i], STREAM_BIAS, ch))
        b.imu_scale[i, ch] = n[5] * normal(hash4(b.key[i], b.episode[i], STREAM_BIAS, 10 + ch))
    for j in range(N_CAM):
        lo, hi = rg.camera[j, 0], rg.camera[j, 1]
        b.cam_ep[i, j] = lo + (hi - lo) * _draw(b, i, STREAM_CAMERA_EPISODE, j)
    if s.use_camera:
        _paint_background(b, s, i)
        for f in range(s.frames):
            b.frame_tick[i, f] = -1
    b.volts[i] = 0.0
    b.queue_n[i] = 0
    b.dropped[i] = 0
    b.tick[i] = 0
    # Warm-up: held still at the initial angle (an operator holding it) while the sensors
    # fill their rings, so the first observation is a full, delayed window; then released.
    rates = (b.state[i, 2], b.state[i, 3])
    b.state[i, 2] = b.state[i, 3] = 0.0
    for _ in range(s.warmup):
        b.tick[i] += 1
        if s.use_imu:
            _imu_sample(b, s, i, True)
        if s.use_camera and (b.tick[i] - b.cam_phase[i]) % s.frame_substeps == 0:
            _capture(b, s, i)
    b.state[i, 2], b.state[i, 3] = rates


@nb.njit(**_FLAGS)
def _paint_background(b: Buffers, s: Settings, i: int) -> None:
    """Lighting (level + gradient) and a sinusoidal background texture, fixed for the episode."""
    ep = b.cam_ep[i]
    hh, ww = s.height, s.width
    ca, sa = math.cos(ep[TEX_ANG]), math.sin(ep[TEX_ANG])
    for r in range(hh):
        rn = -1.0 + 2.0 * r / (hh - 1)
        for c in range(ww):
            cn = -1.0 + 2.0 * c / (ww - 1)
            tex = ep[TEX_AMP] * math.cos(math.pi * ep[TEX_CYC] * (ca * cn + sa * rn) + ep[TEX_PHASE])
            b.background[i, r, c] = ep[BG] + ep[GRAD_R] * rn + ep[GRAD_C] * cn + tex


@nb.njit(**_FLAGS, parallel=True)
def reset_envs(b: Buffers, s: Settings, rg: Ranges, which: np.ndarray, start: np.ndarray, use_start: bool) -> None:
    """Reset the envs listed in ``which``; ``start`` (len(which), 4) gives their states when ``use_start``."""
    for k in nb.prange(which.shape[0]):
        _reset_env(b, s, rg, which[k], start[k], use_start)


# ----------------------------------------------------------------------------- observations


@nb.njit(**_FLAGS)
def _latest_frame(b: Buffers, i: int) -> int:
    """Ring slot of the newest frame that has reached the host (-1: none yet)."""
    best, best_t = -1, -1
    visible = b.tick[i] - b.delay[i, D_CAM]
    for f in range(b.frame_tick.shape[1]):
        ft = b.frame_tick[i, f]
        if 0 <= ft <= visible and ft > best_t:
            best, best_t = f, ft
    return best


@nb.njit(**_FLAGS)
def _gather_env(
    b: Buffers, s: Settings, i: int, count: int, imu_out: np.ndarray, enc_out: np.ndarray, img_out: np.ndarray,
    labels: np.ndarray, frame_state: np.ndarray, imu_state: np.ndarray,
) -> None:  # fmt: skip
    end = b.tick[i] - b.delay[i, D_IMU]  # newest sample that has reached the host
    if s.use_imu:
        for k in range(count):
            slot = (end - count + 1 + k) % s.ring
            for ch in range(6):
                imu_out[i, ch, k] = b.imu[i, slot, ch]
            enc_out[i, k] = b.enc[i, slot]
        imu_state[i] = b.imu_state[i, end % s.ring]
    if s.use_camera:
        f = _latest_frame(b, i)
        if f >= 0:
            img_out[i, 0] = b.frames[i, f]
            labels[i] = b.frame_label[i, f]
            frame_state[i] = b.frame_state[i, f]


@nb.njit(**_FLAGS, parallel=True)
def gather(
    b: Buffers, s: Settings, count: int, imu_out: np.ndarray, enc_out: np.ndarray, img_out: np.ndarray,
    labels: np.ndarray, frame_state: np.ndarray, imu_state: np.ndarray,
) -> None:  # fmt: skip
    """What the host has received: the last ``count`` IMU/encoder samples and the newest frame, per env."""
    for i in nb.prange(b.state.shape[0]):
        _gather_env(b, s, i, count, imu_out, enc_out, img_out, labels, frame_state, imu_state)


@nb.njit(**_FLAGS)
def gather_serial(
    b: Buffers, s: Settings, count: int, imu_out: np.ndarray, enc_out: np.ndarray, img_out: np.ndarray,
    labels: np.ndarray, frame_state: np.ndarray, imu_state: np.ndarray,
) -> None:  # fmt: skip
    """:func:`gather` on one thread: for a few envs (the twin's N = 1), waking the pool costs ~2 ms."""
    for i in range(b.state.shape[0]):
        _gather_env(b, s, i, count, imu_out, enc_out, img_out, labels, frame_state, imu_state)
