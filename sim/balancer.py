"""The two-wheeled self-balancing robot: its physics section and its MJCF.

A body (a box) on two wheels, each driven by a DC motor through a gearbox; an IMU on the
body, an encoder on each wheel (unbounded: a wheel turns without limit), no camera. The
robot faces +x with its wheel axle along y; pitch is the body's rotation about y (> 0: the
top leans towards +x), a wheel's angle is measured from the body, so the encoder reads what
the motor shaft turns.

The physics runs on the MuJoCo backend (:mod:`sensorimotor.sim.mujoco_backend`): a free
body, two hinged wheels, wheel-floor contacts with friction (rolling is what the contacts
do, not an imposed constraint; the body lands on the floor when it falls). Each motor is a ``general`` actuator on the terminal
voltage: gain ``kt / Rm``, velocity bias ``-kt km / Rm`` on its wheel joint (the back-EMF),
``kt`` and ``km`` at the wheel (gear ratio included), its gearbox's viscous loss the joint's
damping. Deadzone and saturation stay in the shell, as for the Qube.

The nominal values are chosen for a small hobby robot, not measured on one (docs/simulator.md,
"The two-wheeled balancer").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sensorimotor.configs.schema import Section, doc, nested
from sensorimotor.hardware.spec import IMU_CHANNELS, Actuator, DeviceSpec, Encoder
from sensorimotor.sim.balancer_task import BalanceInPlace, BalancerTaskConfig
from sensorimotor.sim.config import DeviceSection, ImuSensorConfig, RandomizationConfig
from sensorimotor.sim.mujoco_backend import import_mujoco, linearize
from sensorimotor.sim.mujoco_device import ImuNoise, MjcfDevice, Randomization

Array = np.ndarray

#: Joint order of the MJCF: the free body (x, y, z, quaternion), then the wheels.
WHEEL_JOINTS = ("wheel_left", "wheel_right")


@dataclass(frozen=True)
class BalancerPhysicsConfig(Section):
    """Nominal physical parameters of the two-wheeled balancer."""

    mb: float = doc("Body mass, without the wheels (kg).", 0.6, gt=0)
    lb: float = doc("Height of the body's centre of mass above the wheel axle (m).", 0.07, gt=0, le=1)
    hb: float = doc("Body height (m): the box from the axle up, for its inertia and the IMU's reach.", 0.16, gt=0, le=2)
    wb: float = doc("Body depth along the direction of travel (m).", 0.05, gt=0, le=1)
    mw: float = doc("Mass of one wheel (kg).", 0.03, gt=0)
    rw: float = doc("Wheel radius (m).", 0.04, gt=0, le=0.5)
    track: float = doc("Distance between the two wheels' mid-planes (m).", 0.14, gt=0, le=2)
    Rm: float = doc("Motor terminal resistance (ohm).", 3.0, gt=0)
    kt: float = doc("Motor torque constant at the wheel, gearbox included (N*m/A).", 0.25, gt=0)
    km: float = doc("Motor back-EMF constant at the wheel, gearbox included (V*s/rad).", 0.25, gt=0)
    Dw: float = doc("Gearbox viscous damping at the wheel (N*m*s/rad).", 1e-3, ge=0)
    mu: float = doc("Wheel-floor friction coefficient.", 1.0, gt=0, le=5)
    g: float = doc("Gravity (m/s^2).", 9.81, gt=0)
    v_deadzone: float = doc("Motor driver deadzone: commands below it move nothing (V).", 0.1, ge=0, le=2)
    v_sat: float = doc("Motor driver output saturation (V).", 12.0, gt=0, le=48)

    def check(self) -> None:
        if self.lb > self.hb:
            raise ValueError(f"lb: centre of mass {self.lb} m above the axle is above the body's top "
                             f"hb {self.hb} m (allowed: lb <= hb)")  # fmt: skip


def balancer_mjcf(p: BalancerPhysicsConfig, dt: float = 0.001, imu_height_m: float = 0.1) -> str:
    """``p`` as MJCF: z up, the robot at the origin facing +x, upright, wheels on the floor.

    The body is a box ``wb`` deep and ``hb`` tall from the axle up, its mass ``mb`` at ``lb``
    above the axle (its inertia that of the uniform box about that point's axes). Wheels are
    cylinders (``mw``, ``rw``; inertia of a disc); an ``imu`` site on the body ``imu_height_m``
    above the axle. Sensors, in order: ``gyro`` and ``accel`` at the IMU, then ``encoder_left``
    and ``encoder_right`` (wheel joint angles). ``implicitfast`` at ``dt`` (MuJoCo's advice for
    robots with contacts and joint damping).
    """
    half_depth, half_track, width = p.wb / 2, p.track / 2, p.track * 0.6
    ixx = p.mb * (width**2 + p.hb**2) / 12.0  # roll: a box width x height about its centre
    iyy = p.mb * (p.wb**2 + p.hb**2) / 12.0  # pitch
    izz = p.mb * (width**2 + p.wb**2) / 12.0  # yaw
    wheel_axial = p.mw * p.rw**2 / 2.0
    wheel_cross = p.mw * p.rw**2 / 4.0
    gain = p.kt / p.Rm
    wheels = "\n".join(
        f"""      <body name="{name}" pos="0 {side * half_track!r} 0">
        <joint name="{name}" type="hinge" axis="0 1 0" damping="{p.Dw!r}"/>
        <inertial pos="0 0 0" mass="{p.mw!r}" diaginertia="{wheel_cross!r} {wheel_axial!r} {wheel_cross!r}"/>
        <geom type="cylinder" size="{p.rw!r} 0.01" euler="1.5707963267948966 0 0" friction="{p.mu!r} 0.005 0.0001"/>
      </body>"""
        for name, side in zip(WHEEL_JOINTS, (1, -1), strict=True)
    )
    motors = "\n".join(
        f'    <general name="motor_{name.split("_")[1]}" joint="{name}" gainprm="{gain!r}" biastype="affine" '
        f'biasprm="0 0 {-gain * p.km!r}"/>'
        for name in WHEEL_JOINTS
    )
    return f"""<mujoco model="balancer">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{dt!r}" integrator="implicitfast" gravity="0 0 {-p.g!r}"/>
  <worldbody>
    <geom name="floor" type="plane" size="0 0 1" friction="{p.mu!r} 0.005 0.0001"/>
    <body name="body" pos="0 0 {p.rw!r}">
      <freejoint name="base"/>
      <inertial pos="0 0 {p.lb!r}" mass="{p.mb!r}" diaginertia="{ixx!r} {iyy!r} {izz!r}"/>
      <geom type="box" pos="0 0 {p.hb / 2!r}" size="{half_depth!r} {width / 2!r} {p.hb / 2!r}"/>
      <site name="imu" pos="0 0 {imu_height_m!r}"/>
{wheels}
    </body>
  </worldbody>
  <actuator>
{motors}
  </actuator>
  <sensor>
    <gyro name="gyro" site="imu"/>
    <accelerometer name="accel" site="imu"/>
    <jointpos name="encoder_left" joint="{WHEEL_JOINTS[0]}"/>
    <jointpos name="encoder_right" joint="{WHEEL_JOINTS[1]}"/>
  </sensor>
</mujoco>
"""


#: The sagittal state of the balancer in MuJoCo's tangent space (``linearize``'s order): forward
#: position x, pitch, their rates, the two wheels' rates. The rest (sideways, height, roll, yaw,
#: wheel angles) does not enter the sagittal dynamics to first order.
SAGITTAL_STATE = ("x", "pitch", "x_dot", "pitch_dot", "wheel_left_dot", "wheel_right_dot")
_SAGITTAL_INDEX = (0, 4, 8, 12, 14, 15)


def yaw_of(qpos: Array) -> Array:
    """The heading (rad, 0: facing +x) from the free joint's quaternion in (..., 9) positions: where the wheel axle
    (body y) points, so it stays defined when the body lies on the floor."""
    w, x, y, z = (qpos[..., i] for i in range(3, 7))
    return np.arctan2(-2.0 * (x * y - w * z), 1.0 - 2.0 * (x * x + z * z))


def pitch_of(qpos: Array) -> Array:
    """The body's pitch (rad, > 0: its top leaning towards its heading) in (-pi, pi], from (..., 9) positions."""
    w, x, y, z = (qpos[..., i] for i in range(3, 7))
    yaw = yaw_of(qpos)
    up_x, up_y, up_z = 2.0 * (x * z + w * y), 2.0 * (y * z - w * x), 1.0 - 2.0 * (x * x + y * y)  # body z in world
    return np.arctan2(up_x * np.cos(yaw) + up_y * np.sin(yaw), up_z)


def sagittal_state(qpos: Array, qvel: Array) -> Array:
    """(..., 6) :data:`SAGITTAL_STATE` from MuJoCo positions (..., 9) and velocities (..., 8)."""
    return np.stack([qpos[..., 0], pitch_of(qpos), qvel[..., 0], qvel[..., 4], qvel[..., 6], qvel[..., 7]], axis=-1)


def settled_upright(model: Any, seconds: float = 0.3) -> tuple[Array, Array]:
    """(qpos, qvel) of the robot standing still, exactly upright, its wheels pressed into the floor.

    Upright is an equilibrium (unstable, but nothing breaks its symmetry): stepping from the
    MJCF's initial pose lets the soft contacts reach their rest penetration.
    """
    mujoco, _ = import_mujoco()
    data = mujoco.MjData(model)
    for _ in range(round(seconds / model.opt.timestep)):
        mujoco.mj_step(model, data)
    return data.qpos.copy(), np.zeros(model.nv)


def lqr_gain(
    model: Any, substeps: int, q: tuple[float, ...] = (10.0, 100.0, 1.0, 1.0, 0.01, 0.01), r: float = 1.0
) -> Array:
    """(1, 6) state feedback ``volts = -K @ sagittal_state`` (both motors), an LQR of :func:`sagittal_model` held for
    ``substeps`` model steps (one control period); ``q`` weighs :data:`SAGITTAL_STATE`, ``r`` the voltage."""
    import scipy.linalg  # the classical baseline's and tests' need; the runtime path never calls it

    a, b = sagittal_model(model)
    ak = np.linalg.matrix_power(a, substeps)
    bk = sum(np.linalg.matrix_power(a, i) for i in range(substeps)) @ b
    qm, rm = np.diag(q), np.array([[r]])
    p = scipy.linalg.solve_discrete_are(ak, bk, qm, rm)
    return np.linalg.solve(rm + bk.T @ p @ bk, bk.T @ p @ ak)


def sagittal_model(model: Any) -> tuple[Array, Array]:
    """(A, B) of the upright balancer, one ``model`` step: :data:`SAGITTAL_STATE` driven by one voltage on both
    motors; the model's own linearization (``mjd_transitionFD``), for a classical baseline."""
    qpos, qvel = settled_upright(model)
    a, b = linearize(model, qpos, qvel)
    idx = np.array(_SAGITTAL_INDEX)
    return a[np.ix_(idx, idx)], (b[idx, 0] + b[idx, 1])[:, None]


# ----------------------------------------------------------------------------- the device

#: The balancer's state (:meth:`BalancerDevice.state`): axle position on the floor, pitch and yaw,
#: forward speed along its heading, pitch and yaw rates.
STATE_NAMES = ("x", "y", "pitch", "yaw", "speed", "pitch_rate", "yaw_rate")

#: The physics fields each group of ``device.randomization`` multiplies (each its own draw).
RANDOMIZED_PARAMS: dict[str, tuple[str, ...]] = {
    "mass": ("mb", "mw"), "length": ("lb", "hb", "wb", "rw", "track"), "damping": ("Dw",),
    "motor": ("Rm", "kt", "km"), "friction": ("mu",), "deadzone": ("v_deadzone",),
}  # fmt: skip


@dataclass(frozen=True)
class BalancerImuConfig(ImuSensorConfig):
    """IMU on the balancer's body, above the wheel axle."""

    height_m: float = doc("IMU height above the wheel axle (m).", 0.1, ge=0, le=2)


@dataclass(frozen=True)
class BalancerInitialConfig(Section):
    """Where episodes (and the twin) start: on its wheels at the origin, facing +x."""

    pitch_deg: float = doc("Body pitch uniformly within +-pitch_deg of upright.", 5.0, ge=0, le=30)
    rate_rad_s: float = doc("Initial pitch rate uniformly within +-rate.", 0.3, ge=0, le=10)


@DeviceSection.register_subclass("balancer")
@dataclass(frozen=True)
class BalancerConfig(DeviceSection):
    """The simulated two-wheeled self-balancing robot as a serial device (``device.type: balancer``)."""

    name: str = doc("Device name reported in the handshake (at most 16 UTF-8 bytes).", "balancer-twin")
    v_max: float = doc("Actuator range +-v_max (V) of each wheel motor; the policy's full-scale action.", 6.0,
                       gt=0, le=24)  # fmt: skip
    physics: BalancerPhysicsConfig = nested(BalancerPhysicsConfig, "Nominal physics.")
    imu: BalancerImuConfig = nested(BalancerImuConfig, "Body IMU.")
    encoder_cpr: int = doc("Wheel encoder counts per revolution of the wheel (gearbox included).", 1320, gt=0,
                           le=2**31 - 1)  # fmt: skip
    randomization: RandomizationConfig = nested(
        RandomizationConfig,
        "Per-episode randomization; groups: " + "; ".join(f"{g}: {', '.join(p)}" for g, p in RANDOMIZED_PARAMS.items())
        + " (camera_delay_substeps: unused, no camera).",
    )  # fmt: skip
    initial: BalancerInitialConfig = nested(BalancerInitialConfig, "Initial state.")

    def check(self) -> None:
        super().check()
        self.check_stream(self.imu.rate_hz)
        if self.imu.height_m > self.physics.hb:
            raise ValueError(
                f"imu.height_m: {self.imu.height_m} m is above the body (allowed: <= physics.hb {self.physics.hb})"
            )

    @property
    def substeps_per_control(self) -> int:
        return self.imu.rate_hz // self.stream_rate_hz

    # What training needs of the device (control/device_train.py); nothing there names its state.

    def mjcf_device(self) -> BalancerDevice:
        """This robot for the batched MuJoCo simulator."""
        return BalancerDevice(self)

    def perception_targets(self) -> tuple[tuple[str, str, float], ...]:
        return PERCEPTION_TARGETS

    def explorer(self, sim: Any, seed: int) -> Explorer:
        return Explorer(sim, seed)

    def task_section(self) -> type[Section]:
        return BalancerTaskConfig

    def tilt_target(self) -> str | None:
        return "pitch"

    def derived_observations(self) -> tuple[tuple[str, dict[str, float]], ...]:
        """Distance travelled and forward speed (m, m/s: each wheel turns relative to the body, so the pitch adds
        to their mean), and the heading the wheels' difference gives (rad), at the nominal wheel radius and track."""
        rw, half, turn = self.physics.rw, self.physics.rw / 2.0, self.physics.rw / self.physics.track
        return (
            ("distance", {"wheel_l_angle": half, "wheel_r_angle": half, "pitch": rw}),
            ("speed", {"wheel_l_rate": half, "wheel_r_rate": half, "gyro_y": rw}),
            ("heading", {"wheel_l_angle": -turn, "wheel_r_angle": turn}),
        )

    def make_task(self, cfg: BalancerTaskConfig) -> BalanceInPlace:
        return BalanceInPlace(cfg)

    def spec(self) -> DeviceSpec:
        """Six float32 IMU channels, two unbounded wheel encoders, no camera, two wheel motors."""
        return DeviceSpec(
            protocol_version=self.protocol_version, name=self.name, imu_rate_hz=self.imu.rate_hz,
            imu_channels=IMU_CHANNELS, imu_window=self.imu.window, samples_per_frame=self.substeps_per_control,
            stream_rate_hz=self.stream_rate_hz, control_rate_hz=self.stream_rate_hz,
            encoders=(Encoder("wheel_l", self.encoder_cpr), Encoder("wheel_r", self.encoder_cpr)), camera=None,
            actuators=(Actuator("motor_l", "V", -self.v_max, self.v_max), Actuator("motor_r", "V", -self.v_max, self.v_max)),
            watchdog_ms=self.watchdog_ms,
        )  # fmt: skip


PARAM_NAMES = tuple(f.name for f in dataclasses.fields(BalancerPhysicsConfig))


class BalancerDevice(MjcfDevice):
    """:class:`BalancerConfig` for :class:`~sensorimotor.sim.mujoco_device.MujocoDeviceSim`."""

    param_names = PARAM_NAMES
    state_names = STATE_NAMES
    imu_sensors = ("gyro", "accel")
    encoder_sensors = ("encoder_left", "encoder_right")
    initial_draws = 2

    def __init__(self, cfg: BalancerConfig) -> None:
        self.cfg = cfg
        self.dt = 1.0 / cfg.imu.rate_hz
        self.substeps = cfg.substeps_per_control
        self.window = cfg.imu.window
        self.v_max = cfg.v_max
        self.encoder_cpr = (cfg.encoder_cpr,) * len(self.encoder_sensors)
        self._rest_height: float | None = None

    def nominal(self) -> Array:
        return np.array([float(getattr(self.cfg.physics, n)) for n in PARAM_NAMES])

    def randomization(self, randomize: bool) -> Randomization:
        return Randomization.grouped(self.cfg.randomization, PARAM_NAMES, RANDOMIZED_PARAMS, randomize)

    def mjcf(self, params: Mapping[str, float]) -> str:
        return balancer_mjcf(BalancerPhysicsConfig(**params), self.dt, self.cfg.imu.height_m)

    def imu_noise(self) -> ImuNoise:
        return ImuNoise.of_config(self.cfg.imu)

    def deadzone_saturation(self, params: Array) -> tuple[Array, Array]:
        return params[:, PARAM_NAMES.index("v_deadzone")], params[:, PARAM_NAMES.index("v_sat")]

    def initial(self, model: Any, u: Array) -> tuple[Array, Array]:
        """Tilted by a uniform pitch about the axle (wheels where they rest), rocking at a uniform pitch rate."""
        if self._rest_height is None:  # the soft contacts' rest penetration, once (it barely moves with the draw)
            self._rest_height = float(settled_upright(model)[0][2])
        ini = self.cfg.initial
        pitch = np.deg2rad(ini.pitch_deg) * (2.0 * u[0] - 1.0)
        rate = ini.rate_rad_s * (2.0 * u[1] - 1.0)
        qpos = np.zeros(model.nq)
        qpos[2] = self._rest_height
        qpos[3], qpos[5] = np.cos(pitch / 2.0), np.sin(pitch / 2.0)
        qvel = np.zeros(model.nv)
        qvel[4] = rate
        qvel[6] = qvel[7] = -rate  # the wheels hold still on the floor while the body rocks about them
        return qpos, qvel

    def state(self, qpos: Array, qvel: Array) -> Array:
        yaw = yaw_of(qpos)
        speed = qvel[..., 0] * np.cos(yaw) + qvel[..., 1] * np.sin(yaw)
        return np.stack([qpos[..., 0], qpos[..., 1], pitch_of(qpos), yaw, speed, qvel[..., 4], qvel[..., 5]], axis=-1)


#: What the balancer's policy needs from its IMU (perception/imu_targets.py): (state name, kind, scale).
PERCEPTION_TARGETS = (("pitch", "angle", 1.0), ("pitch_rate", "rate", 5.0))


class Explorer:
    """Drives N simulated balancers through the states a policy meets: the LQR of the nominal robot plus an AR(1)
    voltage on each wheel (common: pitch and travel; differential: turning), for perception's labelled windows.

    ``fallen()`` names the envs past ``reset_deg`` after a step, to be reset.
    """

    def __init__(self, sim: Any, seed: int, noise_v: float = 2.0, pole: float = 0.9, reset_deg: float = 40.0) -> None:
        self.sim, self.pole, self.noise_v = sim, pole, noise_v
        dev = sim.device
        self.k = lqr_gain(sim.models[0], dev.substeps)
        self.rng = np.random.default_rng(seed)
        self.noise = np.zeros((sim.n, 2))
        self.reset_rad = np.radians(reset_deg)

    def __call__(self) -> Array:
        self.noise = self.pole * self.noise + self.rng.normal(
            0.0, self.noise_v * np.sqrt(1 - self.pole**2), self.noise.shape
        )
        u = -(sagittal_state(self.sim.qpos, self.sim.qvel) @ self.k.T)
        return np.clip(u + self.noise, -self.sim.device.v_max, self.sim.device.v_max)

    def fallen(self) -> Array:
        out = np.flatnonzero(np.abs(self.sim.state[:, STATE_NAMES.index("pitch")]) > self.reset_rad)
        self.noise[out] = 0.0
        return out
