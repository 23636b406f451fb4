"""The batched MuJoCo device (sim/mujoco_device.py) with the balancer: seeded per env, its sensors are the
MJCF's own readings quantized and delayed as configured, commands reach the motors after the actuator delay,
and a controller on the model's linearization balances every randomized robot through it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sensorimotor.sim.balancer import (
    BalancerConfig,
    BalancerDevice,
    balancer_mjcf,
    lqr_gain,
    sagittal_state,
)
from sensorimotor.sim.config import RandomizationConfig
from sensorimotor.sim.mujoco_backend import MujocoBatch
from sensorimotor.sim.mujoco_device import MujocoDeviceSim

mujoco = pytest.importorskip("mujoco")

CFG = BalancerConfig()


def _ideal(action: tuple[int, int] = (0, 0), imu: tuple[int, int] = (0, 0)) -> BalancerConfig:
    """Nominal physics, an ideal IMU, fixed delays."""
    rand = dataclasses.replace(CFG.randomization, action_delay_substeps=action, imu_delay_substeps=imu)
    return dataclasses.replace(CFG, imu=dataclasses.replace(CFG.imu, noise=False), randomization=rand)


def _commands(n: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-3.0, 3.0, (steps, n, 2))


def test_env_i_of_a_batch_is_the_env_seeded_seed_plus_i() -> None:
    dev = BalancerDevice(CFG)
    batch, alone = MujocoDeviceSim(dev, n=3, seed=10), MujocoDeviceSim(dev, n=1, seed=12)
    batch.reset()
    alone.reset()
    u = _commands(3, 20)
    for k in range(20):
        batch.step(u[k])
        alone.step(u[k, 2:])
    np.testing.assert_array_equal(batch.state[2], alone.state[0])
    np.testing.assert_array_equal(batch.observation()["imu"][2], alone.observation()["imu"][0])
    assert not np.array_equal(batch.params[0], batch.params[1])  # each env draws its own robot
    again = MujocoDeviceSim(dev, n=3, seed=10)
    again.reset()
    np.testing.assert_array_equal(again.params, batch.params)


def test_ideal_sensors_are_the_models_readings_and_encoders_count_the_wheel_angle() -> None:
    cfg = _ideal()
    sim = MujocoDeviceSim(BalancerDevice(cfg), randomize=False)
    sim.reset()
    start = sim.physics.copy()
    u = _commands(1, 5)
    for k in range(5):
        sim.step(u[k])
    ref = MujocoBatch(balancer_mjcf(cfg.physics, 1.0 / cfg.imu.rate_hz, cfg.imu.height_m))
    dz = cfg.physics.v_deadzone
    volts = np.repeat(u[:, 0], cfg.substeps_per_control, axis=0)
    ctrl = np.copysign(np.maximum(np.abs(volts) - dz, 0.0), volts)[None]
    traj = ref.run(start, ctrl)
    obs = sim.observation()
    n = 5 * cfg.substeps_per_control
    np.testing.assert_array_equal(obs["imu"][0, :, -n:], traj.sensors[0, :, :6].T.astype(np.float32))
    counts = np.floor(traj.sensors[0, :, 6:8] * cfg.encoder_cpr / (2 * np.pi)).T
    np.testing.assert_array_equal(obs["encoder"][0, :, -n:], counts)
    assert np.abs(counts).max() > 0  # the wheels turned


def test_a_command_reaches_the_motors_after_the_actuator_delay() -> None:
    now, late = (MujocoDeviceSim(BalancerDevice(_ideal(action=(d, d))), randomize=False) for d in (0, 3))
    for sim in (now, late):
        sim.reset()
    pulse = np.array([[4.0, 4.0]])
    seen_now, seen_late = [], []
    for sim, seen in ((now, seen_now), (late, seen_late)):
        sim.step(pulse)
        for _ in range(9):
            sim.substep()
            seen.append(sim.volts[0, 0])
    # held from the command's tick on: the delayed one starts 3 substeps later, so one control step
    # after the command, its wheel has turned less
    assert late.observation()["encoder"][0, 0, -1] < now.observation()["encoder"][0, 0, -1]
    assert seen_now[0] == seen_late[0] == 4.0


def test_the_host_receives_samples_after_the_imu_delay() -> None:
    now, late = (MujocoDeviceSim(BalancerDevice(_ideal(imu=(d, d))), randomize=False) for d in (0, 2))
    u = _commands(1, 4)
    for sim in (now, late):
        sim.reset()
        for k in range(4):
            sim.step(u[k])
    np.testing.assert_array_equal(late.observation()["imu"][..., -1], now.observation()["imu"][..., -3])
    np.testing.assert_array_equal(late.received()["encoder"][..., 2:], now.received()["encoder"][..., :-2])


def test_lqr_on_the_linearization_balances_every_randomized_robot_from_its_initial_tilt() -> None:
    """16 robots drawn from the default randomization (masses, lengths, motors, friction, delays, a noisy
    IMU), an LQR of the nominal model at the control rate on the true state: all upright and near home after
    5 s."""
    cfg = CFG
    model = mujoco.MjModel.from_xml_string(balancer_mjcf(cfg.physics, 1.0 / cfg.imu.rate_hz, cfg.imu.height_m))
    k = lqr_gain(model, cfg.substeps_per_control)
    sim = MujocoDeviceSim(BalancerDevice(cfg), n=16, seed=0)
    sim.reset()
    tilt = np.abs(sim.state[:, 2]).max()
    assert tilt > np.radians(2)
    for _ in range(500):
        v = -(sagittal_state(sim.qpos, sim.qvel) @ k.T)
        sim.step(np.repeat(v, 2, axis=1))
    assert np.abs(sim.state[:, 2]).max() < np.radians(1)
    assert np.abs(sim.state[:, 0]).max() < 0.1  # near home: the drivers' deadzone leaves a few cm


def test_a_device_naming_a_sensor_its_mjcf_lacks_is_refused() -> None:
    class Misnamed(BalancerDevice):
        encoder_sensors = ("encoder_left", "encoder_middle")

    with pytest.raises(ValueError, match="the MJCF has no sensor 'encoder_middle'"):
        MujocoDeviceSim(Misnamed(CFG))


def test_randomization_groups_spread_the_balancers_own_parameters() -> None:
    wide = dataclasses.replace(CFG, randomization=RandomizationConfig().widened(["damping"], 9.0))
    sim = MujocoDeviceSim(BalancerDevice(wide), n=64, seed=1)
    sim.reset()
    damping = sim.param("Dw") / wide.physics.Dw
    assert damping.min() < 0.2 and damping.max() > 5.0  # log-uniform over 1/10 .. 10
    assert np.all(np.abs(sim.param("mb") / wide.physics.mb - 1.0) <= 0.1 + 1e-12)


def test_the_balancers_spec_declares_two_unbounded_wheel_encoders_two_motors_and_no_camera() -> None:
    from sensorimotor.hardware.messages import Describe, SensorLayout

    spec = CFG.spec()
    assert [e.name for e in spec.encoders] == ["wheel_l", "wheel_r"]
    assert not any(e.bounded for e in spec.encoders) and spec.camera is None
    assert [a.name for a in spec.actuators] == ["motor_l", "motor_r"]
    assert Describe.unpack(Describe(spec).pack()).spec == spec
    layout = SensorLayout.of(spec)
    imu, enc = np.ones((spec.samples_per_frame, 6), np.float32), np.full((spec.samples_per_frame, 2), -5, np.int32)
    got_imu, got_enc = layout.unpack(layout.pack(imu, enc))
    np.testing.assert_array_equal(got_imu, imu)
    np.testing.assert_array_equal(got_enc, enc)
