"""Batched simulated device: N Furuta pendulums with sensors, latency and randomization.

The Python face of the compiled core (:mod:`sensorimotor.sim.core`), used by the
Gymnasium envs, the vector envs, the perception data generator, evaluation and the twin.
One *substep* is one physics step and one IMU/encoder sample (``imu.rate_hz``); a
*control step* is ``substeps_per_control`` substeps. Commands pass through a FIFO and
reach the motor after the episode's actuator delay; sensor data reaches the host after
its stream's delay (all in substeps, drawn per episode from ``device.randomization``).

Raw observation (what the device streams and the exported model consumes)::

    imu      (N, 6, W) float32  gyro xyz rad/s, accel xyz m/s^2, oldest sample first
    encoder  (N, E, W) float32  encoder counts, sampled with the IMU (the Furuta: E = 1, the motor's)
    image    (N, 1, H, W) uint8    latest camera frame that has reached the host

Seeding: env ``i`` of ``FurutaSim(cfg, n, seed)`` is the env of ``FurutaSim(cfg, 1, seed + i)``,
bit for bit, and its k-th episode depends only on (seed + i, k).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sensorimotor.sim import core
from sensorimotor.sim.config import RANDOMIZED_PARAMS, DeviceConfig, RandomizationConfig
from sensorimotor.sim.furuta import PARAM_NAMES, FurutaParams
from sensorimotor.sim.rng import env_keys
from sensorimotor.sim.sensors import metres_per_pixel

Array = np.ndarray

PARALLEL_MIN_ENVS = 8  # below this, one thread is faster than waking the pool


def nominal_params(cfg: DeviceConfig) -> FurutaParams:
    """The config's nominal physics as FurutaParams."""
    return FurutaParams(**dataclasses.asdict(cfg.physics))


def settings(cfg: DeviceConfig, imu: bool = True, camera: bool = True) -> core.Settings:
    """Sizes, rates and noise model of the compiled core for a device config."""
    r = cfg.randomization
    ring = cfg.imu.window + r.imu_delay_substeps[1] + 1
    spf = cfg.substeps_per_frame
    return core.Settings(
        dt=1.0 / cfg.imu.rate_hz, substeps=cfg.substeps_per_control, window=cfg.imu.window, ring=ring,
        frame_substeps=spf, frames=r.camera_delay_substeps[1] // spf + 2,
        queue=r.action_delay_substeps[1] // cfg.substeps_per_control + 2,
        warmup=max(ring, spf + r.camera_delay_substeps[1] + 1), cpr=float(cfg.encoder_cpr),
        use_imu=imu, use_camera=camera, imu_noise=cfg.imu.noise, imu_position=cfg.imu.position_m,
        height=cfg.camera.height, width=cfg.camera.width, m_per_px=metres_per_pixel(cfg.image_shape),
        occlusion_prob=cfg.camera.occlusion_prob, blackout_prob=cfg.camera.blackout_prob, v_max=cfg.v_max,
    )  # fmt: skip


def imu_noise_table(cfg: DeviceConfig) -> Array:
    """(6, 6) per channel: white sigma per sample, walk sigma per sample, bias decay, turn-on sigma, range, scale sigma."""
    i, dt = cfg.imu, 1.0 / cfg.imu.rate_hz
    k = i.noise_scale if i.noise else 0.0
    rows = []
    for gyro in (True, False):
        dens, walk, tau, on, rng = (
            (i.gyro_noise_density, i.gyro_random_walk, i.gyro_bias_tau, i.gyro_turn_on_sigma, i.gyro_range)
            if gyro
            else (i.accel_noise_density, i.accel_random_walk, i.accel_bias_tau, i.accel_turn_on_sigma, i.accel_range)
        )
        rows += [
            [k * dens / np.sqrt(dt), k * walk * np.sqrt(dt), np.exp(-dt / tau), k * on, rng, k * i.scale_error]
        ] * 3
    return np.array(rows, np.float64)


def ranges(cfg: DeviceConfig, randomize: bool = True, initial: Array | None = None) -> core.Ranges:
    """What each reset draws from. ``randomize=False``: nominal physics and the shortest delays.

    ``initial``: (4, 2) [low, high] of the released state (a task's reset distribution);
    by default ``cfg.initial``'s, near upright.
    """
    nominal = nominal_params(cfg)
    r = cfg.randomization
    scale = np.ones((len(PARAM_NAMES), 2))
    log_scale = np.zeros(len(PARAM_NAMES), np.bool_)
    if randomize:
        for group, names in RANDOMIZED_PARAMS.items():
            spread = getattr(r, group)
            wide = group in r.wide
            for name in names:
                j = PARAM_NAMES.index(name)
                scale[j] = (1.0 / (1.0 + spread), 1.0 + spread) if wide else (1.0 - spread, 1.0 + spread)
                log_scale[j] = wide
    delays = [r.action_delay_substeps, r.imu_delay_substeps, r.camera_delay_substeps]
    delay = np.array([d if randomize else (d[0], d[0]) for d in delays], np.int64)
    if initial is None:
        ini = cfg.initial
        a = np.deg2rad(ini.angle_deg)
        initial = np.array([[-ini.arm_rad, ini.arm_rad], [-a, a], [0.0, 0.0], [-ini.rate_rad_s, ini.rate_rad_s]])
    return core.Ranges(
        nominal=np.array([float(getattr(nominal, n)) for n in PARAM_NAMES]), scale=scale, log_scale=log_scale,
        delay=delay,
        initial=initial, camera=camera_ranges(cfg),
        imu_gain=np.array([1.0 - r.imu_noise, 1.0 + r.imu_noise]) if randomize else np.ones(2),
    )  # fmt: skip


def camera_ranges(cfg: DeviceConfig) -> Array:
    """(N_CAM, 2) per-episode camera parameter ranges (fixed, plain values when ``camera.randomize`` is off)."""
    c = cfg.camera
    if not c.randomize:
        fixed = {"background": 0.2, "brightness": 0.9}
        return np.array([[fixed.get(n, 0.0)] * 2 for n in core.CAM_EPISODE_NAMES])
    roll = np.deg2rad(c.roll_deg)
    table = {
        "background": c.background, "brightness": c.brightness, "gradient_rows": (-c.gradient, c.gradient),
        "gradient_cols": (-c.gradient, c.gradient), "texture_amplitude": (0.0, c.texture),
        "texture_cycles": (1.0, 6.0), "texture_angle": (0.0, np.pi), "texture_phase": (0.0, 2 * np.pi),
        "noise_sigma": c.noise_sigma, "shift_x_px": (-c.shift_px, c.shift_px), "shift_y_px": (-c.shift_px, c.shift_px),
        "roll_rad": (-roll, roll), "exposure_s": (c.exposure_ms[0] / 1000.0, c.exposure_ms[1] / 1000.0),
    }  # fmt: skip
    return np.array([table[n] for n in core.CAM_EPISODE_NAMES], np.float64)


class FurutaSim:
    """N simulated devices stepping in lockstep (compiled, seeded, per-env independent).

    ``imu`` / ``camera`` False skip those sensors entirely (the state-only and IMU-only
    observation modes pay nothing for them).
    """

    def __init__(
        self, cfg: DeviceConfig, n: int = 1, seed: int = 0, randomize: bool = True, imu: bool = True,
        camera: bool = True, initial: Array | None = None,
    ) -> None:  # fmt: skip
        self.cfg, self.n, self.randomize = cfg, n, randomize
        self.dt = 1.0 / cfg.imu.rate_hz
        self.settings = settings(cfg, imu, camera)
        self.ranges = ranges(cfg, randomize, initial)
        s = self.settings
        h, w = cfg.image_shape
        cam_n = n if camera else 0  # no image memory when there is no camera
        self.buffers = core.Buffers(
            state=np.zeros((n, 4)), params=np.tile(self.ranges.nominal, (n, 1)), volts=np.zeros(n),
            tick=np.zeros(n, np.int64), key=env_keys(seed, n), episode=np.zeros(n, np.int64),
            queue_v=np.zeros((n, s.queue)), queue_t=np.zeros((n, s.queue), np.int64), queue_n=np.zeros(n, np.int64),
            dropped=np.zeros(n, np.int64), delay=np.zeros((n, 3), np.int64), cam_phase=np.zeros(n, np.int64),
            imu=np.zeros((n, s.ring, 6), np.float32), enc=np.zeros((n, s.ring), np.int32),
            imu_state=np.zeros((n, s.ring, 4)),
            bias=np.zeros((n, 6)), imu_scale=np.zeros((n, 6)), imu_gain=np.ones(n), imu_noise=imu_noise_table(cfg),
            cam_ep=np.zeros((n, core.N_CAM)), background=np.zeros((cam_n, h, w), np.float32),
            frames=np.zeros((cam_n, s.frames, h, w), np.uint8), frame_tick=np.full((cam_n, s.frames), -1, np.int64),
            frame_label=np.zeros((cam_n, s.frames), np.int64), frame_state=np.zeros((cam_n, s.frames, 4)),
        )  # fmt: skip
        self._step = core.step_parallel if n >= PARALLEL_MIN_ENVS else core.step_serial

    # ------------------------------------------------------------------ state views

    @property
    def state(self) -> Array:
        """True state (N, 4) [theta, alpha, theta_dot, alpha_dot]; a view, do not write."""
        return self.buffers.state

    @property
    def tick(self) -> Array:
        """Substeps since each env's reset (N,)."""
        return self.buffers.tick

    @property
    def volts(self) -> Array:
        """Voltage reaching the amplifier now (N,)."""
        return self.buffers.volts

    @property
    def delays(self) -> Array:
        """This episode's delays (N, 3) in substeps: actuator, IMU/encoder to host, camera to host."""
        return self.buffers.delay

    @property
    def params(self) -> FurutaParams:
        """This episode's physical parameters, each an (N,) array."""
        cols = self.buffers.params
        return FurutaParams(**{name: cols[:, j] for j, name in enumerate(PARAM_NAMES)})

    def set_randomization(self, randomization: RandomizationConfig) -> None:
        """Draw later resets' physics from ``randomization`` (a curriculum); the delay ranges stay as built."""
        delays = ("action_delay_substeps", "imu_delay_substeps", "camera_delay_substeps")
        old = self.cfg.randomization
        if any(getattr(randomization, d) != getattr(old, d) for d in delays):
            raise ValueError(
                "set_randomization: the delay ranges size the buffers; build a new simulator to change them"
            )
        self.cfg = dataclasses.replace(self.cfg, randomization=randomization)
        self.ranges = ranges(self.cfg, self.randomize, self.ranges.initial)

    # ------------------------------------------------------------------ reset / step

    def reset(self, idx: Array | None = None, state: Array | None = None) -> None:
        """New episodes for envs ``idx`` (all by default): new params and delays, an initial state, a sensor warm-up.

        Warm-up: the pendulum is *held still* at its initial angle while the sensors fill
        their buffers (an operator holding it while the device streams), then released
        with its initial rate, so the first observation is a full window. ``state``
        (len(idx), 4) overrides the drawn initial states.
        """
        which = np.arange(self.n) if idx is None else np.asarray(idx, np.int64).reshape(-1)
        if len(which) == 0:
            return
        start = np.zeros((len(which), 4)) if state is None else np.asarray(state, np.float64).reshape(len(which), 4)
        core.reset_envs(self.buffers, self.settings, self.ranges, which, start, state is not None)

    def step(self, volts: Array) -> None:
        """One control step: queue the commands (V, clipped to +-v_max), then ``substeps_per_control`` substeps."""
        self._step(self.buffers, self.settings, np.asarray(volts, np.float64).reshape(self.n))

    def command(self, volts: Array) -> None:
        """Queue commands without advancing; they reach the motor after each env's actuator delay."""
        core.push_commands(self.buffers, self.settings, np.asarray(volts, np.float64).reshape(self.n))

    def substep(self, count: int = 1) -> None:
        """Advance ``count`` substeps with no new command (the twin's real-time tick)."""
        core.advance(self.buffers, self.settings, count)

    # ------------------------------------------------------------------ outputs

    def received(self, count: int | None = None) -> dict[str, Array]:
        """What has reached the host: the last ``count`` (default: window) samples, the newest frame, its label and state.

        ``imu_state``: the true state at the newest received IMU sample (it lags ``state`` by the IMU delay);
        ``image_state``: at the middle of the newest received frame's exposure (the instant it shows).
        """
        n, s = self.n, self.settings
        k = s.window if count is None else count
        h, w = self.cfg.image_shape
        cam_n = n if s.use_camera else 0
        out: dict[str, Array] = {
            "imu": np.zeros((n, 6, k), np.float32), "encoder": np.zeros((n, k), np.float32),
            "image": np.zeros((n, 1, h, w), np.uint8), "camera_class": np.zeros(n, np.int64),
            "image_state": np.zeros((n, 4)), "imu_state": np.zeros((n, 4)),
        }  # fmt: skip
        if cam_n or s.use_imu:
            gather = core.gather if n >= PARALLEL_MIN_ENVS else core.gather_serial
            gather(self.buffers, s, k, out["imu"], out["encoder"], out["image"], out["camera_class"],
                   out["image_state"], out["imu_state"])  # fmt: skip
        return out

    def observation(self) -> dict[str, Array]:
        """Raw sensor windows, the exported model's inputs (see module docstring)."""
        r = self.received()
        return {"imu": r["imu"], "encoder": r["encoder"][:, None], "image": r["image"]}  # one encoder: (N, 1, W)

    def latest_samples(self, k: int) -> tuple[Array, Array]:
        """The last ``k`` IMU samples (N, k, 6) and encoder counts (N, k) the host has received."""
        r = self.received(k)
        return r["imu"].transpose(0, 2, 1).copy(), r["encoder"].astype(np.int32)

    @property
    def image(self) -> Array:
        """Newest received frames (N, H, W)."""
        return self.received()["image"][:, 0]

    @property
    def cam_label(self) -> Array:
        """Fault class of the newest received frames (N,)."""
        return self.received()["camera_class"]

    @property
    def image_state(self) -> Array:
        """True state when the newest received frames were captured (N, 4)."""
        return self.received()["image_state"]
