"""The feasibility oracle: its batch controller is the classical one, and it tells a doable device from one that is not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sensorimotor.control.classical import EnergyLqrController, state_view
from sensorimotor.control.config import ClassicalConfig, load_experiment
from sensorimotor.control.oracle import (
    BatchEnergyLqr,
    OracleBudget,
    coords_of,
    feasibility,
    feasibility_many,
    gains_of,
    with_range,
)

SMALL = OracleBudget(popsize=6, generations=3, episodes=4, verify_episodes=8)


@pytest.fixture(scope="module")
def cfg():
    return load_experiment(preset="quick")


def test_batch_controller_equals_the_classical_one(cfg) -> None:
    """Same gains, same volts as the torch EnergyLqrController (the independent reference)."""
    classical = ClassicalConfig()
    gains = {k: np.full(64, v) for k, v in gains_of(coords_of(classical)[None]).items()}
    rng = np.random.default_rng(0)
    states = rng.uniform([-2, -np.pi, -10, -20], [2, np.pi, 10, 20], (64, 4))
    ours = BatchEnergyLqr(cfg.device, gains)(states)
    ref = EnergyLqrController(cfg.device, classical)(state_view(states)).detach().numpy()[:, 0] * cfg.device.v_max
    np.testing.assert_allclose(ours, ref, atol=2e-4 * cfg.device.v_max)


def test_nominal_device_is_feasible(cfg) -> None:
    f = feasibility(cfg.device, cfg.task, SMALL)
    assert f.feasible and f.success_rate >= 0.5
    assert "feasible at +-5 V" in f.verdict()


def test_vendor_damping_cannot_swing_up_at_5_volts(cfg) -> None:
    """Quanser's published damping (Dp 10x, Dr 5.6x): no swing-up within +-5 V; the verdict names a larger range."""
    physics = dataclasses.replace(cfg.device.physics, Dp=0.0005, Dr=0.0015)
    device = dataclasses.replace(cfg.device, physics=physics)
    f = feasibility(device, cfg.task, SMALL)
    assert not f.feasible
    assert f.verdict().startswith("cannot be done at +-5 V")
    assert f.needed_v is None or f.needed_v > 10


def test_stacked_controller_gives_each_row_its_own_devices_volts(cfg) -> None:
    """Several devices' controllers stacked into one: each row as its own device's controller would command."""
    rng = np.random.default_rng(1)
    heavy = dataclasses.replace(cfg.device, physics=dataclasses.replace(cfg.device.physics, mp=0.04, Lp=0.16))
    wide = with_range(cfg.device, 10.0)
    parts, states = [], []
    for device, n in ((cfg.device, 5), (heavy, 3), (wide, 4)):
        gains = {k: v for k, v in gains_of(rng.uniform(0, 1, (n, 5))).items()}
        parts.append((BatchEnergyLqr(device, gains), n))
        states.append(rng.uniform([-2, -np.pi, -10, -20], [2, np.pi, 10, 20], (n, 4)))
    stacked = BatchEnergyLqr.stacked(parts)(np.concatenate(states))
    each = np.concatenate([c(x) for (c, _), x in zip(parts, states, strict=True)])
    np.testing.assert_allclose(stacked, each, rtol=1e-12, atol=1e-12)
    assert np.abs(stacked[8:]).max() > 5.0  # the wide device's rows are not clipped at the others' 5 V


def test_devices_searched_together_keep_their_own_verdicts(cfg) -> None:
    """The nominal device and the vendor's damping in the same batches: one feasible, the other not at 5 V."""
    vendor = dataclasses.replace(cfg.device, physics=dataclasses.replace(cfg.device.physics, Dp=0.0005, Dr=0.0015))
    nominal, heavy = feasibility_many([cfg.device, vendor], cfg.task, SMALL)
    assert nominal.feasible and nominal.needed_v == 5.0
    assert not heavy.feasible and (heavy.needed_v is None or heavy.needed_v > 10)
    # one device alone is the same search as before batching: same seed, same verdict
    alone = feasibility(cfg.device, cfg.task, SMALL)
    assert alone.feasible and alone.gains == feasibility_many([cfg.device], cfg.task, SMALL)[0].gains


def test_a_twin_draw_the_config_would_refuse_is_judged_with_breakaway_raised_to_coulomb(cfg) -> None:
    from benchmarks.bench_twin_runs import drawn_physics
    from sensorimotor.sim.task import make_task

    # the twin's first episode with seed 5 draws the arm's breakaway below its Coulomb level
    sim = make_task(cfg.task).sim(cfg.device, 1, seed=5, randomize=True)
    sim.reset()
    drawn = {k: float(v[0]) for k, v in dataclasses.asdict(sim.params).items()}
    assert drawn["static_r"] < drawn["coulomb_r"]
    with pytest.raises(ValueError, match="static_r"):
        dataclasses.replace(cfg.device.physics, **drawn)
    physics = drawn_physics(cfg.device.physics, drawn)
    assert physics.static_r == drawn["coulomb_r"] and physics.Dp == drawn["Dp"] and physics.Rm == drawn["Rm"]
