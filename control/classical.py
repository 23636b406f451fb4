"""Classical baseline: energy-based swing-up (Åström–Furuta) switching to LQR near upright.

* **LQR** from the simulator's own linearization about upright (:func:`sensorimotor.sim.furuta.linearize`,
  nominal parameters), discretized at the control rate (zero-order hold) and solved with
  ``scipy.linalg.solve_discrete_are``: ``V = -K [theta, alpha, theta_dot, alpha_dot]``.
* **Swing-up** by energy, Åström & Furuta's rule (Automatica 36, 2000). The pendulum's
  energy ``E = 1/2 b alpha_dot^2 + d (cos alpha - 1)`` (0 upright at rest, ``-2 d``
  hanging; ``b`` its inertia about the pivot, ``d = mp g l``) changes with the arm's
  acceleration at ``dE/dt = -c alpha_dot cos(alpha) theta_ddot``, so
  ``V = k_e v_max (E - E_target) / 2d * phase`` with ``phase ~ sign(alpha_dot cos alpha)``
  pumps energy in until ``E`` reaches the target. The Qube's arm is light (its inertia is
  3x the pendulum's coupling term): pumping makes it swing fast, and its kinetic energy
  trades with the pendulum's as it rises, so with the pendulum's energy alone the swing
  stalls 40 deg short of upright. By default ``E`` is therefore the whole device's
  mechanical energy (arm terms included, as in :func:`sensorimotor.sim.furuta.energy`).
  A PD term on the arm keeps it off its cable limit.
* **Switch** to LQR when ``|alpha| < switch_deg``, back to swing-up when it falls out.

:class:`EnergyLqrController` is a torch module from a *state view* to the normalized command
in [-1, 1], so it runs on the true state (the reference) or on the perception estimates
(the fair comparison with the RL policy) and exports through the same ONNX path
(:class:`ClassicalActor` in a :class:`~sensorimotor.control.export.PolicyChain`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import torch
from torch import nn

from sensorimotor.control.config import ClassicalConfig
from sensorimotor.perception.config import OBS_NAMES
from sensorimotor.perception.models import RATE_SCALE
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import nominal_params
from sensorimotor.sim.furuta import linearize


def lqr_gain(device: DeviceConfig, cfg: ClassicalConfig) -> np.ndarray:
    """K (1, 4) of the discrete LQR at the control rate on the nominal linearization (V per unit state)."""
    a_c, b_c = linearize(nominal_params(device))
    dt = 1.0 / device.stream_rate_hz
    # Zero-order hold: exp([[A, B], [0, 0]] dt) = [[Ad, Bd], [0, I]].
    m = np.zeros((5, 5))
    m[:4, :4], m[:4, 4:] = a_c, b_c
    e = scipy.linalg.expm(m * dt)
    a_d, b_d = e[:4, :4], e[:4, 4:]
    q = np.diag([cfg.q_theta, cfg.q_alpha, cfg.q_theta_dot, cfg.q_alpha_dot])
    r = np.array([[cfg.r_volts]])
    p = scipy.linalg.solve_discrete_are(a_d, b_d, q, r)
    return np.linalg.solve(r + b_d.T @ p @ b_d, b_d.T @ p @ a_d)


class EnergyLqrController(nn.Module):
    """(theta, sin alpha, cos alpha, theta_dot, alpha_dot) (B, 5) -> normalized command (B, 1) in [-1, 1]."""

    k: torch.Tensor

    def __init__(self, device: DeviceConfig, cfg: ClassicalConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or ClassicalConfig()
        p = nominal_params(device)
        half = p.Lp / 2.0
        self.b = float(p.Jp + p.mp * half**2)  # pendulum inertia about its pivot
        self.d = float(p.mp * p.g * half)
        self.a = float(p.Jr + p.mp * p.Lr**2)  # arm inertia with the pendulum at its tip
        self.c = float(p.mp * p.Lr * half)
        self.e = float(p.mp * half**2)
        self.omega = float(np.sqrt(self.d / self.b))  # small-swing natural frequency (rad/s)
        self.v_max = float(device.v_max)
        self.cos_switch = float(np.cos(np.deg2rad(cfg.switch_deg)))
        self.cfg = cfg
        self.register_buffer("k", torch.tensor(lqr_gain(device, cfg), dtype=torch.float32))

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        theta, sin_a, cos_a, theta_dot, alpha_dot = state.unbind(-1)
        alpha = torch.atan2(sin_a, cos_a)
        x = torch.stack([theta, alpha, theta_dot, alpha_dot], dim=-1)
        v_lqr = -(x * self.k).sum(-1)
        energy = 0.5 * self.b * alpha_dot**2 + self.d * (cos_a - 1.0)
        if self.cfg.total_energy:  # the arm's motion too: the whole device at rest upright is the target
            energy = energy + 0.5 * (self.a + self.e * sin_a**2) * theta_dot**2 + self.c * cos_a * theta_dot * alpha_dot
        # sign(alpha_dot cos alpha), made linear for slow swings: a pure sign() chatters at rest,
        # as the arm's own kick flips a small alpha_dot every step.
        phase = torch.clamp(alpha_dot * cos_a / self.cfg.phase_rate, -1.0, 1.0)
        missing = (energy - self.cfg.energy_target * 2.0 * self.d) / (2.0 * self.d)  # < 0 below the target
        pump = self.cfg.energy_gain * self.v_max * missing * phase
        v_swing = torch.clamp(pump, -self.v_max, self.v_max) - self.cfg.arm_kp * theta - self.cfg.arm_kd * theta_dot
        near = cos_a > self.cos_switch
        volts = torch.where(near, v_lqr, v_swing)
        return torch.clamp(volts / self.v_max, -1.0, 1.0).unsqueeze(-1)


class ClassicalActor(nn.Module):
    """The controller on the perception estimates (OBS_NAMES, (B, len(OBS_NAMES))): an actor for PolicyChain.

    The pendulum angle is the IMU's sin/cos, averaged with the camera's when the camera head
    says the frame is sound (weighted by ``camera_ok``); the rate is the IMU's, the arm's
    angle and rate the encoder's. That is the information the RL policy gets.
    """

    def __init__(self, controller: EnergyLqrController) -> None:
        super().__init__()
        self.controller = controller
        self.idx = {name: i for i, name in enumerate(OBS_NAMES)}

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        i = self.idx
        ok = obs[:, i["camera_ok"]]
        sin_a = obs[:, i["imu_sin"]] + ok * obs[:, i["img_sin"]]
        cos_a = obs[:, i["imu_cos"]] + ok * obs[:, i["img_cos"]]
        norm = torch.sqrt(sin_a**2 + cos_a**2).clamp_min(1e-6)
        sin_a, cos_a = sin_a / norm, cos_a / norm
        state = torch.stack(
            [
                obs[:, i["arm_angle"]],
                sin_a,
                cos_a,
                obs[:, i["arm_rate"]] * RATE_SCALE,
                obs[:, i["imu_rate"]] * RATE_SCALE,
            ],
            dim=-1,
        )
        return self.controller(state)


def state_view(state: np.ndarray) -> torch.Tensor:
    """True simulator states (N, 4) [theta, alpha, theta_dot, alpha_dot] as the controller's input (N, 5)."""
    s = torch.from_numpy(np.asarray(state, np.float64)).to(torch.float32)
    return torch.stack([s[:, 0], torch.sin(s[:, 1]), torch.cos(s[:, 1]), s[:, 2], s[:, 3]], dim=-1)
