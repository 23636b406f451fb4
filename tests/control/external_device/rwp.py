"""A reaction-wheel pendulum as a sensorimotor device, from outside the package (docs/adding-a-device.md).

A config picks it with ``device.type: path/to/rwp.py:ReactionWheelConfig``; its MJCF is rwp.xml
beside this file, its parameters filled in per episode. One IMU on the rod, one unbounded wheel
encoder, one motor, no camera; the task is to stay upright.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sensorimotor.configs.schema import Section, doc, nested
from sensorimotor.hardware.spec import IMU_CHANNELS, Actuator, DeviceSpec, Encoder
from sensorimotor.sim.config import DeviceSection, ImuSensorConfig, RandomizationConfig
from sensorimotor.sim.mujoco_device import ImuNoise, MjcfDevice, Randomization

MJCF = Path(__file__).with_name("rwp.xml").read_text()
ANGLE, RATE, WHEEL_RATE = range(3)


@dataclass(frozen=True)
class Physics(Section):
    """Nominal physical parameters."""

    mp: float = doc("Rod mass (kg).", 0.2, gt=0)
    L: float = doc("Pivot to the wheel's axle (m).", 0.15, gt=0)
    mw: float = doc("Wheel mass (kg).", 0.15, gt=0)
    rw: float = doc("Wheel radius (m).", 0.05, gt=0)
    Dp: float = doc("Pivot viscous damping (N*m*s/rad).", 1e-4, ge=0)
    Dw: float = doc("Wheel bearing viscous damping (N*m*s/rad).", 1e-5, ge=0)
    Rm: float = doc("Motor resistance (ohm).", 2.0, gt=0)
    kt: float = doc("Motor torque constant (N*m/A).", 0.05, gt=0)
    km: float = doc("Motor back-EMF constant (V*s/rad).", 0.05, gt=0)
    v_deadzone: float = doc("Driver deadzone (V).", 0.05, ge=0)
    v_sat: float = doc("Driver saturation (V).", 12.0, gt=0)
    g: float = doc("Gravity (m/s^2).", 9.81, gt=0)


PARAMS = tuple(f.name for f in dataclasses.fields(Physics))
GROUPS = {"mass": ("mp", "mw"), "length": ("L", "rw"), "damping": ("Dp", "Dw"), "motor": ("Rm", "kt", "km"),
          "deadzone": ("v_deadzone",)}  # fmt: skip


@dataclass(frozen=True)
class TaskConfig(Section):
    """Stay upright."""

    episode_s: float = doc("Episode length (s).", 3.0, gt=0)
    upright_deg: float = doc("|angle| below this counts as upright.", 15.0, gt=0, le=90)


class Balance:
    """Reward, failure and success of staying upright, on batched states (angle, rate, wheel_rate)."""

    name = "balance"

    def __init__(self, cfg: TaskConfig) -> None:
        self.cfg = cfg

    def upright(self, state: np.ndarray) -> np.ndarray:
        return np.abs(state[..., ANGLE]) < np.deg2rad(self.cfg.upright_deg)

    def failed(self, state: np.ndarray) -> np.ndarray:
        return ~self.upright(state)

    def reward(self, state: np.ndarray, action: np.ndarray) -> np.ndarray:
        r = 1.0 - np.square(state[..., ANGLE]) - 0.01 * np.mean(np.square(action), axis=-1)
        return np.where(self.failed(state), -10.0, r)

    def success(self, upright_throughout: np.ndarray, final_state: np.ndarray) -> np.ndarray:
        return upright_throughout

    def measures(self, state: np.ndarray) -> dict[str, np.ndarray]:
        return {"|angle| (deg)": np.rad2deg(np.abs(state[..., ANGLE]))}

    def why_failed(self, upright_throughout: bool, final_state: np.ndarray) -> str:
        return f"fell (|angle| > {self.cfg.upright_deg:g} deg)"


class Device(MjcfDevice):
    """The pendulum for the batched MuJoCo simulator."""

    param_names = PARAMS
    state_names = ("angle", "rate", "wheel_rate")
    encoder_sensors = ("wheel_encoder",)
    initial_draws = 2

    def __init__(self, cfg: ReactionWheelConfig) -> None:
        self.cfg = cfg
        self.dt, self.window, self.v_max = 1.0 / cfg.imu.rate_hz, cfg.imu.window, cfg.v_max
        self.substeps = cfg.imu.rate_hz // cfg.stream_rate_hz
        self.encoder_cpr = (cfg.encoder_cpr,)

    def nominal(self) -> np.ndarray:
        return np.array([float(getattr(self.cfg.physics, n)) for n in PARAMS])

    def randomization(self, randomize: bool) -> Randomization:
        return Randomization.grouped(self.cfg.randomization, PARAMS, GROUPS, randomize)

    def mjcf(self, params: Mapping[str, float]) -> str:
        p = dict(params)
        return MJCF.format(dt=self.dt, imu_height=0.8 * p["L"], gain=p["kt"] / p["Rm"],
                           bias=-p["kt"] * p["km"] / p["Rm"], **p)  # fmt: skip

    def imu_noise(self) -> ImuNoise:
        return ImuNoise.of_config(self.cfg.imu)

    def deadzone_saturation(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return params[:, PARAMS.index("v_deadzone")], params[:, PARAMS.index("v_sat")]

    def initial(self, model: Any, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        qpos, qvel = np.zeros(model.nq), np.zeros(model.nv)
        qpos[0], qvel[0] = np.deg2rad(5.0) * (2.0 * u[0] - 1.0), 0.2 * (2.0 * u[1] - 1.0)
        return qpos, qvel

    def state(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        return np.stack([qpos[..., 0], qvel[..., 0], qvel[..., 1]], axis=-1)


class Explorer:
    """Random wheel voltages (AR(1)) for perception's labelled windows; envs past 40 deg restart."""

    def __init__(self, sim: Any, seed: int) -> None:
        self.sim, self.rng = sim, np.random.default_rng(seed)
        self.v = np.zeros((sim.n, 1))

    def __call__(self) -> np.ndarray:
        self.v = 0.9 * self.v + self.rng.normal(0.0, 1.0, self.v.shape)
        return np.clip(self.v, -self.sim.device.v_max, self.sim.device.v_max)

    def fallen(self) -> np.ndarray:
        return np.flatnonzero(np.abs(self.sim.state[:, ANGLE]) > np.radians(40.0))


@dataclass(frozen=True)
class ReactionWheelConfig(DeviceSection):
    """The reaction-wheel pendulum as a serial device."""

    name: str = doc("Device name reported in the handshake.", "rwp-twin")
    v_max: float = doc("Motor command range +-v_max (V).", 6.0, gt=0, le=24)
    physics: Physics = nested(Physics, "Nominal physics.")
    imu: ImuSensorConfig = nested(ImuSensorConfig, "IMU on the rod.")
    encoder_cpr: int = doc("Wheel encoder counts per revolution.", 1024, gt=0)
    randomization: RandomizationConfig = nested(RandomizationConfig, "Per-episode randomization.")

    def check(self) -> None:
        super().check()
        self.check_stream(self.imu.rate_hz)

    def spec(self) -> DeviceSpec:
        return DeviceSpec(
            protocol_version=self.protocol_version, name=self.name, imu_rate_hz=self.imu.rate_hz,
            imu_channels=IMU_CHANNELS, imu_window=self.imu.window,
            samples_per_frame=self.imu.rate_hz // self.stream_rate_hz, stream_rate_hz=self.stream_rate_hz,
            control_rate_hz=self.stream_rate_hz, encoders=(Encoder("wheel", self.encoder_cpr),), camera=None,
            actuators=(Actuator("motor", "V", -self.v_max, self.v_max),), watchdog_ms=self.watchdog_ms,
        )  # fmt: skip

    def task_section(self) -> type[Section]:
        return TaskConfig

    def mjcf_device(self) -> Device:
        return Device(self)

    def perception_targets(self) -> tuple[tuple[str, str, float], ...]:
        return (("angle", "angle", 1.0), ("rate", "rate", 5.0))

    def explorer(self, sim: Any, seed: int) -> Explorer:
        return Explorer(sim, seed)

    def make_task(self, cfg: TaskConfig) -> Balance:
        return Balance(cfg)
