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

from dataclasses import dataclass
from typing import Any

import numpy as np

from sensorimotor.configs.schema import Section, doc
from sensorimotor.sim.mujoco_backend import import_mujoco, linearize

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


def pitch_of(qpos: Array) -> Array:
    """The body's pitch (rad, > 0: leaning towards +x) from the free joint's quaternion (..., 9) positions."""
    w, x, y, z = (qpos[..., i] for i in range(3, 7))
    return np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))


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


def sagittal_model(model: Any) -> tuple[Array, Array]:
    """(A, B) of the upright balancer, one ``model`` step: :data:`SAGITTAL_STATE` driven by one voltage on both
    motors; the model's own linearization (``mjd_transitionFD``), for a classical baseline."""
    qpos, qvel = settled_upright(model)
    a, b = linearize(model, qpos, qvel)
    idx = np.array(_SAGITTAL_INDEX)
    return a[np.ix_(idx, idx)], (b[idx, 0] + b[idx, 1])[:, None]
