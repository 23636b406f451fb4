"""The ``device`` config section: physics, sensors, latency, randomization, initial state.

Shared by the Gymnasium envs, the perception data generator and the twin, so the
simulated device the policy trains on is the device the twin plays. :meth:`DeviceConfig.spec`
turns it into the :class:`~sensorimotor.hardware.spec.DeviceSpec` that the twin announces in
its handshake and the exported model embeds (docs/architecture.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sensorimotor.configs.schema import Choice, Section, doc, load_section, nested
from sensorimotor.hardware.spec import (
    IMU_CHANNELS,
    MAX_IMAGE_PIXELS,
    MAX_NAME_BYTES,
    MAX_SAMPLES_PER_FRAME,
    PROTOCOL_VERSION,
    Actuator,
    Camera,
    DeviceSpec,
    Encoder,
)


def check_ordered(section: object, names: tuple[str, ...]) -> None:
    """Each named [min, max] field of ``section`` must have min <= max."""
    for name in names:
        lo, hi = getattr(section, name)
        if lo > hi:
            raise ValueError(f"{name}: [{lo}, {hi}] is not an ordered range (allowed: [min, max], min <= max)")


@dataclass(frozen=True)
class PhysicsConfig(Section):
    """Nominal physical parameters (Quanser Qube-Servo 2)."""

    Rm: float = doc("Motor terminal resistance (ohm).", 8.4, gt=0)
    kt: float = doc("Motor torque constant (N*m/A).", 0.042, gt=0)
    km: float = doc("Motor back-EMF constant (V*s/rad).", 0.042, gt=0)
    mr: float = doc("Rotary arm mass (kg).", 0.095, gt=0)
    Lr: float = doc("Rotary arm length, pivot to pendulum pivot (m).", 0.085, gt=0)
    Dr: float = doc("Arm viscous damping (N*m*s/rad).", 0.00027, ge=0)
    mp: float = doc("Pendulum mass (kg).", 0.024, gt=0)
    Lp: float = doc("Pendulum length (m).", 0.129, gt=0)
    Dp: float = doc("Pendulum viscous damping (N*m*s/rad).", 0.00005, ge=0)
    g: float = doc("Gravity (m/s^2).", 9.81, gt=0)
    coulomb_r: float = doc("Arm Coulomb friction (N*m).", 4e-4, ge=0, le=0.1)
    static_r: float = doc("Arm breakaway (static) friction near rest (N*m).", 6e-4, ge=0, le=0.1)
    coulomb_p: float = doc("Pendulum bearing Coulomb friction (N*m).", 2e-6, ge=0, le=0.01)
    static_p: float = doc("Pendulum bearing breakaway friction (N*m).", 4e-6, ge=0, le=0.01)
    v_stribeck: float = doc("Stribeck velocity: static friction fades to Coulomb above it (rad/s).", 0.05, gt=0)
    v_smooth: float = doc(
        "Friction regularization velocity (rad/s); below ~0.002 explicit RK4 at 1 kHz turns stiff.", 0.005,
        ge=0.001, le=1,
    )  # fmt: skip
    v_deadzone: float = doc("Amplifier deadzone: commands below it move nothing (V).", 0.05, ge=0, le=2)
    v_sat: float = doc("Amplifier output saturation (V).", 10.0, gt=0, le=48)
    theta_stop: float = doc("Arm end-stop, the cable limit (rad).", 3.0, gt=0, le=10)
    k_stop: float = doc("End-stop stiffness (N*m/rad); above ~2000 RK4 at 1 kHz turns unstable.", 20.0, gt=0, le=2000)
    c_stop: float = doc("End-stop damping per rad of penetration (N*m*s/rad^2).", 4.0, ge=0, le=50)

    def check(self) -> None:
        for joint in ("r", "p"):
            static, coulomb = getattr(self, f"static_{joint}"), getattr(self, f"coulomb_{joint}")
            if static < coulomb:
                raise ValueError(
                    f"static_{joint}: breakaway friction {static} N*m is below coulomb_{joint} {coulomb} "
                    f"(allowed: static_{joint} >= coulomb_{joint})"
                )


@dataclass(frozen=True)
class ImuSensorConfig(Section):
    """A 6-axis IMU's rate, window and noise; noise densities of an ADIS16448 (PX4's Gazebo IMU defaults).

    Every device's IMU section; each device adds where the IMU sits (:class:`ImuConfig`).
    """

    rate_hz: int = doc("IMU sample rate = physics substep rate (Hz).", 1000, gt=0, le=65535)
    window: int = doc("IMU samples per model input window.", 64, ge=8, le=4096)
    noise: bool = doc("Apply white noise, bias, saturation and scale error (false: ideal IMU).", True)
    noise_scale: float = doc("Multiplier on every noise density and bias sigma.", 1.0, ge=0)
    gyro_noise_density: float = doc("Gyro white noise density (rad/s/sqrt(Hz)).", 3.39e-4, ge=0)
    gyro_random_walk: float = doc("Gyro bias random walk (rad/s^2/sqrt(Hz)).", 3.88e-5, ge=0)
    gyro_bias_tau: float = doc("Gyro bias correlation time (s).", 1000.0, gt=0)
    gyro_turn_on_sigma: float = doc("Gyro turn-on bias sigma, drawn per episode (rad/s).", 8.7e-3, ge=0)
    accel_noise_density: float = doc("Accelerometer white noise density (m/s^2/sqrt(Hz)).", 4e-3, ge=0)
    accel_random_walk: float = doc("Accelerometer bias random walk (m/s^3/sqrt(Hz)).", 6e-3, ge=0)
    accel_bias_tau: float = doc("Accelerometer bias correlation time (s).", 300.0, gt=0)
    accel_turn_on_sigma: float = doc("Accelerometer turn-on bias sigma, drawn per episode (m/s^2).", 0.196, ge=0)
    gyro_range: float = doc("Gyro saturation (rad/s; 34.9 = 2000 deg/s).", 34.9, gt=0)
    accel_range: float = doc("Accelerometer saturation (m/s^2; 156.9 = 16 g).", 156.9, gt=0)
    scale_error: float = doc("Scale-factor error sigma per axis, drawn per episode (fraction).", 0.0, ge=0, le=0.5)


@dataclass(frozen=True)
class ImuConfig(ImuSensorConfig):
    """IMU on the pendulum link; noise densities of an ADIS16448 (PX4's Gazebo IMU defaults)."""

    position_m: float = doc("IMU distance from the pendulum pivot along the link (m).", 0.1, ge=0)


@dataclass(frozen=True)
class CameraConfig(Section):
    """Camera facing the pendulum."""

    rate_hz: int = doc("Frame rate (Hz); must divide the IMU rate.", 50, gt=0, le=65535)
    height: int = doc(
        f"Image height (pixels); height x width <= {MAX_IMAGE_PIXELS} (one IMAGE frame).", 64, ge=8, le=255
    )
    width: int = doc("Image width (pixels).", 64, ge=8, le=255)
    randomize: bool = doc("Domain randomization of lighting, exposure, blur, noise, pose.", True)
    occlusion_prob: float = doc("Per-frame probability of a partial occlusion fault.", 0.05, ge=0, le=1)
    blackout_prob: float = doc("Per-frame probability of a blackout fault.", 0.03, ge=0, le=1)
    exposure_ms: tuple[float, float] = doc(
        "Exposure time range [min, max] (ms), drawn per episode; the pendulum's motion during it blurs the frame.",
        (0.5, 6.0), ge=0, le=100,
    )  # fmt: skip
    background: tuple[float, float] = doc("Background level range (0-1), per episode.", (0.05, 0.35), ge=0, le=1)
    brightness: tuple[float, float] = doc("Pendulum intensity range (0-1), per episode.", (0.6, 1.0), ge=0, le=1)
    gradient: float = doc("Largest lighting gradient across the image (intensity), per episode.", 0.15, ge=0, le=1)
    texture: float = doc("Largest background texture amplitude (intensity), per episode.", 0.08, ge=0, le=1)
    noise_sigma: tuple[float, float] = doc("Pixel noise sigma range (intensity), per episode.", (0.0, 0.06), ge=0, le=1)
    shift_px: float = doc("Camera pose offset: translation up to +-shift_px pixels, per episode.", 2.0, ge=0, le=16)
    roll_deg: float = doc("Camera pose offset: roll up to +-roll_deg, per episode.", 2.0, ge=0, le=45)

    def check(self) -> None:
        check_ordered(self, ("exposure_ms", "background", "brightness", "noise_sigma"))
        if self.height * self.width > MAX_IMAGE_PIXELS:
            raise ValueError(
                f"height: {self.height}x{self.width} = {self.height * self.width} pixels does not fit one IMAGE "
                f"frame (allowed: height x width <= {MAX_IMAGE_PIXELS})"
            )


# The groups of physical parameters `device.randomization` spreads (one spread per group), each with
# the `device.physics` fields it multiplies (each field draws its own multiplier).
RANDOMIZED_PARAMS: dict[str, tuple[str, ...]] = {
    "mass": ("mr", "mp"), "length": ("Lr", "Lp"), "damping": ("Dr", "Dp"), "motor": ("Rm", "kt", "km"),
    "friction": ("coulomb_r", "static_r", "coulomb_p", "static_p"), "deadzone": ("v_deadzone",),
}  # fmt: skip
RANDOMIZED_GROUPS = tuple(RANDOMIZED_PARAMS)


@dataclass(frozen=True)
class RandomizationConfig(Section):
    """Per-episode physical randomization: parameter *= U(1 - s, 1 + s), or log-uniform in [1/(1+s), 1+s] (``wide``)."""

    mass: float = doc("Relative spread of arm and pendulum masses.", 0.1, ge=0, le=50)
    length: float = doc("Relative spread of arm and pendulum lengths.", 0.05, ge=0, le=50)
    damping: float = doc("Relative spread of viscous damping.", 0.5, ge=0, le=50)
    motor: float = doc("Relative spread of Rm, kt, km.", 0.1, ge=0, le=50)
    friction: float = doc("Relative spread of Coulomb and static friction (both joints).", 0.5, ge=0, le=50)
    deadzone: float = doc("Relative spread of the amplifier deadzone.", 0.5, ge=0, le=50)
    imu_noise: float = doc(
        "Relative spread of the IMU noise densities (white noise and bias random walk of every channel, one "
        "multiplier per episode); the turn-on biases are drawn per episode anyway.", 0.0, ge=0, le=1,
    )  # fmt: skip
    action_delay_substeps: tuple[int, int] = doc(
        "Command-to-actuator delay range [min, max] (physics substeps), drawn per episode; a FIFO, so a delay "
        "longer than a control period loses no command.", (0, 8), ge=0, le=1000,
    )  # fmt: skip
    imu_delay_substeps: tuple[int, int] = doc(
        "IMU/encoder-to-host delay range [min, max] (substeps), drawn per episode.", (0, 2), ge=0, le=1000
    )
    camera_delay_substeps: tuple[int, int] = doc(
        "Camera-to-host latency range [min, max] (substeps), drawn per episode.", (5, 20), ge=0, le=1000
    )

    wide: tuple[str, ...] = doc(
        "Groups (mass, length, damping, motor, friction, deadzone) drawn log-uniformly over the multipliers "
        "[1 / (1 + s), 1 + s] instead of U(1 - s, 1 + s): a spread s > 1 then covers s + 1 times either way "
        "(damping: 11 with `wide: [damping]` is 1/12x to 12x; docs/sim-to-real.md).", (),
    )  # fmt: skip

    def check(self) -> None:
        check_ordered(self, ("action_delay_substeps", "imu_delay_substeps", "camera_delay_substeps"))
        groups = RANDOMIZED_GROUPS
        for name in self.wide:
            if name not in groups:
                raise ValueError(f"wide: {name!r} is not a group (allowed: {', '.join(groups)})")
        for name in groups:
            spread = getattr(self, name)
            if spread > 1 and name not in self.wide:
                raise ValueError(f"{name}: a spread of {spread} reaches below 0; list {name!r} under wide")

    def widened(self, groups: Sequence[str], spread: float) -> RandomizationConfig:
        """These ranges with ``groups`` drawn log-uniformly over [1 / (1 + spread), 1 + spread] (``wide``)."""
        spreads: dict[str, Any] = {g: spread for g in groups}
        return dataclasses.replace(self, wide=tuple(dict.fromkeys([*self.wide, *groups])), **spreads)


@dataclass(frozen=True)
class InitialStateConfig(Section):
    """Where episodes (and the twin) start."""

    angle_deg: float = doc("Pendulum starts uniformly within +-angle_deg of upright.", 10.0, ge=0, le=180)
    rate_rad_s: float = doc("Initial pendulum rate uniformly within +-rate.", 0.3, ge=0)
    arm_rad: float = doc("Initial arm angle uniformly within +-arm_rad.", 0.2, ge=0)


@dataclass(frozen=True)
class DeviceSection(Choice, registry="sensorimotor.devices", default="furuta"):
    """What every device's section has: its name and protocol, its stream rate, its actuator range, its watchdog.

    ``device.type`` picks the device (configs/schema.py, ``Choice``); the Furuta pendulum,
    :class:`DeviceConfig`, is ``furuta``, the default.
    """

    name: str = doc(f"Device name reported in the handshake (at most {MAX_NAME_BYTES} UTF-8 bytes).", "device")
    protocol_version: int = doc(
        "Protocol version the (simulated) device speaks; other than the host's only to test version checks.",
        PROTOCOL_VERSION, ge=1, le=65535,
    )  # fmt: skip
    stream_rate_hz: int = doc(
        "SENSOR frames per second (= the control rate the policy is trained at); must divide imu.rate_hz.", 100,
        gt=0, le=65535,
    )  # fmt: skip
    v_max: float = doc("Actuator range +-v_max (V); the policy's full-scale action.", 5.0, gt=0, le=24)
    watchdog_ms: int = doc("Device zeroes the motor when no command arrives for this long.", 100, gt=0, le=65535)

    def check(self) -> None:
        if not self.name or len(self.name.encode()) > MAX_NAME_BYTES or "\0" in self.name:
            raise ValueError(f"name: {self.name!r} must be 1..{MAX_NAME_BYTES} UTF-8 bytes")

    def check_stream(self, imu_rate_hz: int) -> None:
        """The stream rate must divide the IMU rate and put at most MAX_SAMPLES_PER_FRAME samples in a frame."""
        if imu_rate_hz % self.stream_rate_hz:
            raise ValueError(
                f"stream_rate_hz: {self.stream_rate_hz} does not divide imu.rate_hz {imu_rate_hz} (allowed: a divisor)"
            )
        if imu_rate_hz // self.stream_rate_hz > MAX_SAMPLES_PER_FRAME:
            raise ValueError(
                f"stream_rate_hz: {self.stream_rate_hz} puts {imu_rate_hz // self.stream_rate_hz} IMU samples in a "
                f"SENSOR frame (allowed: >= imu.rate_hz / {MAX_SAMPLES_PER_FRAME} = {imu_rate_hz / MAX_SAMPLES_PER_FRAME:g})"
            )

    def spec(self) -> DeviceSpec:
        """The device description the twin announces and an exported model embeds (each device gives its own)."""
        raise NotImplementedError(f"{type(self).__name__} gives no spec()")

    def task_section(self) -> type[Section]:
        """The class of the config's ``task`` section for this device (each device gives its own)."""
        raise NotImplementedError(f"{type(self).__name__} gives no task_section()")

    def make_task(self, cfg: Any) -> Any:
        """The task object of this device's ``task`` section ``cfg`` (reward, failure, success: the device's own)."""
        raise NotImplementedError(f"{type(self).__name__} gives no make_task()")

    def tilt_target(self) -> str | None:
        """The perception target (rad, 0 upright) a host's ``loop.fall_stop_deg`` watches; None: none to watch."""
        return None

    def derived_observations(self) -> tuple[tuple[str, dict[str, float]], ...]:
        """Linear combinations of the policy's observation the device adds, in its own units (a device's
        (name, {observation name: coefficient}); perception/device_observation.py). None by default."""
        return ()


def load_device(
    path: str | Path | None, overrides: Sequence[str] = (), preset: str | None = None
) -> tuple[DeviceSection, Any]:
    """The config's ``device`` section, of the class its ``type`` picks, and its ``task`` section as that device reads it."""
    device = load_section(path, "device", DeviceSection, preset, overrides)
    return device, load_section(path, "task", device.task_section(), preset, overrides)


@DeviceSection.register_subclass("furuta")
@dataclass(frozen=True)
class DeviceConfig(DeviceSection):
    """The simulated rotary pendulum as a serial device (``device.type: furuta``)."""

    name: str = doc(f"Device name reported in the handshake (at most {MAX_NAME_BYTES} UTF-8 bytes).", "qube-twin")
    physics: PhysicsConfig = nested(PhysicsConfig, "Nominal physics.")
    imu: ImuConfig = nested(ImuConfig, "Pendulum IMU.")
    camera: CameraConfig = nested(CameraConfig, "Camera.")
    encoder_cpr: int = doc("Motor encoder counts per revolution.", 2048, gt=0, le=2**32 - 1)
    reference: bool = doc(
        "The twin streams REFERENCE frames (docs/protocol.md): the true pendulum state with each SENSOR frame and "
        "the frame's angle and fault class with each IMAGE frame, as a reference sensor on a rig would (labels "
        "for `sim finetune --logs`).", False,
    )  # fmt: skip
    randomization: RandomizationConfig = nested(RandomizationConfig, "Per-episode randomization.")
    initial: InitialStateConfig = nested(InitialStateConfig, "Initial state.")

    def check(self) -> None:
        super().check()
        self.check_stream(self.imu.rate_hz)
        if self.imu.rate_hz % self.camera.rate_hz:
            raise ValueError(
                f"camera.rate_hz: {self.camera.rate_hz} does not divide imu.rate_hz {self.imu.rate_hz} (allowed: a divisor)"
            )
        if self.imu.position_m > self.physics.Lp:
            raise ValueError(
                f"imu.position_m: {self.imu.position_m} m is beyond the pendulum (allowed: <= physics.Lp {self.physics.Lp})"
            )

    @property
    def substeps_per_control(self) -> int:
        return self.imu.rate_hz // self.stream_rate_hz

    @property
    def substeps_per_frame(self) -> int:
        return self.imu.rate_hz // self.camera.rate_hz

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.camera.height, self.camera.width

    def task_section(self) -> type[Section]:
        from sensorimotor.sim.task import TaskConfig  # sim/task.py builds on this module

        return TaskConfig

    def make_task(self, cfg: Any) -> Any:
        from sensorimotor.sim.task import make_task

        return make_task(cfg)

    def spec(self) -> DeviceSpec:
        """The device description the twin announces and an exported model embeds."""
        return DeviceSpec(
            protocol_version=self.protocol_version, name=self.name, imu_rate_hz=self.imu.rate_hz,
            imu_channels=IMU_CHANNELS, imu_window=self.imu.window, samples_per_frame=self.substeps_per_control,
            stream_rate_hz=self.stream_rate_hz, control_rate_hz=self.stream_rate_hz,
            encoders=(Encoder("arm", self.encoder_cpr, self.physics.theta_stop),),
            camera=Camera(self.camera.height, self.camera.width, self.camera.rate_hz),
            actuators=(Actuator("motor", "V", -self.v_max, self.v_max),), watchdog_ms=self.watchdog_ms,
        )  # fmt: skip
