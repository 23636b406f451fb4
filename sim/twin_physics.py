"""What a twin plays: one simulated device (N = 1), substep by substep, and the ground truth the host cannot see.

Shared by the Python twin (sim/twin.py, which also speaks the protocol) and the firmware in
the loop (sim/firmware_twin.py, where the C firmware speaks it and asks this for samples).

Light runtime path: numpy, numba and the simulator's core only.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sensorimotor.sim import core
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.furuta import wrap_angle
from sensorimotor.sim.task import SuccessTracker, TaskConfig, make_task
from sensorimotor.sim.verdict import TwinTruth


@dataclass
class Truth(TwinTruth):
    """The pendulum's ground truth: what every twin reports and what only the pendulum has."""

    max_abs_alpha_deg: float = 0.0
    max_abs_theta_rad: float = 0.0
    arm_past_limit: bool = False  # wound past the cable limit (task.arm_limit_rad) at some point
    time_to_upright_s: float | None = None  # when the successful upright run began
    # what the camera's mount adds to every image angle this episode (deg): the roll `hw calibrate` measures
    image_roll_deg: float = 0.0


class TwinPhysics:
    """The device's physics, sensors and ground truth for one twin; the protocol is the caller's."""

    def __init__(self, cfg: DeviceConfig, task: TaskConfig, seed: int = 0, randomize: bool = True) -> None:
        self.cfg, self.task = cfg, make_task(task)
        self.sim = self.task.sim(cfg, 1, seed=seed, randomize=randomize)
        load_kernels(cfg)  # now, not at START: a cold compile would outlast the host's sensor timeout
        self.truth = Truth(task=self.task.name)
        self.dt = 1.0 / cfg.imu.rate_hz
        self.tracker = SuccessTracker(self.task, 1, self.dt)
        self.substeps = 0  # substeps simulated since the twin started (the device's clock)
        self.last_frame_tick = -1  # capture tick of the last camera frame that reached the host side

    def start(self, real_time: bool) -> None:
        """A new episode of the task (its warm-up fills the sensor buffers); truth restarts."""
        self.sim.reset()
        # the render turns the view by ROLL, so the image shows alpha - ROLL (bench_calibrate measures it so)
        self.truth.image_roll_deg = -math.degrees(float(self.sim.buffers.cam_ep[0, core.ROLL]))
        self.truth.physics = {name: float(v[0]) for name, v in dataclasses.asdict(self.sim.params).items()}
        self.tracker = SuccessTracker(self.task, 1, self.dt)
        if real_time:
            # In real time the pty and the host add the real command latency; the simulated
            # one (which models exactly that link in training) would count it twice.
            self.sim.buffers.delay[0, 0] = 0
        self.last_frame_tick = self.newest_frame_tick()

    def command(self, volts: Sequence[float]) -> None:
        """The motor voltage (one value, clamped to +-v_max); lands after the episode's actuator delay."""
        self.sim.command(np.array([volts[0]]))
        self.truth.max_abs_volts = max(self.truth.max_abs_volts, min(abs(volts[0]), self.cfg.v_max))

    def zero(self) -> None:
        """0 V at once (STOP, the watchdog)."""
        self.sim.command(np.zeros(1))

    def details(self) -> str:
        """The run in a line, beside the verdict."""
        t = self.truth
        return (f"pendulum upright {t.upright_s:.2f} s of {t.streaming_s:.2f} s, max |alpha| {t.max_abs_alpha_deg:.1f} "
                f"deg, max |theta| {t.max_abs_theta_rad:.2f} rad")  # fmt: skip

    #: One substep per call: a camera frame can reach the host between any two.
    whole_periods = False

    def substep(self, track: bool, count: int = 1) -> bool:
        """One substep of physics; with ``track``, the truth follows. True when a camera frame reached the host side."""
        if count != 1:
            raise ValueError("the pendulum's twin steps one substep at a time: its camera frames land between them")
        self.sim.substep()
        self.substeps += 1
        if not track:
            return False
        self._track_truth()
        newest = self.newest_frame_tick()
        if newest == self.last_frame_tick:
            return False
        self.last_frame_tick = newest
        return True

    def newest_frame_tick(self) -> int:
        b = self.sim.buffers
        visible = b.tick[0] - b.delay[0, 2]
        ticks = b.frame_tick[0]
        ok = (ticks >= 0) & (ticks <= visible)
        return int(ticks[ok].max()) if ok.any() else -1

    def _track_truth(self) -> None:
        state = self.sim.state
        alpha = abs(float(wrap_angle(state[0, 1])))
        t = self.truth
        t.streaming_s += self.dt
        t.max_abs_alpha_deg = max(t.max_abs_alpha_deg, float(np.rad2deg(alpha)))
        t.max_abs_theta_rad = max(t.max_abs_theta_rad, abs(float(state[0, 0])))
        if alpha < np.deg2rad(self.task.cfg.upright_deg):
            t.upright_s += self.dt
        else:
            t.upright_whole_run = False
        self.tracker.update(state, self.sim.volts / self.cfg.v_max)
        t.arm_past_limit = bool(self.tracker.failed_arm[0])
        t.success = bool(self.tracker.success[0])
        ttu = float(self.tracker.time_to_upright[0])
        t.time_to_upright_s = None if np.isnan(ttu) else ttu


def load_kernels(cfg: DeviceConfig) -> None:
    """Run every core kernel once on a throwaway sim (numba compiles or loads them on first call)."""
    sim = FurutaSim(cfg, 1, seed=0)
    sim.reset()
    sim.step(np.zeros(1))
    sim.command(np.zeros(1))
    sim.substep()
    sim.received(1)
