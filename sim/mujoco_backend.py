"""MuJoCo as a physics backend: a device as an MJCF model, batches of trajectories stepped in C.

A device described by MJCF gets its IMU from ``<gyro>``/``<accelerometer>`` sensors on a
site, its encoders from ``<jointpos>`` sensors, and each DC motor from a ``general``
actuator: gain ``kt / Rm`` on the terminal voltage and a velocity bias ``-kt km / Rm``
(the back-EMF), so ``ctrl`` is the voltage at the motor's terminals. The amplifier's
deadzone and saturation stay in the shell (:func:`sensorimotor.sim.furuta.actuator_voltage`),
as in the numba core. :class:`MujocoBatch` advances N trajectories at once with
``mujoco.rollout`` (a thread pool in C, no Python loop per step).

:func:`furuta_mjcf` writes the reference device (the Qube) in MJCF from its physics
config; ``tests/sim/test_mujoco_backend.py`` holds it against the numba core and says where
the two models differ (docs/simulator.md, "MuJoCo backend").

``mujoco`` is an optional dependency (``pip install sensorimotor[mujoco]``); nothing on the
runtime path imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sensorimotor.sim.furuta import FurutaParams

Array = np.ndarray


def import_mujoco() -> tuple[Any, Any]:
    try:
        import mujoco
        from mujoco import rollout
    except ImportError:
        raise ImportError(
            "the MuJoCo backend needs the mujoco package: pip install 'sensorimotor[mujoco]' (or pip install mujoco)"
        ) from None
    return mujoco, rollout


def furuta_mjcf(
    p: FurutaParams, dt: float = 0.001, imu_position_m: float = 0.1, friction: bool = True, limit: bool = True
) -> str:
    """The rotary pendulum of ``p`` as MJCF: z up, the arm along +x at theta = 0, alpha = 0 upright.

    Joints ``theta`` (the motor, about +z) and ``alpha`` (the pendulum, about the arm, signed so
    that alpha > 0 leans towards the arm's positive travel, as in sim/furuta.py), each with
    its viscous damping; the arm a rod turning about its end (mr Lr^2 / 3 about the motor
    axis), the pendulum a thin rod (mp Lp^2 / 12 about its centre across the rod, ~0 along
    it). ``friction``: each joint's Coulomb level as MuJoCo's ``frictionloss`` (a dry-friction
    constraint: no Stribeck rise to a breakaway level, no regularization velocity). The cable
    limit is the joint's range (MuJoCo's soft limit, not the numba core's spring-damper); without
    ``limit`` the arm turns freely.
    Sensors: ``encoder`` (jointpos of theta), ``gyro`` and ``accel`` on a site on the pendulum
    ``imu_position_m`` from its pivot. RK4 at ``dt``, as the numba core integrates.
    """
    vals = {k: float(np.asarray(getattr(p, k))) for k in ("Rm", "kt", "km", "mr", "Lr", "Dr", "mp", "Lp", "Dp", "g")}
    mr, lr, mp, lp = vals["mr"], vals["Lr"], vals["mp"], vals["Lp"]
    eps = 1e-9  # a rod's inertia along itself: MuJoCo wants positive principal moments
    arm_i = mr * lr**2 / 12.0  # about its centre, across the rod: mr Lr^2 / 3 about the motor axis
    pend_i = mp * lp**2 / 12.0
    gain = vals["kt"] / vals["Rm"]
    fr = (float(np.asarray(p.coulomb_r)), float(np.asarray(p.coulomb_p))) if friction else (0.0, 0.0)
    stop = float(np.asarray(p.theta_stop))
    arm_range = f' range="{-stop!r} {stop!r}"' if limit else ""
    return f"""<mujoco model="furuta">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{dt!r}" integrator="RK4" gravity="0 0 {-vals["g"]!r}"/>
  <worldbody>
    <body name="arm">
      <joint name="theta" type="hinge" axis="0 0 1" damping="{vals["Dr"]!r}" frictionloss="{fr[0]!r}"{arm_range}/>
      <inertial pos="{lr / 2!r} 0 0" mass="{mr!r}" diaginertia="{eps!r} {arm_i!r} {arm_i!r}"/>
      <geom type="capsule" fromto="0 0 0 {lr!r} 0 0" size="0.005" contype="0" conaffinity="0"/>
      <body name="pendulum" pos="{lr!r} 0 0">
        <joint name="alpha" type="hinge" axis="-1 0 0" damping="{vals["Dp"]!r}" frictionloss="{fr[1]!r}"/>
        <inertial pos="0 0 {lp / 2!r}" mass="{mp!r}" diaginertia="{pend_i!r} {pend_i!r} {eps!r}"/>
        <geom type="capsule" fromto="0 0 0 0 0 {lp!r}" size="0.004" contype="0" conaffinity="0"/>
        <site name="imu" pos="0 0 {imu_position_m!r}"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <general name="motor" joint="theta" gainprm="{gain!r}" biastype="affine"
             biasprm="0 0 {-gain * vals["km"]!r}"/>
  </actuator>
  <sensor>
    <jointpos name="encoder" joint="theta"/>
    <gyro name="gyro" site="imu"/>
    <accelerometer name="accel" site="imu"/>
  </sensor>
</mujoco>
"""


@dataclass(frozen=True)
class Trajectories:
    """N rolled-out trajectories of T steps: joint positions and velocities, sensor readings."""

    qpos: Array  # (N, T, nq): after each step
    qvel: Array  # (N, T, nv)
    sensors: Array  # (N, T, nsensordata), in the MJCF's sensor order


class MujocoBatch:
    """One MJCF model, stepped for N trajectories at once by ``mujoco.rollout`` on ``threads`` threads."""

    def __init__(self, xml: str, threads: int = 1) -> None:
        self.mujoco, self._rollout = import_mujoco()
        self.model = self.mujoco.MjModel.from_xml_string(xml)
        self.datas = [self.mujoco.MjData(self.model) for _ in range(max(1, threads))]
        self._spec = self.mujoco.mjtState.mjSTATE_FULLPHYSICS
        self.nstate = self.mujoco.mj_stateSize(self.model, self._spec)

    def initial_states(self, qpos: Array, qvel: Array) -> Array:
        """(N, nstate) full physics states with these joint positions and velocities, at time 0."""
        data, out = self.datas[0], np.empty((len(qpos), self.nstate))
        for i, (q, v) in enumerate(zip(np.atleast_2d(qpos), np.atleast_2d(qvel), strict=True)):
            self.mujoco.mj_resetData(self.model, data)
            data.qpos[:], data.qvel[:] = q, v
            self.mujoco.mj_getState(self.model, data, out[i], self._spec)
        return out

    def rollout(self, qpos: Array, qvel: Array, ctrl: Array) -> Trajectories:
        """From (N, nq) / (N, nv) states, apply ``ctrl`` (N, T, nu): each value held for one step."""
        return self.run(self.initial_states(qpos, qvel), ctrl)

    def run(self, states: Array, ctrl: Array) -> Trajectories:
        """From (N, nstate) full physics states (:meth:`initial_states`), apply ``ctrl`` (N, T, nu)."""
        ctrl = np.ascontiguousarray(ctrl, np.float64)
        state, sensors = self._rollout.rollout(self.model, self.datas, states, ctrl)
        nq, nv = self.model.nq, self.model.nv
        return Trajectories(qpos=state[..., 1 : 1 + nq], qvel=state[..., 1 + nq : 1 + nq + nv], sensors=sensors)


def linearize(
    model: Any, qpos: Array, qvel: Array, ctrl: Array | None = None, eps: float = 1e-6
) -> tuple[Array, Array]:
    """(A, B) of one ``model`` step about (qpos, qvel, ctrl): x' = A x + B u by centred finite differences.

    The state is MuJoCo's tangent space ``[dq (nv), dqvel (nv)]`` (a free joint's rotation as
    three angles in its body's frame); ``mujoco.mjd_transitionFD`` computes it, contacts included.
    """
    mujoco, _ = import_mujoco()
    data = mujoco.MjData(model)
    data.qpos[:], data.qvel[:] = qpos, qvel
    if ctrl is not None:
        data.ctrl[:] = ctrl
    mujoco.mj_forward(model, data)
    a = np.zeros((2 * model.nv + model.na, 2 * model.nv + model.na))
    b = np.zeros((2 * model.nv + model.na, model.nu))
    mujoco.mjd_transitionFD(model, data, eps, True, a, b, None, None)
    return a, b
