"""The compiled core against independent references: numpy, energy, solve_ivp, Quanser's linear model.

Stated tolerances (docs/simulator.md):
* core vs the numpy reference, one RK4 step: 1e-12 relative; 1 s closed trajectories: 1e-9 rad.
* energy with damping, friction and motor off, 10 s at 1 kHz: |dE| < 1e-8 * mp g Lp/2.
* core vs ``solve_ivp`` (DOP853, rtol 1e-11) over 2 s of swinging: 1e-8 rad frictionless; 3e-4 rad with
  friction (RK4 at 1 kHz on the steep regularized friction near rest).
* linearization vs Quanser's published state-space model: 1e-8 relative.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sensorimotor.sim import core
from sensorimotor.sim.config import DeviceConfig, PhysicsConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.furuta import FurutaParams, derivative, energy, linearize, rk4_step

P = FurutaParams()


def _row(p: FurutaParams) -> np.ndarray:
    return np.array([float(getattr(p, f.name)) for f in dataclasses.fields(p)])


def _device(**physics: float) -> DeviceConfig:
    """A device whose sim is deterministic physics only: no delays, nominal parameters set by ``physics``."""
    cfg = DeviceConfig()
    r = dataclasses.replace(cfg.randomization, action_delay_substeps=(0, 0), imu_delay_substeps=(0, 0))
    return dataclasses.replace(cfg, physics=dataclasses.replace(PhysicsConfig(), **physics), randomization=r)


def _sim(cfg: DeviceConfig, start: np.ndarray, **kw: bool) -> FurutaSim:
    sim = FurutaSim(cfg, len(start), seed=0, randomize=False, **{"imu": False, "camera": False, **kw})
    sim.reset(state=start)
    return sim


def test_one_rk4_step_matches_the_numpy_reference() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.normal(size=4) * np.array([2.0, 3.0, 10.0, 20.0])
        x[0] = rng.uniform(-3.5, 3.5)  # sometimes inside the end-stop
        v = rng.uniform(-12, 12)  # beyond saturation sometimes; sometimes inside the deadzone
        p = P.scaled(mr=rng.uniform(0.7, 1.3), coulomb_r=rng.uniform(0, 3), Dp=rng.uniform(0, 2))
        got = x.copy()
        core._rk4(got, v, _row(p), 1e-3)
        want = rk4_step(x, np.array(v), p, 1e-3)
        assert np.allclose(got, want, rtol=1e-12, atol=1e-12)


def test_sim_trajectory_matches_the_reference_integrator() -> None:
    cfg = _device()
    start = np.array([[0.1, 0.2, 0.0, -0.5], [-0.4, 2.9, 0.0, 1.0]])
    sim = _sim(cfg, start)
    x, nominal = start.copy(), FurutaParams(**dataclasses.asdict(cfg.physics))
    volts = 3.0 * np.sin(np.arange(100) / 7.0)
    for v in volts:
        sim.step(np.full(2, v))
        for _ in range(cfg.substeps_per_control):
            x = rk4_step(x, np.full(2, v), nominal, 1e-3)
    assert np.abs(sim.state - x).max() < 1e-9


def test_energy_is_conserved_without_damping_friction_or_motor() -> None:
    """10 s of free swinging; an open motor circuit (Rm = 1e12 ohm) applies no torque and no back-EMF braking."""
    cfg = _device(Dr=0.0, Dp=0.0, Rm=1e12, coulomb_r=0.0, static_r=0.0, coulomb_p=0.0, static_p=0.0, theta_stop=10.0)
    start = np.array([[0.0, 2.5, 0.0, -2.0], [0.3, 1.0, 0.0, 1.0]])
    sim = _sim(cfg, start)
    p = FurutaParams(**dataclasses.asdict(cfg.physics))
    e0 = energy(start, p)
    worst = 0.0
    for _ in range(1000):  # 10 s: the arm swings freely (end-stop moved out of reach)
        sim.step(np.zeros(2))
        worst = max(worst, float(np.abs(energy(sim.state, p) - e0).max()))
        assert np.abs(sim.state[:, 0]).max() < p.theta_stop
    assert worst < 1e-8 * p.mp * p.g * p.Lp / 2


@pytest.mark.parametrize(("ideal", "tolerance"), [(True, 1e-8), (False, 3e-4)])
def test_trajectory_matches_solve_ivp(ideal: bool, tolerance: float) -> None:
    """Piecewise-constant voltage (one value per control step, as the device applies it), 2 s of swinging.

    Frictionless, RK4 at 1 kHz is 4th-order accurate (1e-9 rad). With friction the arm
    reverses often, and near rest the regularized friction is steep (slope S / v_smooth):
    there RK4 at 1 kHz is accurate to 2e-4 rad (0.012 deg), converging at ~1.5th order.
    """
    cfg = _device()
    p = FurutaParams(**dataclasses.asdict(cfg.physics))
    if ideal:
        cfg = _device(coulomb_r=0.0, static_r=0.0, coulomb_p=0.0, static_p=0.0, v_deadzone=0.0)
        p = p.ideal()
    start = np.array([0.0, 3.0, 0.0, 0.0])  # near hanging: swinging, the arm reverses (friction near rest)
    volts = np.where(np.arange(200) % 40 < 20, 2.5, -2.5) * np.linspace(1.0, 0.02, 200)  # down into the deadzone
    sim = _sim(cfg, start[None])
    x = start.copy()
    for v in volts:
        sim.step(np.array([v]))
        sol = solve_ivp(lambda t, y, v=v: derivative(y, np.array(v), p), (0, 0.01), x, method="DOP853",
                        rtol=1e-11, atol=1e-12)  # fmt: skip
        x = sol.y[:, -1]
        assert np.abs(sim.state[0, :2] - x[:2]).max() < tolerance


def test_end_stop_holds_the_arm_at_the_cable_limit() -> None:
    cfg = _device()
    sim = _sim(cfg, np.array([[2.5, np.pi, 0.0, 0.0]]))
    peak = 0.0
    for _ in range(300):  # 3 s at full voltage into the stop
        sim.step(np.array([5.0]))
        peak = max(peak, float(sim.state[0, 0]))
    stop = cfg.physics.theta_stop
    assert stop < peak < stop + 0.1  # it pressed into the stop, a little, and no further
    assert abs(sim.state[0, 2]) < 0.05  # and rests there


def test_deadzone_and_static_friction_keep_the_arm_still() -> None:
    cfg = _device()
    sim = _sim(cfg, np.array([[0.0, np.pi, 0.0, 0.0]]))
    for _ in range(100):
        sim.step(np.array([0.04]))  # inside the 0.05 V deadzone
    assert abs(sim.state[0, 0]) < 1e-12
    for _ in range(100):
        sim.step(np.array([0.1]))  # 0.05 V past the deadzone: 0.25 mN*m, below the 0.6 mN*m breakaway
    assert abs(sim.state[0, 2]) < cfg.physics.v_smooth  # creeps at most
    for _ in range(100):
        sim.step(np.array([1.0]))
    assert sim.state[0, 2] > 1.0  # well above breakaway: it turns


def test_linearization_matches_quanser_published_model() -> None:
    """Quanser's qube2_rotpen_param.m state-space model with the arm inertia about the motor axis.

    Published: Jt = Jr Jp - (mp l r)^2, A and B as below, then the motor's back-EMF folded in.
    Its Jr is the arm's inertia about the motor axis; our equations carry the pendulum's
    mass at the arm tip separately, so the published Jr is ours plus mp Lr^2. Quanser
    measures alpha the other way round: T = diag(1, -1, 1, -1) maps its state to ours.
    """
    p = P
    mr, r, mp, lp, g = p.mr, p.Lr, p.mp, p.Lp, p.g
    half = lp / 2
    jr = mr * r**2 / 3 + mp * r**2
    jp = mp * lp**2 / 3
    jt = jr * jp - (mp * half * r) ** 2
    a_pub = np.array([
        [0, 0, 1, 0], [0, 0, 0, 1],
        [0, mp**2 * half**2 * r * g / jt, -p.Dr * jp / jt, -mp * half * r * p.Dp / jt],
        [0, mp * g * half * jr / jt, -mp * half * r * p.Dr / jt, -jr * p.Dp / jt],
    ])  # fmt: skip
    b_pub = np.array([0, 0, jp / jt, mp * half * r / jt])
    a_pub[2, 2] -= p.kt * p.km / p.Rm * b_pub[2]
    a_pub[3, 2] -= p.kt * p.km / p.Rm * b_pub[3]
    b_pub = p.kt * b_pub / p.Rm
    t = np.diag([1.0, -1.0, 1.0, -1.0])
    a, b = linearize(p)
    assert np.allclose(a, t @ a_pub @ t, rtol=1e-8, atol=1e-8)
    assert np.allclose(b[:, 0], t @ b_pub, rtol=1e-8, atol=1e-8)
    assert np.sort(np.linalg.eigvals(a).real)[-1] == pytest.approx(12.457, abs=1e-3)  # the unstable pole, 1/s


def test_motor_inductance_matters_less_than_a_millisecond_of_delay() -> None:
    """Qube-Servo 2 motor: L = 1.16 mH, so L/R = 0.14 ms. Adding the current as a state changes 1 s of
    bang-bang swinging by less than a fifth of what one more substep (1 ms) of actuator delay does — and the
    sim randomizes that delay over 0-8 ms — so the electrical dynamics are left out (docs/simulator.md)."""
    p = P.ideal()
    inductance = 1.16e-3

    def with_current(t: float, y: np.ndarray, v: float) -> np.ndarray:
        x, i = y[:4], y[4]
        torque_volts = i * p.Rm + p.km * x[2]  # the voltage whose steady-state current is i: torque kt*i
        return np.append(derivative(x, np.array(torque_volts), p), (v - p.Rm * i - p.km * x[2]) / inductance)

    def rigid(x: np.ndarray, v: float, span: tuple[float, float]) -> np.ndarray:
        sol = solve_ivp(lambda t, y: derivative(y, np.array(v), p), span, x, method="DOP853", rtol=1e-10, atol=1e-12)
        return sol.y[:, -1]

    x4 = x_late = np.array([0.0, np.pi - 0.1, 0.0, 0.0])
    y5 = np.append(x4, 0.0)
    inductance_effect = delay_effect = 0.0
    previous = 0.0
    for k in range(100):
        v = 4.0 if (k // 15) % 2 == 0 else -4.0
        x4 = rigid(x4, v, (0, 0.01))
        x_late = rigid(rigid(x_late, previous, (0, 0.001)), v, (0.001, 0.01))  # the same command 1 ms later
        y5 = solve_ivp(with_current, (0, 0.01), y5, args=(v,), method="Radau", rtol=1e-10, atol=1e-12).y[:, -1]
        inductance_effect = max(inductance_effect, abs(x4[1] - y5[1]))
        delay_effect = max(delay_effect, abs(x4[1] - x_late[1]))
        previous = v
    assert inductance_effect < delay_effect / 5


def test_serial_and_parallel_kernels_and_batch_size_do_not_change_an_env() -> None:
    cfg = DeviceConfig()
    one = FurutaSim(cfg, 1, seed=5)
    many = FurutaSim(cfg, 40, seed=0)  # env 5 of seed 0 is the env of seed 5; 40 >= PARALLEL_MIN_ENVS
    one.reset()
    many.reset()
    for k in range(30):
        v = 4.0 * np.sin(k / 4.0)
        one.step(np.array([v]))
        many.step(np.full(40, v))
        a, b = one.received(), many.received()
        assert all(np.array_equal(a[key][0], b[key][5]) for key in a)
    assert np.array_equal(one.state[0], many.state[5])
    one.reset()
    many.reset([5])
    assert np.array_equal(one.state[0], many.state[5]) and np.array_equal(one.params.mr, many.params.mr[5:6])


def test_a_widened_randomization_reaches_later_resets_and_leaves_other_groups_alone() -> None:
    cfg = DeviceConfig()
    sim = FurutaSim(cfg, 512, seed=3, imu=False, camera=False)
    sim.reset()
    narrow = sim.params.Dp / cfg.physics.Dp
    assert narrow.min() >= 0.5 and narrow.max() <= 1.5
    sim.set_randomization(cfg.randomization.widened(["damping"], 7.0))
    sim.reset()
    wide, mass = sim.params.Dp / cfg.physics.Dp, sim.params.mp / cfg.physics.mp
    assert wide.min() >= 1 / 8 and wide.max() <= 8 and (wide < 0.5).mean() > 0.2 and (wide > 1.5).mean() > 0.2
    assert mass.min() >= 0.9 and mass.max() <= 1.1  # not widened
    with pytest.raises(ValueError, match="delay ranges"):
        sim.set_randomization(dataclasses.replace(cfg.randomization, action_delay_substeps=(0, 20)))
