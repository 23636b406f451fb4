"""Batched simulated device on the MuJoCo backend: N MJCF models with sensors, latency and randomization.

The MuJoCo counterpart of :class:`~sensorimotor.sim.device.FurutaSim`, for a device
described by an MJCF model (:mod:`sensorimotor.sim.balancer` is one): one *substep* is one
MuJoCo step and one IMU/encoder sample, a *control step* is ``substeps`` of them, advanced
for all N envs by one ``mujoco.rollout`` call (no Python loop over envs or substeps).
Commands pass through a FIFO and reach the actuators after the episode's actuator delay;
the amplifier's deadzone and saturation are applied here, not in the MJCF; sensor samples
reach the host after the episode's IMU delay.

What the device supplies is an :class:`MjcfDevice`: its MJCF for given parameter values
(each env's model is compiled from its own draw), which sensors are its IMU and its
encoders, its state as named values of MuJoCo's positions and velocities, and how an
episode starts. Per-episode randomization multiplies each named parameter by a draw
(uniform, or log-uniform for ``wide`` groups), as the Furuta's does.

Raw observation (what the device streams and an exported model consumes)::

    imu      (N, 6, W) float32  gyro xyz rad/s, accel xyz m/s^2 at the IMU site, oldest sample first
    encoder  (N, E, W) float32  each encoder's counts, sampled with the IMU

Noise: white noise on each IMU channel (its density over the sample rate), a turn-on bias
per episode, saturation at the channel's range. Random numbers are counter-based
(:mod:`sensorimotor.sim.rng`): env ``i`` of ``MujocoDeviceSim(dev, n, seed)`` is the env
of ``MujocoDeviceSim(dev, 1, seed + i)`` and its k-th episode depends only on (seed + i, k).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sensorimotor.sim.config import ImuSensorConfig, RandomizationConfig
from sensorimotor.sim.mujoco_backend import import_mujoco
from sensorimotor.sim.rng import STREAM_BIAS, STREAM_IMU, STREAM_RESET, env_keys, hash_np, normal_np, uniform_np

Array = np.ndarray

# Columns of the actuator FIFO's time stamps and of the per-episode delays (substeps).
D_ACT, D_IMU = 0, 1
# The streams as arrays: numpy warns when a scalar product wraps, as the hash's multiply is meant to.
_RESET, _IMU, _BIAS = (np.array([s]) for s in (STREAM_RESET, STREAM_IMU, STREAM_BIAS))


@dataclass(frozen=True)
class ImuNoise:
    """Per channel (6: gyro xyz, accel xyz): white sigma per sample, turn-on bias sigma, saturation range."""

    white: Array
    turn_on: Array
    range: Array

    @staticmethod
    def of(
        rate_hz: float, gyro_density: float, accel_density: float, gyro_turn_on: float, accel_turn_on: float,
        gyro_range: float, accel_range: float, scale: float = 1.0,
    ) -> ImuNoise:  # fmt: skip
        """From noise densities (per sqrt(Hz)) at ``rate_hz``; ``scale`` multiplies every sigma (0: ideal)."""
        root = math.sqrt(rate_hz)
        return ImuNoise(
            white=scale * np.repeat([gyro_density * root, accel_density * root], 3),
            turn_on=scale * np.repeat([gyro_turn_on, accel_turn_on], 3),
            range=np.repeat([gyro_range, accel_range], 3).astype(np.float64),
        )

    @staticmethod
    def of_config(imu: ImuSensorConfig) -> ImuNoise:
        """From a device's ``imu`` section (white noise and turn-on bias; ``noise: false`` is ideal)."""
        return ImuNoise.of(
            imu.rate_hz, imu.gyro_noise_density, imu.accel_noise_density, imu.gyro_turn_on_sigma,
            imu.accel_turn_on_sigma, imu.gyro_range, imu.accel_range, scale=imu.noise_scale if imu.noise else 0.0,
        )  # fmt: skip


@dataclass(frozen=True)
class Randomization:
    """Per-parameter multiplier ranges [low, high] (P, 2), log-uniform where ``log``; delay ranges (2, 2) in substeps."""

    scale: Array
    log: Array
    delay: Array

    @staticmethod
    def grouped(
        cfg: RandomizationConfig, param_names: Sequence[str], groups: Mapping[str, Sequence[str]], randomize: bool
    ) -> Randomization:  # fmt: skip
        """From a ``device.randomization`` section: each group's spread multiplies the parameters ``groups`` maps it
        to, ``U(1 - s, 1 + s)``, or ``1/(1 + s)..(1 + s)`` log-uniform for the ``wide`` groups; delays as configured.
        ``randomize=False``: nominal parameters and the shortest delays."""
        scale = np.ones((len(param_names), 2))
        log = np.zeros(len(param_names), np.bool_)
        if randomize:
            for group, names in groups.items():
                spread, wide = getattr(cfg, group), group in cfg.wide
                for name in names:
                    j = list(param_names).index(name)
                    scale[j] = (1.0 / (1.0 + spread), 1.0 + spread) if wide else (1.0 - spread, 1.0 + spread)
                    log[j] = wide
        delays = np.array([cfg.action_delay_substeps, cfg.imu_delay_substeps], np.int64)
        if not randomize:
            delays[:, 1] = delays[:, 0]
        return Randomization(scale=scale, log=log, delay=delays)


class MjcfDevice(ABC):
    """What a MuJoCo-described device tells the batched simulator.

    Sizes and rates: ``dt`` (one substep = one IMU sample), ``substeps`` per control step,
    ``window`` IMU samples per observation, ``v_max`` (each actuator's command range +-v_max).
    """

    dt: float
    substeps: int
    window: int
    v_max: float
    #: Names of the parameters :meth:`mjcf` reads, in the order :meth:`nominal` returns them.
    param_names: tuple[str, ...]
    #: Names of the values :meth:`state` returns.
    state_names: tuple[str, ...]
    #: The MJCF's gyro and accelerometer sensors (3 values each), the IMU's 6 channels.
    imu_sensors: tuple[str, str] = ("gyro", "accel")
    #: The MJCF's joint-position sensors, one per encoder, in the spec's order.
    encoder_sensors: tuple[str, ...] = ()
    #: Counts per revolution of each encoder.
    encoder_cpr: tuple[int, ...] = ()
    #: Number of uniform draws :meth:`initial` takes per env.
    initial_draws: int = 0

    @abstractmethod
    def nominal(self) -> Array:
        """(P,) nominal parameter values, :attr:`param_names` order."""

    @abstractmethod
    def randomization(self, randomize: bool) -> Randomization:
        """What each episode draws; ``randomize=False``: nominal parameters and the shortest delays."""

    @abstractmethod
    def mjcf(self, params: Mapping[str, float]) -> str:
        """The MJCF of the device with these parameter values."""

    @abstractmethod
    def imu_noise(self) -> ImuNoise:
        """The IMU's noise model."""

    @abstractmethod
    def deadzone_saturation(self, params: Array) -> tuple[Array, Array]:
        """(N,) amplifier deadzone and saturation (V) of each env's parameters (N, P)."""

    @abstractmethod
    def initial(self, model: Any, u: Array) -> tuple[Array, Array]:
        """(qpos, qvel) an episode starts from, given :attr:`initial_draws` uniforms ``u`` in [0, 1)."""

    @abstractmethod
    def state(self, qpos: Array, qvel: Array) -> Array:
        """(..., S) :attr:`state_names` from MuJoCo positions (..., nq) and velocities (..., nv)."""


@dataclass
class _Rings:
    """Per-env sample rings: the sample of tick t sits at t % R."""

    imu: Array  # (N, R, 6) f4
    enc: Array  # (N, R, E) i4
    state: Array  # (N, R, S) f8  true state at each sample (perception's labels)


@dataclass
class _Queue:
    """Per-env actuator FIFO: commands (N, Q, nu) and the tick each takes effect (N, Q); -1 marks a free slot."""

    volts: Array
    due: Array
    dropped: Array = field(default_factory=lambda: np.zeros(0, np.int64))


class MujocoDeviceSim:
    """N simulated MJCF devices stepping in lockstep (seeded, per-env independent)."""

    def __init__(self, device: MjcfDevice, n: int = 1, seed: int = 0, randomize: bool = True, threads: int = 1) -> None:
        self.mujoco, self._rollout = import_mujoco()
        self.device, self.n, self.randomize = device, n, randomize
        self.dt = device.dt
        self.random = device.randomization(randomize)
        self._nominal = device.nominal()
        self._models: dict[bytes, Any] = {}
        base = self._model(self._nominal)
        self.nu, self.nq, self.nv = base.nu, base.nq, base.nv
        self._spec = self.mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = self.mujoco.mj_stateSize(base, self._spec)
        self._imu_cols, self._enc_cols = self._sensor_columns(base)
        self._qpos_cols = slice(1, 1 + self.nq)
        self._qvel_cols = slice(1 + self.nq, 1 + self.nq + self.nv)
        self.datas = [self.mujoco.MjData(base) for _ in range(max(1, threads))]
        self.models: list[Any] = [base] * n
        self.noise = device.imu_noise()
        max_act, max_imu = int(self.random.delay[D_ACT, 1]), int(self.random.delay[D_IMU, 1])
        self.ring = device.window + max_imu + device.substeps + 1
        queue = max_act // device.substeps + 2
        n_enc, n_state = len(device.encoder_sensors), len(device.state_names)
        self.keys = env_keys(seed, n)
        self.episode = np.zeros(n, np.int64)
        self.tick = np.zeros(n, np.int64)
        self.params = np.tile(self._nominal, (n, 1))
        self.delays = np.zeros((n, 2), np.int64)
        self.bias = np.zeros((n, 6))
        self.physics = np.zeros((n, self.nstate))
        self.volts = np.zeros((n, self.nu))
        self.queue = _Queue(np.zeros((n, queue, self.nu)), np.full((n, queue), -1, np.int64), np.zeros(n, np.int64))
        self.rings = _Rings(
            np.zeros((n, self.ring, 6), np.float32), np.zeros((n, self.ring, n_enc), np.int32),
            np.zeros((n, self.ring, n_state)),
        )  # fmt: skip
        self._state = np.zeros((n, n_state))

    # ------------------------------------------------------------------ models

    def _model(self, params: Array) -> Any:
        """The compiled MJCF for these parameter values (cached: the nominal one is built once)."""
        key = np.asarray(params, np.float64).tobytes()
        model = self._models.get(key)
        if model is None:
            values = dict(zip(self.device.param_names, map(float, params), strict=True))
            model = self.mujoco.MjModel.from_xml_string(self.device.mjcf(values))
            if len(self._models) < 4:  # nominal and a few repeats; randomized draws are all different
                self._models[key] = model
        return model

    def _sensor_columns(self, model: Any) -> tuple[Array, Array]:
        """Columns of ``sensordata`` holding the IMU's 6 channels and each encoder's angle."""

        def columns(name: str, dim: int) -> list[int]:
            sid = self.mujoco.mj_name2id(model, self.mujoco.mjtObj.mjOBJ_SENSOR, name)
            if sid < 0:
                raise ValueError(f"the MJCF has no sensor {name!r} (the device names it)")
            if model.sensor_dim[sid] != dim:
                raise ValueError(f"sensor {name!r} gives {model.sensor_dim[sid]} values (expected {dim})")
            return list(range(model.sensor_adr[sid], model.sensor_adr[sid] + dim))

        gyro, accel = self.device.imu_sensors
        imu = columns(gyro, 3) + columns(accel, 3)
        enc = [c for name in self.device.encoder_sensors for c in columns(name, 1)]
        return np.array(imu), np.array(enc, np.int64)

    # ------------------------------------------------------------------ state views

    @property
    def state(self) -> Array:
        """True state (N, S) in :attr:`MjcfDevice.state_names`; a view, do not write."""
        return self._state

    @property
    def qpos(self) -> Array:
        """MuJoCo joint positions (N, nq) now."""
        return self.physics[:, self._qpos_cols]

    @property
    def qvel(self) -> Array:
        """MuJoCo joint velocities (N, nv) now."""
        return self.physics[:, self._qvel_cols]

    def param(self, name: str) -> Array:
        """This episode's value of parameter ``name`` (N,)."""
        return self.params[:, self.device.param_names.index(name)]

    # ------------------------------------------------------------------ reset / step

    def _uniforms(self, which: Array, counters: Array) -> Array:
        """(len(which), len(counters)) uniforms of the episodes starting now, STREAM_RESET."""
        h = hash_np(self.keys[which, None], self.episode[which, None], _RESET, counters[None, :])
        return uniform_np(h)

    def reset(self, idx: Array | None = None) -> None:
        """New episodes for envs ``idx`` (all by default): parameters, delays, turn-on biases, an initial state.

        Warm-up: the device is held still in its initial pose while the sensors fill the
        window (an operator holding it while it streams), then released with its initial
        rates, so the first observation is a full window.
        """
        which = np.arange(self.n) if idx is None else np.asarray(idx, np.int64).reshape(-1)
        if len(which) == 0:
            return
        self.episode[which] += 1
        dev, r = self.device, self.random
        n_par = len(dev.param_names)
        u = self._uniforms(which, np.arange(dev.initial_draws + 2 + n_par))
        u_init, u_delay, u_par = (
            u[:, : dev.initial_draws],
            u[:, dev.initial_draws : dev.initial_draws + 2],
            u[:, -n_par:],
        )
        lo, hi = r.scale[:, 0], r.scale[:, 1]
        lin = lo + u_par * (hi - lo)
        logs = np.exp(np.log(lo) + u_par * (np.log(hi) - np.log(lo)))
        self.params[which] = self._nominal * np.where(r.log, logs, lin)
        span = r.delay[:, 1] - r.delay[:, 0] + 1
        self.delays[which] = r.delay[:, 0] + np.minimum((u_delay * span).astype(np.int64), span - 1)
        hb = hash_np(self.keys[which, None], self.episode[which, None], _BIAS, np.arange(6)[None, :])
        self.bias[which] = normal_np(hb) * self.noise.turn_on
        self.tick[which] = 0
        self.volts[which] = 0.0
        self.queue.due[which] = -1
        self.queue.dropped[which] = 0
        data = self.datas[0]
        held = np.zeros((len(which), self.nsensors))
        for row, i in enumerate(which):
            model = self._model(self.params[i])
            self.models[i] = model
            qpos, qvel = dev.initial(model, u_init[row])
            self.mujoco.mj_resetData(model, data)
            data.qpos[:] = qpos
            self.mujoco.mj_forward(model, data)  # held still: the sensors read the pose at rest
            held[row] = data.sensordata
            data.qvel[:] = qvel
            self.mujoco.mj_getState(model, data, self.physics[i], self._spec)
        ticks = np.arange(-self.ring + 1, 1)  # the whole ring, ending at the release
        held_state = dev.state(self.physics[which][:, self._qpos_cols], np.zeros((len(which), self.nv)))
        samples = np.repeat(held[:, None, :], len(ticks), axis=1)
        self._record(which, ticks, samples, np.repeat(held_state[:, None, :], len(ticks), axis=1))
        self._state[which] = dev.state(self.physics[which][:, self._qpos_cols], self.physics[which][:, self._qvel_cols])

    @property
    def nsensors(self) -> int:
        return int(self.models[0].nsensordata)

    def command(self, volts: Array) -> None:
        """Queue commands (N, nu), clipped to +-v_max; they reach the actuators after each env's actuator delay."""
        v = np.clip(np.asarray(volts, np.float64).reshape(self.n, self.nu), -self.device.v_max, self.device.v_max)
        q = self.queue
        free = q.due < 0
        has = free.any(axis=1)
        slot = np.argmax(free, axis=1)
        rows = np.flatnonzero(has)
        q.volts[rows, slot[rows]] = v[rows]
        q.due[rows, slot[rows]] = self.tick[rows] + self.delays[rows, D_ACT]
        q.dropped[~has] += 1

    def step(self, volts: Array) -> None:
        """One control step: queue the commands, then ``substeps`` substeps."""
        self.command(volts)
        self.substep(self.device.substeps)

    def substep(self, count: int = 1) -> None:
        """Advance every env ``count`` substeps in one rollout (the twin's real-time tick is 1)."""
        ticks = self.tick[:, None] + np.arange(count)[None, :]  # (N, T) the tick each substep starts at
        applied = self._applied(ticks)  # (N, T, nu)
        dz, sat = self.device.deadzone_saturation(self.params)
        mag = np.minimum(np.maximum(np.abs(applied) - dz[:, None, None], 0.0), sat[:, None, None])
        ctrl = np.ascontiguousarray(np.copysign(mag, applied))
        states, sensors = self._rollout.rollout(self.models, self.datas, self.physics, ctrl)
        self.physics[:] = states[:, -1]
        true = self.device.state(states[..., self._qpos_cols], states[..., self._qvel_cols])
        self._record(np.arange(self.n), ticks + 1, sensors, true)
        self.tick += count
        self._state[:] = true[:, -1]

    def _applied(self, ticks: Array) -> Array:
        """(N, T, nu) the command at the actuators during each substep, retiring due FIFO entries."""
        q = self.queue
        out = np.empty((*ticks.shape, self.nu))
        for k in range(ticks.shape[1]):  # T is a control step's substeps: a short loop over time, not envs
            t = ticks[:, k]
            due = (q.due >= 0) & (q.due <= t[:, None])
            if due.any():
                latest = np.where(due, q.due, -1)
                pick = np.argmax(latest, axis=1)
                rows = np.flatnonzero(due.any(axis=1))
                self.volts[rows] = q.volts[rows, pick[rows]]
                q.due[due] = -1
            out[:, k] = self.volts
        return out

    def _record(self, which: Array, ticks: Array, sensors: Array, true: Array) -> None:
        """Write samples of ticks (len(which), T) into the rings: noise, bias, saturation, encoder counts."""
        nz = self.noise
        ch = np.arange(6)
        h = hash_np(
            self.keys[which, None, None], self.episode[which, None, None], _IMU,
            (ticks[..., None] + self.ring) * 8 + ch,  # non-negative counters: warm-up ticks start at -ring + 1
        )  # fmt: skip
        imu = sensors[..., self._imu_cols] + self.bias[which, None, :] + normal_np(h) * nz.white
        imu = np.clip(imu, -nz.range, nz.range)
        cpr = np.asarray(self.device.encoder_cpr, np.float64)
        enc = np.floor(sensors[..., self._enc_cols] * (cpr / (2.0 * np.pi))).astype(np.int32)
        slots = ticks % self.ring
        rows = which[:, None]
        self.rings.imu[rows, slots] = imu.astype(np.float32)
        self.rings.enc[rows, slots] = enc
        self.rings.state[rows, slots] = true

    # ------------------------------------------------------------------ outputs

    def received(self, count: int | None = None) -> dict[str, Array]:
        """What has reached the host: the last ``count`` (default: window) samples and the true state at the newest."""
        k = self.device.window if count is None else count
        newest = self.tick - self.delays[:, D_IMU]
        slots = (newest[:, None] - np.arange(k - 1, -1, -1)[None, :]) % self.ring
        rows = np.arange(self.n)[:, None]
        return {
            "imu": self.rings.imu[rows, slots].transpose(0, 2, 1).copy(),
            "encoder": self.rings.enc[rows, slots].transpose(0, 2, 1).astype(np.float32),
            "imu_state": self.rings.state[np.arange(self.n), newest % self.ring].copy(),
        }

    def observation(self) -> dict[str, Array]:
        """Raw sensor windows, the exported model's inputs (see module docstring)."""
        r = self.received()
        return {"imu": r["imu"], "encoder": r["encoder"]}

    def latest_samples(self, k: int) -> tuple[Array, Array]:
        """The last ``k`` IMU samples (N, k, 6) and encoder counts (N, k, E) the host has received."""
        r = self.received(k)
        return r["imu"].transpose(0, 2, 1).copy(), r["encoder"].transpose(0, 2, 1).astype(np.int32)
