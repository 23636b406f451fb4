"""The ``device`` config section: physics, sensors, latency, randomization, initial state.

Shared by the Gymnasium envs, the perception data generator and the twin, so the
simulated device the policy trains on is the device the twin plays. :meth:`DeviceConfig.spec`
turns it into the :class:`~sensorimotor.hardware.spec.DeviceSpec` that the twin announces in
its handshake and the exported model embeds (docs/architecture.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from sensorimotor.hardware.config import Section, doc, nested
from sensorimotor.hardware.spec import (
    IMU_CHANNELS,
    MAX_IMAGE_PIXELS,
    MAX_NAME_BYTES,
    MAX_SAMPLES_PER_FRAME,
    PROTOCOL_VERSION,
    Actuator,
    DeviceSpec,
)


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


@dataclass(frozen=True)
class ImuConfig(Section):
    """IMU on the pendulum link; noise densities of an ADIS16448 (PX4's Gazebo IMU defaults)."""

    rate_hz: int = doc("IMU sample rate = physics substep rate (Hz).", 1000, gt=0, le=65535)
    window: int = doc("IMU samples per model input window.", 64, ge=8, le=4096)
    position_m: float = doc("IMU distance from the pendulum pivot along the link (m).", 0.1, ge=0)
    noise: bool = doc("Apply white noise and bias (false: ideal IMU).", True)
    noise_scale: float = doc("Multiplier on every noise density and bias sigma.", 1.0, ge=0)


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

    def check(self) -> None:
        if self.height * self.width > MAX_IMAGE_PIXELS:
            raise ValueError(
                f"height: {self.height}x{self.width} = {self.height * self.width} pixels does not fit one IMAGE "
                f"frame (allowed: height x width <= {MAX_IMAGE_PIXELS})"
            )


@dataclass(frozen=True)
class RandomizationConfig(Section):
    """Per-episode physical randomization: parameter *= U(1 - s, 1 + s)."""

    mass: float = doc("Relative spread of arm and pendulum masses.", 0.1, ge=0, lt=1)
    length: float = doc("Relative spread of arm and pendulum lengths.", 0.05, ge=0, lt=1)
    damping: float = doc("Relative spread of viscous damping.", 0.5, ge=0, le=1)
    motor: float = doc("Relative spread of Rm, kt, km.", 0.1, ge=0, lt=1)
    action_delay_substeps: tuple[int, int] = doc(
        "Command-to-actuator delay range [min, max] in physics substeps, drawn each control step "
        "(the loop acts < 1 ms after a sensor frame; the rest is margin for USB-serial latency).", (0, 8), ge=0, le=1000,
    )  # fmt: skip

    def check(self) -> None:
        lo, hi = self.action_delay_substeps
        if lo > hi:
            raise ValueError(
                f"action_delay_substeps: [{lo}, {hi}] is not an ordered range (allowed: [min, max], min <= max)"
            )


@dataclass(frozen=True)
class InitialStateConfig(Section):
    """Where episodes (and the twin) start."""

    angle_deg: float = doc("Pendulum starts uniformly within +-angle_deg of upright.", 10.0, ge=0, le=180)
    rate_rad_s: float = doc("Initial pendulum rate uniformly within +-rate.", 0.3, ge=0)
    arm_rad: float = doc("Initial arm angle uniformly within +-arm_rad.", 0.2, ge=0)


@dataclass(frozen=True)
class DeviceConfig(Section):
    """The simulated rotary pendulum as a serial device."""

    name: str = doc(f"Device name reported in the handshake (at most {MAX_NAME_BYTES} UTF-8 bytes).", "qube-twin")
    protocol_version: int = doc(
        "Protocol version the (simulated) device speaks; other than the host's only to test version checks.",
        PROTOCOL_VERSION, ge=1, le=65535,
    )  # fmt: skip
    physics: PhysicsConfig = nested(PhysicsConfig, "Nominal physics.")
    imu: ImuConfig = nested(ImuConfig, "Pendulum IMU.")
    camera: CameraConfig = nested(CameraConfig, "Camera.")
    encoder_cpr: int = doc("Motor encoder counts per revolution.", 2048, gt=0, le=2**32 - 1)
    stream_rate_hz: int = doc(
        "SENSOR frames per second (= the control rate the policy is trained at); must divide imu.rate_hz.", 100,
        gt=0, le=65535,
    )  # fmt: skip
    v_max: float = doc("Actuator range +-v_max (V); the policy's full-scale action.", 5.0, gt=0, le=24)
    watchdog_ms: int = doc("Device zeroes the motor when no command arrives for this long.", 100, gt=0, le=65535)
    randomization: RandomizationConfig = nested(RandomizationConfig, "Per-episode randomization.")
    initial: InitialStateConfig = nested(InitialStateConfig, "Initial state.")

    def check(self) -> None:
        if not self.name or len(self.name.encode()) > MAX_NAME_BYTES or "\0" in self.name:
            raise ValueError(f"name: {self.name!r} must be 1..{MAX_NAME_BYTES} UTF-8 bytes")
        if self.imu.rate_hz % self.stream_rate_hz:
            raise ValueError(
                f"stream_rate_hz: {self.stream_rate_hz} does not divide imu.rate_hz {self.imu.rate_hz} (allowed: a divisor)"
            )
        if self.imu.rate_hz % self.camera.rate_hz:
            raise ValueError(
                f"camera.rate_hz: {self.camera.rate_hz} does not divide imu.rate_hz {self.imu.rate_hz} (allowed: a divisor)"
            )
        if self.substeps_per_control > MAX_SAMPLES_PER_FRAME:
            raise ValueError(
                f"stream_rate_hz: {self.stream_rate_hz} puts {self.substeps_per_control} IMU samples in a SENSOR frame "
                f"(allowed: >= imu.rate_hz / {MAX_SAMPLES_PER_FRAME} = {self.imu.rate_hz / MAX_SAMPLES_PER_FRAME:g})"
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

    def spec(self) -> DeviceSpec:
        """The device description the twin announces and an exported model embeds."""
        return DeviceSpec(
            protocol_version=self.protocol_version, name=self.name, imu_rate_hz=self.imu.rate_hz,
            imu_channels=IMU_CHANNELS, imu_window=self.imu.window, samples_per_frame=self.substeps_per_control,
            stream_rate_hz=self.stream_rate_hz, control_rate_hz=self.stream_rate_hz, encoder_cpr=self.encoder_cpr,
            image_height=self.camera.height, image_width=self.camera.width, camera_rate_hz=self.camera.rate_hz,
            actuators=(Actuator("motor", "V", -self.v_max, self.v_max),), watchdog_ms=self.watchdog_ms,
        )  # fmt: skip
