"""The balancer's twin (sim/mjcf_twin.py behind sim/twin.py) in-process over the loopback transport: it
describes the balancer, streams exactly what the batched MuJoCo simulator observes, drives both motors, and
judges a run by the balancer's own task (upright throughout, back home)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.messages import ImageFrame, SensorBatch
from sensorimotor.hardware.windows import SensorWindows
from sensorimotor.sim.balancer import BalancerConfig, balancer_mjcf, lqr_gain, sagittal_state
from sensorimotor.sim.balancer_task import BalancerTaskConfig
from sensorimotor.sim.config import load_device
from sensorimotor.sim.mujoco_device import MujocoDeviceSim
from sensorimotor.sim.twin import LoopbackTransport, Twin
from sensorimotor.sim.verdict import twin_verdict

mujoco = pytest.importorskip("mujoco")

CFG, TASK = BalancerConfig(), BalancerTaskConfig()


def _connect(twin: Twin) -> tuple[DeviceClient, SensorWindows]:
    client = DeviceClient(LoopbackTransport(twin))
    spec = client.connect(1.0)
    assert spec == CFG.spec()  # two wheel encoders, two motors, no camera: as the config says
    return client, SensorWindows.for_device(spec)


def _absorb(client: DeviceClient, windows: SensorWindows) -> None:
    for rx in client.poll():
        assert not isinstance(rx.message, ImageFrame)  # the balancer has no camera
        if isinstance(rx.message, SensorBatch):
            windows.add_sensor(rx.message)


def _damping(inputs: dict[str, np.ndarray]) -> list[float]:
    """A deterministic stand-in controller on the host's windows: each wheel against the pitch rate."""
    v = float(np.float32(np.clip(3.0 * inputs["imu"][0, 1, -5:].mean(), -6.0, 6.0)))  # a COMMAND carries float32
    return [v, v]


def test_lockstep_balancer_twin_is_the_simulator_bit_for_bit() -> None:
    twin = Twin(CFG, TASK, seed=3, lockstep=True)
    client, windows = _connect(twin)
    sim = MujocoDeviceSim(CFG.mjcf_device(), 1, seed=3)
    client.start()
    sim.reset()
    for _ in range(60):
        _absorb(client, windows)
        assert windows.ready
        host, truth = windows.inputs(), sim.observation()
        for key in ("imu", "encoder"):
            assert np.array_equal(host[key], truth[key]), key
        volts = _damping(host)
        client.send_command(volts)  # the twin advances one control period now
        sim.step(np.array([volts]))
        assert np.array_equal(twin.sim.state, sim.state)
    assert twin.truth.commands_applied == 60


def _run(twin: Twin, controller: object, steps: int) -> dict:
    client, windows = _connect(twin)
    client.start()
    for _ in range(steps):
        _absorb(client, windows)
        client.send_command(controller(twin))  # type: ignore[operator]
    truth = dict(twin.truth.__dict__)
    truth["verdict"], truth["details"] = twin_verdict(truth), twin.physics.details()
    return truth


def test_the_twins_verdict_is_the_balancers_task() -> None:
    """Unpowered it falls (verdict: left upright); under an LQR on its true state it balances and comes home
    (success), and the details name the task's measures."""
    fell = _run(Twin(CFG, TASK, seed=0, lockstep=True), lambda twin: [0.0, 0.0], 200)
    assert not fell["success"] and fell["verdict"].startswith("balance: FAILED (left upright")
    assert "|pitch| (deg)" in fell["details"]

    model = mujoco.MjModel.from_xml_string(balancer_mjcf(CFG.physics, 1.0 / CFG.imu.rate_hz, CFG.imu.height_m))
    k = lqr_gain(model, CFG.substeps_per_control)

    def lqr(twin: Twin) -> list[float]:
        v = float(-(sagittal_state(twin.sim.qpos, twin.sim.qvel) @ k.T)[0, 0])
        return [v, v]

    held = _run(Twin(CFG, TASK, seed=0, lockstep=True), lqr, 500)
    assert held["success"] and held["verdict"] == "balance: success", held
    assert held["streaming_s"] == pytest.approx(5.0) and held["upright_s"] == pytest.approx(5.0)
    assert set(held["physics"]) >= {"mb", "Rm", "v_deadzone"} and 0 < held["max_abs_volts"] <= CFG.v_max


def test_the_config_file_picks_the_balancer_and_its_task() -> None:
    device, task = load_device(Path(__file__).resolve().parents[2] / "configs" / "balancer.yaml")
    assert isinstance(device, BalancerConfig) and isinstance(task, BalancerTaskConfig)
    assert device.spec() == CFG.spec() and task == TASK
