"""Motions for perception data: the classical controller drives the simulated device through swing-up and balance.

Perception must be accurate where the controller takes the pendulum: swinging up from
hanging, rotating over the top, and balancing. A random voltage seldom goes there, so the
perception corpus (``sim pretrain``, ``sim finetune``, ``sim train``) mixes random-walk
scenarios with ones driven by :class:`~sensorimotor.control.classical.EnergyLqrController`
on the true state, with a per-episode energy target, coloured voltage noise and occasional
kicks that knock the pendulum over so it falls and is caught again.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from sensorimotor.control.classical import EnergyLqrController, state_view
from sensorimotor.control.config import ClassicalConfig
from sensorimotor.perception.data import ANYWHERE, HANGING, NEAR_UPRIGHT, Driver, DriverFactory, Scenario, random_walk
from sensorimotor.sim.config import DeviceConfig


def classical(
    targets: tuple[float, ...], switch_deg: float | None = 25.0, noise_v: tuple[float, float] = (0.2, 1.0),
    kick_prob: float = 0.004,
) -> DriverFactory:  # fmt: skip
    """The energy swing-up + LQR on the true state, each episode with one of ``targets`` (units of 2 mgl).

    ``switch_deg`` None: never switch to LQR (pumping only: swings or rotations). ``noise_v``:
    range of the per-episode AR(1) voltage noise level. ``kick_prob``: per step, a 60 ms
    full-voltage pulse in a random direction starts.
    """

    def factory(n: int, cfg: DeviceConfig, rng: np.random.Generator) -> Driver:
        base = ClassicalConfig()
        ctrls = [
            EnergyLqrController(cfg, dataclasses.replace(
                base, energy_target=t, switch_deg=switch_deg if switch_deg is not None else 1e-3))
            for t in targets
        ]  # fmt: skip
        which = rng.integers(len(targets), size=n)
        sigma = rng.uniform(*noise_v, size=n)
        noise = np.zeros(n)
        kick = np.zeros(n, np.int64)
        kick_sign = np.zeros(n)
        kick_steps = max(1, round(0.06 * cfg.stream_rate_hz))

        @torch.no_grad()
        def drive(state: np.ndarray) -> np.ndarray:
            view = state_view(state)
            volts = np.zeros(n)
            for j, ctrl in enumerate(ctrls):
                sel = which == j
                if sel.any():
                    volts[sel] = ctrl(view[sel])[:, 0].double().numpy() * cfg.v_max
            noise[:] = 0.8 * noise + rng.normal(0.0, 1.0, n) * sigma
            start = (kick == 0) & (rng.random(n) < kick_prob)
            kick[start] = kick_steps
            kick_sign[start] = rng.choice([-1.0, 1.0], size=int(start.sum()))
            out = np.where(kick > 0, kick_sign * cfg.v_max, volts + noise)
            kick[kick > 0] -= 1
            return np.clip(out, -cfg.v_max, cfg.v_max)

        return drive

    return factory


def swingup_scenarios() -> tuple[Scenario, ...]:
    """The perception corpus: swing-up and balance, pumping, rotations, near-upright and anywhere (random walk)."""
    return (
        Scenario("swing-up and balance", HANGING, classical((0.0, 0.1, 0.2)), weight=3.0),
        Scenario("pumping", HANGING, classical((-0.5, -0.35, -0.2), switch_deg=None), weight=1.0),
        Scenario("rotating", HANGING, classical((0.4, 0.7), switch_deg=None), weight=1.0),
        Scenario("balance", NEAR_UPRIGHT, classical((0.1,), noise_v=(0.1, 0.6)), weight=2.0),
        Scenario("anywhere", ANYWHERE, random_walk(3.0), weight=1.0),
    )
