"""``sim identify``: a device's physical parameters fitted to an excitation log (``hw excite``).

The logged commands are replayed through the batched simulator (:class:`FurutaSim`, the
same core the training and the twin use, its IMU made ideal) for many candidate parameter
sets at once, and the simulated IMU and encoder samples are matched to the logged ones:

1. a global search with CMA-ES (the ``cma`` package) over log-multipliers of the config's
   values, one batched simulation per generation, the actuator delay among the variables;
2. a local fit with scipy's ``least_squares`` (trust region), its Jacobian one batched
   simulation of every finite-difference step;
3. the uncertainty of each parameter from that Jacobian (Gauss-Newton covariance scaled by
   the residual). A parameter whose relative standard deviation is over
   :data:`IDENTIFIABLE_REL_STD`, or that correlates with another beyond
   :data:`MAX_CORRELATION`, is reported as not identifiable from this log, with the reason
   (the log barely excites it, or it trades off against another parameter), and is left
   out of the device file.

The pendulum's initial swing and the IMU's turn-on biases are nuisance values fitted or
measured alongside (never written). Parameters go by the config's own field names
(``device.physics.Dp``), so the result loads with ``--device``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.hardware.framing import FramingError, decode_body
from sensorimotor.hardware.log.mcaplog import TOPIC_COMMAND, TOPIC_RX, LogError, LogReader
from sensorimotor.hardware.messages import MessageError, MessageReader, SensorBatch
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.furuta import PARAM_NAMES

Array = np.ndarray

#: What is fitted by default: the parameters a real unit is most often off in (docs/sim-to-real.md).
DEFAULT_FREE = ("Dp", "Dr", "Rm")
#: Log-multiplier bounds per parameter: damping and friction over two decades, the rest over a factor 3.
WIDE = {"Dp", "Dr", "coulomb_r", "static_r", "coulomb_p", "static_p", "v_deadzone"}
IDENTIFIABLE_REL_STD = 0.05  # a value known to better than 5 % (1 sigma) is written ...
MAX_CORRELATION = 0.98  # ... unless it moves the signals the way another free parameter does
MIN_SECONDS = 10.0  # an excitation shorter than this identifies nothing
MIN_ARM_RANGE_RAD = 0.2  # the arm must have moved at least this much
HANGING_TOL_DEG = 20.0  # the pendulum within this of hanging at the start
REST_S = 0.5  # the first samples, pendulum hanging, that give the IMU's biases
MAX_DELAY = 20  # actuator delay searched, substeps
CHANNELS = ("gyro_x", "gyro_y", "gyro_z", "accel_x", "accel_y", "accel_z", "encoder")


class IdentifyError(ValueError):
    """The log cannot be used for identification (says why and what to do)."""


@dataclass
class Excitation:
    """An excitation log as sample-indexed arrays (index 0: the first logged sample)."""

    rate_hz: float
    cpr: int
    imu: Array  # (T, 6) float64, NaN where a sample was lost
    encoder: Array  # (T,) float64 counts, NaN where lost
    command_index: Array  # (K,) int: the first sample each command can affect
    volts: Array  # (K,) float64: the command actually sent

    @property
    def seconds(self) -> float:
        return len(self.encoder) / self.rate_hz


def read_excitation(path: Path, rate_hz: float, cpr: int) -> Excitation:
    """The SENSOR samples and the commands of an ``hw excite`` (or ``hw run --record``) log."""
    frames: dict[int, tuple[int, Array, Array]] = {}  # seq -> (timestamp_us of its last sample, imu, encoder)
    order: list[int] = []
    commands: list[tuple[int, float]] = []
    read = MessageReader()  # the handshake's DESCRIBE comes before any SENSOR frame
    for msg in LogReader(path):
        if msg.topic == TOPIC_RX:
            try:
                frame = decode_body(msg.data)
                parsed = read(frame)
            except (FramingError, MessageError):
                continue
            if isinstance(parsed, SensorBatch):
                frames[frame.seq] = (
                    frame.timestamp_us,
                    parsed.imu.astype(np.float64),
                    parsed.encoder[:, 0].astype(np.float64),  # the arm's
                )
                order.append(frame.seq)
        elif msg.topic == TOPIC_COMMAND:
            rec = msg.json()
            if rec.get("sensor_seq") is not None:
                commands.append((int(rec["sensor_seq"]), float(rec["volts"][0])))
    if not order:
        raise IdentifyError(f"{path}: no SENSOR frames: record the excitation with hw excite --out")
    t0 = frames[order[0]][0] - (len(frames[order[0]][2]) - 1) * 1e6 / rate_hz
    last = {}  # seq -> sample index of its last sample
    samples: dict[int, tuple[Array, float]] = {}
    for seq in order:
        ts, imu, enc = frames[seq]
        n = len(enc)
        idx = np.rint((ts - t0) * rate_hz / 1e6 - np.arange(n - 1, -1, -1)).astype(np.int64)
        last[seq] = int(idx[-1])
        for j, i in enumerate(idx):
            samples[int(i)] = (imu[j], enc[j])
    size = max(samples) + 1
    imu_all, enc_all = np.full((size, 6), np.nan), np.full(size, np.nan)
    for i, (imu_row, count) in samples.items():
        if i >= 0:
            imu_all[i], enc_all[i] = imu_row, count
    cmd = [(last[seq] + 1, v) for seq, v in commands if seq in last]
    if not cmd:
        raise IdentifyError(f"{path}: no commands: record the excitation with hw excite, which sends them")
    index, volts = np.array([c[0] for c in cmd], np.int64), np.array([c[1] for c in cmd])
    keep = np.r_[index[1:] > index[:-1], True]  # two commands after one frame: the later one stands
    return Excitation(rate_hz, cpr, imu_all, enc_all, index[keep], volts[keep])


def check_excitation(ex: Excitation, source: str) -> None:
    """Refuse a log that cannot identify anything, naming what is wrong."""
    if ex.seconds < MIN_SECONDS:
        raise IdentifyError(
            f"{source}: the excitation is {ex.seconds:.1f} s long, too short to identify anything "
            f"(at least {MIN_SECONDS:.0f} s): record it again with hw excite (default 40 s)"
        )
    arm = np.nanmax(ex.encoder) - np.nanmin(ex.encoder)
    arm_rad = arm * 2 * np.pi / ex.cpr
    if arm_rad < MIN_ARM_RANGE_RAD:
        raise IdentifyError(
            f"{source}: the arm never moved (range {arm_rad:.3f} rad, at least {MIN_ARM_RANGE_RAD} needed): "
            "check the motor's power and wiring and record again"
        )
    rest = ex.imu[: int(REST_S * ex.rate_hz)]
    accel = np.nanmean(rest[:, 3:], axis=0)
    tilt = hanging_angle_deg(accel)
    if not np.isfinite(tilt) or tilt > HANGING_TOL_DEG:
        raise IdentifyError(
            f"{source}: the pendulum was not hanging at the start ({tilt:.0f} deg from hanging by the "
            f"accelerometer, at most {HANGING_TOL_DEG:.0f}): let it hang at rest and record again"
        )


def hanging_angle_deg(accel: Array) -> float:
    """How far the pendulum is from hanging, by the accelerometer at rest (deg)."""
    ref = _hanging_accel()
    cos = float(np.dot(accel, ref) / (np.linalg.norm(accel) * np.linalg.norm(ref) + 1e-12))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def _hanging_accel() -> Array:
    """The ideal accelerometer's reading with the pendulum hanging still (the simulator's own model)."""
    cfg = quiet(DeviceConfig())
    sim = FurutaSim(cfg, 1, randomize=False, camera=False)
    sim.reset(state=np.array([[0.0, np.pi, 0.0, 0.0]]))
    imu, _ = sim.latest_samples(1)
    return imu[0, 0, 3:].astype(np.float64)


def quiet(device: DeviceConfig) -> DeviceConfig:
    """The device with an ideal IMU, no camera randomization, room for the delays searched."""
    r = dataclasses.replace(
        device.randomization, action_delay_substeps=(0, MAX_DELAY), imu_delay_substeps=(0, 0), imu_noise=0.0
    )
    return dataclasses.replace(device, imu=dataclasses.replace(device.imu, noise=False), randomization=r)


@dataclass
class Problem:
    """The fit: which parameters are free, their nominal values, the log and its weights."""

    device: DeviceConfig
    ex: Excitation
    free: tuple[str, ...]
    stride: int = 5  # every stride-th sample enters the residual (neighbours are strongly correlated)
    nominal: Array = field(init=False)
    lower: Array = field(init=False)
    upper: Array = field(init=False)
    target: Array = field(init=False)  # (T', 7) logged, debiased, on the residual's samples
    mask: Array = field(init=False)  # (T', 7) valid
    scale: Array = field(init=False)  # (7,)

    def __post_init__(self) -> None:
        self.device = quiet(self.device)
        p = self.device.physics
        self.nominal = np.array([float(getattr(p, n)) for n in self.free])
        wide = np.array([n in WIDE for n in self.free])
        self.lower = np.asarray(np.where(wide, np.log(0.02), np.log(1 / 3)), np.float64)
        self.upper = np.asarray(np.where(wide, np.log(50.0), np.log(3.0)), np.float64)
        ex = self.ex
        rest = slice(0, int(REST_S * ex.rate_hz))
        imu = ex.imu.copy()
        imu[:, :3] -= np.nanmean(imu[rest, :3], axis=0)  # gyro bias: the pendulum hangs still at rest
        imu[:, 3:] -= np.nanmean(imu[rest, 3:], axis=0) - _hanging_accel()  # accel bias likewise
        angle = ex.encoder * 2 * np.pi / ex.cpr
        full = np.column_stack([imu, angle])[:: self.stride]
        self.mask = np.isfinite(full)
        self.target = np.nan_to_num(full)
        spread = np.nanstd(full, axis=0)
        self.scale = np.maximum(spread, [0.05] * 3 + [0.2] * 3 + [0.01])  # a channel that barely moves is not blown up

    @property
    def theta0(self) -> float:
        first = np.flatnonzero(np.isfinite(self.ex.encoder))[0]
        return float(self.ex.encoder[first] * 2 * np.pi / self.ex.cpr)

    def values(self, x: Array) -> dict[str, float]:
        """Free parameters' values for log-multipliers ``x`` (P,)."""
        return {n: float(v) for n, v in zip(self.free, self.nominal * np.exp(x[: len(self.free)]), strict=True)}

    def residuals(self, xs: Array, delays: Array) -> Array:
        """(N, R): weighted residuals of N candidates (rows of log-multipliers + 2 initial-swing values)."""
        sim = simulate(self, xs, delays)
        r = (sim - self.target[None]) / self.scale
        return np.where(self.mask[None], r, 0.0).reshape(len(xs), -1)


def simulate(problem: Problem, xs: Array, delays: Array) -> Array:
    """(N, T', 7) simulated IMU and encoder angle for N candidates, on the residual's samples."""
    ex, n_free = problem.ex, len(problem.free)
    n, total = len(xs), len(ex.encoder)
    sim = FurutaSim(problem.device, n, seed=0, randomize=False, camera=False)
    start = np.zeros((n, 4))
    start[:, 0] = problem.theta0
    start[:, 1] = np.pi + xs[:, n_free]  # the initial swing: angle offset from hanging (rad) and rate (rad/s)
    start[:, 3] = xs[:, n_free + 1]
    sim.reset(state=start)
    cols = sim.buffers.params
    for j, name in enumerate(problem.free):
        cols[:, PARAM_NAMES.index(name)] = problem.nominal[j] * np.exp(xs[:, j])
    sim.buffers.delay[:, 0] = np.clip(np.rint(delays), 0, MAX_DELAY).astype(np.int64)
    out = np.empty((n, total, 7))
    imu, enc = sim.latest_samples(1)
    out[:, 0, :6], out[:, 0, 6] = imu[:, 0], enc[:, 0]
    tick = 0
    chunk = sim.settings.ring - 1

    def advance(to: int) -> None:
        nonlocal tick
        while tick < to:
            m = min(chunk, to - tick)
            sim.substep(m)
            imu, enc = sim.latest_samples(m)
            out[:, tick + 1 : tick + 1 + m, :6], out[:, tick + 1 : tick + 1 + m, 6] = imu, enc
            tick += m

    for index, volts in zip(ex.command_index, ex.volts, strict=True):
        if index - 1 >= total:
            break
        advance(index - 1)
        sim.command(np.full(n, volts))
    advance(total - 1)
    out[:, :, 6] *= 2 * np.pi / ex.cpr
    return out[:, :: problem.stride]


@dataclass
class Identified:
    """What the fit found."""

    values: dict[str, float]  # every free parameter's fitted value
    rel_std: dict[str, float]  # its 1-sigma relative uncertainty
    identifiable: dict[str, str]  # "" when identifiable, else why not
    correlation: dict[str, dict[str, float]]  # between the free parameters' estimates
    delay_substeps: int
    rms_before: float  # weighted RMS residual at the config's values
    rms_after: float
    converged: bool
    seconds: float
    evaluations: int
    nominal: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def identify(
    device: DeviceConfig, ex: Excitation, free: Sequence[str] = DEFAULT_FREE, seed: int = 0,
    generations: int = 60, popsize: int = 16, progress: Callable[[str], None] | None = None,
) -> tuple[Identified, Problem, Array, int]:  # fmt: skip
    """Fit ``free`` to ``ex``: CMA-ES, then least squares; (result, problem, best x, delay)."""
    import cma
    from scipy.optimize import least_squares

    say = progress or (lambda _m: None)
    t0 = time.time()
    prob = Problem(device, ex, tuple(free))
    n_free = len(prob.free)
    evaluations = 0
    # Variables: log-multipliers, the initial swing (angle, rate) and the delay (substeps / 5).
    lower = np.r_[prob.lower, -0.5, -3.0, 0.0]
    upper = np.r_[prob.upper, 0.5, 3.0, MAX_DELAY / 5]
    x0 = np.r_[np.zeros(n_free), 0.0, 0.0, 0.4]
    es = cma.CMAEvolutionStrategy(
        x0, 0.5, {"bounds": [lower.tolist(), upper.tolist()], "popsize": popsize, "seed": seed + 1,
                  "verbose": -9, "maxiter": generations, "CMA_stds": np.r_[np.ones(n_free), 0.2, 2.0, 1.0]},
    )  # fmt: skip
    base = prob.residuals(x0[None, :-1], np.array([x0[-1] * 5]))
    evaluations += 1
    rms_before = float(np.sqrt(np.mean(base**2)))
    gen = 0
    while not es.stop():
        cand = np.array(es.ask())
        r = prob.residuals(cand[:, :-1], cand[:, -1] * 5)
        evaluations += len(cand)
        cost = np.mean(r**2, axis=1)
        es.tell(list(cand), cost.tolist())
        gen += 1
        say(
            f"CMA-ES generation {gen}/{generations}: best RMS {np.sqrt(es.result.fbest):.4f} (config's {rms_before:.4f})"
        )
    best = np.asarray(es.result.xbest)
    delay = int(np.clip(np.rint(best[-1] * 5), 0, MAX_DELAY))
    xb = best[:-1]

    def fun(x: Array) -> Array:
        nonlocal evaluations
        evaluations += 1
        return prob.residuals(x[None], np.array([delay]))[0]

    def jac(x: Array) -> Array:
        nonlocal evaluations
        h = 1e-3
        xs = np.vstack([x, x + h * np.eye(len(x))])
        r = prob.residuals(xs, np.full(len(xs), delay))
        evaluations += len(xs)
        return ((r[1:] - r[0]) / h).T

    lo, hi = lower[:-1], upper[:-1]
    fit = least_squares(fun, np.clip(xb, lo + 1e-9, hi - 1e-9), jac=jac, bounds=(lo, hi), method="trf",
                        x_scale="jac", max_nfev=100)  # fmt: skip
    say(f"least squares: {fit.nfev} steps, {fit.message}")
    x = fit.x
    r = fit.fun
    dof = max(1, r.size - len(x))
    s2 = float(r @ r) / dof
    # Through the SVD, not a pseudo-inverse: a direction the log cannot see (a tiny singular value) must
    # come out as a huge variance, where pinv would drop it and report the parameters as well known.
    _, sv, vt = np.linalg.svd(fit.jac, full_matrices=False)
    sv = np.maximum(sv, sv[0] * 1e-9)
    cov = (vt.T / sv**2) @ vt * s2
    # Residuals of neighbouring samples are correlated (coloured): the Gauss-Newton variance is optimistic.
    # Inflate it by the residual's correlation length in samples (from its autocorrelation).
    cov *= correlation_length(r.reshape(-1, 7))
    std = np.sqrt(np.clip(np.diag(cov), 0, None))[:n_free]
    corr = cov[:n_free, :n_free] / np.outer(std, std).clip(1e-30)
    values = prob.values(x)
    why = {}
    for i, name in enumerate(prob.free):
        partner = int(np.argmax(np.abs(np.where(np.arange(n_free) == i, 0, corr[i]))))
        traded = n_free > 1 and abs(corr[i, partner]) > MAX_CORRELATION
        if std[i] <= IDENTIFIABLE_REL_STD and not traded:
            why[name] = ""
            continue
        if traded:
            why[name] = (f"trades off against {prob.free[partner]} (correlation {corr[i, partner]:+.2f}): "
                         "the log moves both the same way")  # fmt: skip
        else:
            why[name] = f"barely changes the signals this log holds (+-{std[i]:.0%})"
    result = Identified(
        values=values, rel_std={n: float(s) for n, s in zip(prob.free, std, strict=True)}, identifiable=why,
        correlation={a: {b: round(float(corr[i, j]), 3) for j, b in enumerate(prob.free)}
                     for i, a in enumerate(prob.free)},
        delay_substeps=delay, rms_before=rms_before, rms_after=float(np.sqrt(np.mean(r**2))),
        converged=bool(fit.success) and float(np.sqrt(np.mean(r**2))) < rms_before,
        seconds=time.time() - t0, evaluations=evaluations,
        nominal={n: float(v) for n, v in zip(prob.free, prob.nominal, strict=True)},
    )  # fmt: skip
    return result, prob, x, delay


def correlation_length(r: Array) -> float:
    """Samples over which the residual stays correlated: 1 + 2 * sum of its autocorrelation to the first zero."""
    total = 1.0
    for col in r.T:
        c = col - col.mean()
        if not np.any(c):
            continue
        f = np.fft.rfft(c, 2 * len(c))
        ac = np.fft.irfft(f * np.conj(f))[: len(c)]
        ac /= ac[0]
        stop = np.argmax(ac <= 0) or len(ac)
        total = max(total, 1.0 + 2.0 * float(ac[1:stop].sum()))
    return total


def plot_fit(prob: Problem, x: Array, delay: int, path: Path, title: str) -> None:
    """Logged against simulated (config's values and fitted): encoder angle and the three gyro axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x0 = np.r_[np.zeros(len(prob.free)), x[len(prob.free) :]]
    sims = simulate(prob, np.vstack([x0, x]), np.array([delay, delay]))
    t = np.arange(len(prob.target)) * prob.stride / prob.ex.rate_hz
    rows = [(6, "arm angle (rad)"), (0, "gyro x (rad/s)"), (1, "gyro y (rad/s)"), (2, "gyro z (rad/s)")]
    fig, axes = plt.subplots(len(rows), 1, figsize=(11, 9), sharex=True)
    for ax, (c, label) in zip(axes, rows, strict=True):
        logged = np.where(prob.mask[:, c], prob.target[:, c], np.nan)
        ax.plot(t, logged, color="black", lw=1.0, label="logged")
        ax.plot(t, sims[0, :, c], color="tab:red", lw=0.8, alpha=0.7, label="config's values")
        ax.plot(t, sims[1, :, c], color="tab:blue", lw=0.8, label="identified")
        ax.set_ylabel(label)
    axes[0].legend(loc="upper right", fontsize=8)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_log(path: Path, device: DeviceConfig) -> Excitation:
    """Read and check an excitation log for ``device``; :class:`IdentifyError` naming what is wrong."""
    try:
        ex = read_excitation(path, device.imu.rate_hz, device.encoder_cpr)
    except LogError as exc:
        raise IdentifyError(str(exc)) from None
    check_excitation(ex, str(path))
    return ex
