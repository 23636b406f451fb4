"""Batched simulated device: N Furuta pendulums with sensors, latency and randomization.

This is the numpy core under the Gymnasium envs, the perception data generator, the
vectorized RL env and the twin. One *substep* is one physics step and one IMU/encoder
sample (``imu.rate_hz``); a *control step* is ``substeps_per_control`` substeps, with
the new command taking effect after a randomized delay (Isaac Lab style, in substeps).

Raw observation (what the device streams and the exported model consumes)::

    imu      (N, 6, W) float32  gyro xyz rad/s, accel xyz m/s^2, oldest sample first
    encoder  (N, W)    float32  motor encoder counts, sampled with the IMU
    image    (N, 1, H, W) uint8    latest camera frame (camera.height x camera.width)
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.furuta import FurutaParams, rk4_step
from sensorimotor.sim.sensors import (
    CAMERA_OK,
    CameraRandomization,
    ImuNoise,
    ImuNoiseParams,
    encoder_counts,
    imu_ideal,
    render_camera,
)

Array = np.ndarray

_GROUPS = {"mass": ("mr", "mp"), "length": ("Lr", "Lp"), "damping": ("Dr", "Dp"), "motor": ("Rm", "kt", "km")}


def nominal_params(cfg: DeviceConfig) -> FurutaParams:
    """The config's nominal physics as FurutaParams."""
    return FurutaParams(**dataclasses.asdict(cfg.physics))


def camera_randomization(cfg: DeviceConfig) -> CameraRandomization:
    """Camera randomization ranges from the config (identity ranges when disabled)."""
    c = cfg.camera
    if not c.randomize:
        return CameraRandomization(
            brightness=(0.9, 0.9), background=(0.2, 0.2), gradient=0.0, noise_sigma=(0.0, 0.0),
            blur_prob=0.0, shift_px=0.0, roll_deg=0.0,
            occlusion_prob=c.occlusion_prob, blackout_prob=c.blackout_prob,
        )  # fmt: skip
    return CameraRandomization(occlusion_prob=c.occlusion_prob, blackout_prob=c.blackout_prob)


def imu_noise_params(cfg: DeviceConfig) -> ImuNoiseParams:
    """IMU noise parameters scaled by ``imu.noise_scale`` (zero when noise is off)."""
    scale = cfg.imu.noise_scale if cfg.imu.noise else 0.0
    base = ImuNoiseParams()
    return dataclasses.replace(
        base, **{f.name: getattr(base, f.name) * scale for f in dataclasses.fields(base) if not f.name.endswith("tau")}
    )


class FurutaSim:
    """N simulated devices stepping in lockstep (pure numpy, seeded)."""

    def __init__(self, cfg: DeviceConfig, n: int = 1, seed: int = 0, randomize: bool = True) -> None:
        self.cfg, self.n, self.randomize = cfg, n, randomize
        self.rng = np.random.default_rng(seed)
        self.dt = 1.0 / cfg.imu.rate_hz
        self.nominal = nominal_params(cfg)
        self._p = {f.name: np.full(n, float(getattr(self.nominal, f.name))) for f in dataclasses.fields(FurutaParams)}
        self.params = FurutaParams(**self._p)  # arrays mutated in place on reset
        self.cam_rand = camera_randomization(cfg)
        self.noise = ImuNoise(n, self.dt, imu_noise_params(cfg), self.rng)
        w = cfg.imu.window
        self.state = np.zeros((n, 4))
        self.imu = np.zeros((n, w, 6), np.float32)
        self.enc = np.zeros((n, w), np.int32)
        self.image = np.zeros((n, *cfg.image_shape), np.uint8)
        self.cam_label = np.full(n, CAMERA_OK, np.int64)
        self.image_state = np.zeros((n, 4))  # true state when the latest frame was captured
        self.volts = np.zeros(n)  # voltage at the motor now
        self.pending = np.zeros(n)  # commanded voltage not yet applied
        self.pending_at = np.zeros(n, np.int64)  # tick at which `pending` takes effect
        self.tick = np.zeros(n, np.int64)

    # ------------------------------------------------------------------ reset

    def reset(self, idx: Array | None = None, state: Array | None = None) -> None:
        """Reset envs ``idx`` (all by default): new params, initial state, and a sensor warm-up.

        Warm-up: the pendulum is *held still* at its initial angle for one IMU window of
        substeps (an operator holding it while the device streams a window's worth of
        samples), then released with its initial rate. The first observation is
        therefore a full window and the episode really starts at the initial state.
        """
        idx = np.arange(self.n) if idx is None else np.asarray(idx)
        if len(idx) == 0:
            return
        self._sample_params(idx)
        start = self._initial_state(len(idx)) if state is None else np.asarray(state, float)
        self.state[idx] = start * np.array([1.0, 1.0, 0.0, 0.0])  # held: no velocity
        self.noise.reset(idx)
        self.volts[idx] = self.pending[idx] = 0.0
        self.tick[idx] = 0
        self.pending_at[idx] = 0
        self._warm_up(idx)
        self.state[idx, 2:] = start[:, 2:]  # released

    def _sample_params(self, idx: Array) -> None:
        r = self.cfg.randomization
        for group, names in _GROUPS.items():
            spread = getattr(r, group) if self.randomize else 0.0
            for name in names:
                scale = self.rng.uniform(1.0 - spread, 1.0 + spread, size=len(idx))
                self._p[name][idx] = float(getattr(self.nominal, name)) * scale

    def _initial_state(self, k: int) -> Array:
        i = self.cfg.initial
        a = np.deg2rad(i.angle_deg)
        return np.stack(
            [
                self.rng.uniform(-i.arm_rad, i.arm_rad, k),
                self.rng.uniform(-a, a, k),
                np.zeros(k),
                self.rng.uniform(-i.rate_rad_s, i.rate_rad_s, k),
            ],
            axis=-1,
        )

    def _warm_up(self, idx: Array) -> None:
        mask = np.zeros(self.n, bool)
        mask[idx] = True
        for _ in range(self.cfg.imu.window):
            self._substep(mask, hold=True)

    # ------------------------------------------------------------------ stepping

    def command(self, volts: Array) -> None:
        """Issue new motor commands (V, clipped to +-v_max); they land after a random delay."""
        lo, hi = self.cfg.randomization.action_delay_substeps
        delay = self.rng.integers(lo, hi + 1, size=self.n) if self.randomize else np.full(self.n, lo)
        self.pending = np.clip(np.asarray(volts, float).reshape(self.n), -self.cfg.v_max, self.cfg.v_max)
        self.pending_at = self.tick + delay

    def step(self, volts: Array) -> None:
        """One control step: command, then ``substeps_per_control`` substeps."""
        self.command(volts)
        for _ in range(self.cfg.substeps_per_control):
            self._substep(None)

    def substep(self) -> None:
        """One physics substep and sensor sample for every env (the twin's real-time tick)."""
        self._substep(None)

    def _substep(self, mask: Array | None, hold: bool = False) -> None:
        sel = slice(None) if mask is None else mask
        p = self.params if mask is None else FurutaParams(**{k: v[mask] for k, v in self._p.items()})
        due = self.tick[sel] >= self.pending_at[sel]
        self.volts[sel] = np.where(due, self.pending[sel], self.volts[sel])
        x = self.state[sel] if hold else rk4_step(self.state[sel], self.volts[sel], p, self.dt)
        self.state[sel] = x
        self.tick[sel] += 1
        reading = imu_ideal(x, self.volts[sel], p, self.cfg.imu.position_m, held=hold)
        noisy = self.noise.sample(reading) if mask is None else self._noisy_subset(reading, mask)
        self.imu[sel] = np.concatenate([self.imu[sel][:, 1:], noisy[:, None].astype(np.float32)], axis=1)
        enc = encoder_counts(x[:, 0], self.cfg.encoder_cpr)
        self.enc[sel] = np.concatenate([self.enc[sel][:, 1:], enc[:, None]], axis=1)
        frame_due = np.zeros(self.n, bool)
        frame_due[sel] = (self.tick[sel] % self.cfg.substeps_per_frame) == 0
        if frame_due.any():
            self._render(frame_due)

    def _noisy_subset(self, reading: Array, mask: Array) -> Array:
        full = np.zeros((self.n, 6))
        full[mask] = reading
        bias = self.noise.bias.copy()
        out = self.noise.sample(full)[mask]
        self.noise.bias[~mask] = bias[~mask]  # only the selected envs' bias advances
        return out

    def _render(self, which: Array) -> None:
        p = FurutaParams(**{k: v[which] for k, v in self._p.items()})
        img, label = render_camera(self.state[which], p, self.cam_rand, self.rng, self.cfg.image_shape)
        self.image[which] = img
        self.cam_label[which] = label
        self.image_state[which] = self.state[which]

    # ------------------------------------------------------------------ outputs

    def observation(self) -> dict[str, Array]:
        """Raw sensor windows, the exported model's inputs (see module docstring)."""
        return {
            "imu": np.ascontiguousarray(self.imu.transpose(0, 2, 1)),  # (N, 6, W)
            "encoder": self.enc.astype(np.float32),  # (N, W)
            "image": self.image[:, None].copy(),  # (N, 1, H, W)
        }

    def latest_samples(self, k: int) -> tuple[Array, Array]:
        """The last ``k`` IMU samples (N, k, 6) and encoder counts (N, k): one SENSOR frame's worth."""
        return self.imu[:, -k:].copy(), self.enc[:, -k:].copy()
