"""The ``device`` config section: physics, sensors, latency, randomization, initial state.

Shared by the Gymnasium envs, the perception data generator and the twin, so the
simulated device the policy trains on is the device the twin plays.
"""

from __future__ import annotations

from dataclasses import dataclass

from sensorimotor.hardware.config import doc, nested


@dataclass(frozen=True)
class PhysicsConfig:
    """Nominal physical parameters (Quanser Qube-Servo 2)."""

    Rm: float = doc("Motor terminal resistance (ohm).", 8.4)
    kt: float = doc("Motor torque constant (N*m/A).", 0.042)
    km: float = doc("Motor back-EMF constant (V*s/rad).", 0.042)
    mr: float = doc("Rotary arm mass (kg).", 0.095)
    Lr: float = doc("Rotary arm length, pivot to pendulum pivot (m).", 0.085)
    Dr: float = doc("Arm viscous damping (N*m*s/rad).", 0.00027)
    mp: float = doc("Pendulum mass (kg).", 0.024)
    Lp: float = doc("Pendulum length (m).", 0.129)
    Dp: float = doc("Pendulum viscous damping (N*m*s/rad).", 0.00005)
    g: float = doc("Gravity (m/s^2).", 9.81)

    def __post_init__(self) -> None:
        for name in ("Rm", "kt", "km", "mr", "Lr", "mp", "Lp", "g"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be > 0, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ImuConfig:
    """IMU on the pendulum link; noise densities per DESIGN.md (ADIS16448 / PX4)."""

    rate_hz: int = doc("IMU sample rate = physics substep rate (Hz).", 1000)
    window: int = doc("IMU samples per model input window.", 64)
    position_m: float = doc("IMU distance from the pendulum pivot along the link (m).", 0.1)
    noise: bool = doc("Apply white noise and bias (false: ideal IMU).", True)
    noise_scale: float = doc("Multiplier on every noise density and bias sigma.", 1.0)

    def __post_init__(self) -> None:
        if self.rate_hz <= 0 or self.window < 8:
            raise ValueError("rate_hz: must be > 0 and window >= 8")


@dataclass(frozen=True)
class CameraConfig:
    """Camera facing the pendulum."""

    rate_hz: int = doc("Frame rate (Hz); must divide the IMU rate.", 50)
    randomize: bool = doc("Domain randomization of lighting, exposure, blur, noise, pose.", True)
    occlusion_prob: float = doc("Per-frame probability of a partial occlusion fault.", 0.05)
    blackout_prob: float = doc("Per-frame probability of a blackout fault.", 0.03)


@dataclass(frozen=True)
class RandomizationConfig:
    """Per-episode physical randomization: parameter *= U(1 - s, 1 + s)."""

    mass: float = doc("Relative spread of arm and pendulum masses.", 0.1)
    length: float = doc("Relative spread of arm and pendulum lengths.", 0.05)
    damping: float = doc("Relative spread of viscous damping.", 0.5)
    motor: float = doc("Relative spread of Rm, kt, km.", 0.1)
    action_delay_substeps: tuple[int, int] = doc(
        "Command-to-actuator delay range in physics substeps, drawn each control step "
        "(the loop acts < 1 ms after a sensor frame; the rest is margin for USB-serial latency).", (0, 8)
    )


@dataclass(frozen=True)
class InitialStateConfig:
    """Where episodes (and the twin) start."""

    angle_deg: float = doc("Pendulum starts uniformly within +-angle_deg of upright.", 10.0)
    rate_rad_s: float = doc("Initial pendulum rate uniformly within +-rate.", 0.3)
    arm_rad: float = doc("Initial arm angle uniformly within +-arm_rad.", 0.2)


@dataclass(frozen=True)
class DeviceConfig:
    """The simulated rotary pendulum as a serial device."""

    name: str = doc("Device name reported in the handshake.", "qube-twin")
    physics: PhysicsConfig = nested(PhysicsConfig, "Nominal physics.")
    imu: ImuConfig = nested(ImuConfig, "Pendulum IMU.")
    camera: CameraConfig = nested(CameraConfig, "Camera.")
    encoder_cpr: int = doc("Motor encoder counts per revolution.", 2048)
    stream_rate_hz: int = doc("SENSOR frames per second (= the control rate the policy is trained at).", 100)
    v_max: float = doc("Actuator range +-v_max (V); the policy's full-scale action.", 5.0)
    watchdog_ms: int = doc("Device zeroes the motor when no command arrives for this long.", 100)
    randomization: RandomizationConfig = nested(RandomizationConfig, "Per-episode randomization.")
    initial: InitialStateConfig = nested(InitialStateConfig, "Initial state.")

    def __post_init__(self) -> None:
        if self.imu.rate_hz % self.stream_rate_hz or self.imu.rate_hz % self.camera.rate_hz:
            raise ValueError("stream_rate_hz: stream and camera rates must divide imu.rate_hz")
        if not 0 < self.v_max <= 24:
            raise ValueError(f"v_max: must be in (0, 24] V, got {self.v_max}")

    @property
    def substeps_per_control(self) -> int:
        return self.imu.rate_hz // self.stream_rate_hz

    @property
    def substeps_per_frame(self) -> int:
        return self.imu.rate_hz // self.camera.rate_hz
