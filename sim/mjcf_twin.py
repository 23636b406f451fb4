"""What a twin plays for a MuJoCo-described device: one simulated device (N = 1), substep by substep, and its truth.

The counterpart of :class:`~sensorimotor.sim.twin_physics.TwinPhysics` (the Furuta's) for any
device section that offers ``mjcf_device()`` and ``make_task()`` (sim/balancer.py's
``BalancerConfig``): the same :class:`~sensorimotor.sim.mujoco_device.MujocoDeviceSim` the
policy trained on, stepped one IMU sample at a time, and the task's own criteria for the
verdict. Nothing here names a device's state; the task names what it reports.

Light runtime path: numpy and mujoco only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sensorimotor.sim.mujoco_device import D_ACT, MujocoDeviceSim
from sensorimotor.sim.verdict import TwinTruth


class MjcfTwinPhysics:
    """An MJCF device's physics, sensors and ground truth for one twin; the protocol is the caller's."""

    def __init__(self, cfg: Any, task: Any, seed: int = 0, randomize: bool = True) -> None:
        self.cfg, self.task = cfg, cfg.make_task(task)
        self.sim = MujocoDeviceSim(cfg.mjcf_device(), 1, seed=seed, randomize=randomize)
        self.truth = TwinTruth(task=self.task.name)
        self.dt = 1.0 / cfg.imu.rate_hz
        self.substeps = 0  # substeps simulated since the twin started (the device's clock)
        self.worst: dict[str, float] = {}  # the largest of each of the task's measures this episode
        self.started = False  # no episode before the first START: the clock runs, nothing moves

    def start(self, real_time: bool) -> None:
        """A new episode (its warm-up fills the sensor windows); the run's verdict restarts."""
        self.sim.reset()
        self.started = True
        self.truth.physics = {
            name: float(v) for name, v in zip(self.sim.device.param_names, self.sim.params[0], strict=True)
        }
        self.truth.upright_whole_run, self.truth.success, self.truth.failure = True, False, None
        self.worst = {}
        if real_time:
            # In real time the pty and the host add the real command latency; the simulated
            # one (which models exactly that link in training) would count it twice.
            self.sim.delays[0, D_ACT] = 0

    def command(self, volts: Sequence[float]) -> None:
        """One voltage per actuator (each clamped to +-v_max); they land after the episode's actuator delay."""
        v = np.asarray(volts, np.float64)[None, :]
        self.sim.command(v)
        self.truth.max_abs_volts = max(self.truth.max_abs_volts, min(float(np.abs(v).max()), self.cfg.v_max))

    def zero(self) -> None:
        """0 V on every actuator at once (STOP, the watchdog)."""
        self.sim.command(np.zeros((1, self.sim.nu)))

    #: A lockstep twin advances a control period in one call, as the simulator does: MuJoCo's solver
    #: warm-starts within a rollout, so ten one-substep calls differ from one ten-substep call in the last bits.
    whole_periods = True

    def substep(self, track: bool, count: int = 1) -> bool:
        """``count`` substeps of physics; with ``track``, the truth follows. False: no camera frames here."""
        self.substeps += count
        if not self.started:
            return False
        self.sim.substep(count)
        if track:
            self._track_truth(count * self.dt)
        return False

    def _track_truth(self, seconds: float) -> None:
        state, t = self.sim.state, self.truth
        t.streaming_s += seconds
        if bool(self.task.upright(state)[0]):
            t.upright_s += seconds
        else:
            t.upright_whole_run = False
        for name, value in self.task.measures(state).items():
            self.worst[name] = max(self.worst.get(name, 0.0), float(value[0]))
        t.success = bool(self.task.success(np.array([t.upright_whole_run]), state)[0])
        t.failure = None if t.success else self.task.why_failed(t.upright_whole_run, state[0])

    def details(self) -> str:
        """The run in a line, beside the verdict: time upright and the task's measures now and at their worst."""
        now = {name: float(v[0]) for name, v in self.task.measures(self.sim.state).items()}
        measures = ", ".join(f"{name} {now[name]:.3g} (worst {self.worst.get(name, now[name]):.3g})" for name in now)
        return f"upright {self.truth.upright_s:.2f} s of {self.truth.streaming_s:.2f} s; {measures}"
