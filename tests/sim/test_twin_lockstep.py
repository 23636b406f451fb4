"""The lockstep twin in-process over the loopback transport: the host sees exactly what the simulator observes."""

from __future__ import annotations

import numpy as np
import pytest

from sensorimotor.hardware.device import DeviceClient
from sensorimotor.hardware.messages import ImageFrame, SensorBatch
from sensorimotor.hardware.windows import SensorWindows
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim
from sensorimotor.sim.task import TaskConfig
from sensorimotor.sim.twin import LoopbackTransport, Twin


def _policy(inputs: dict[str, np.ndarray]) -> float:
    """A deterministic stand-in controller: damps the pendulum's swing rate, centres the arm."""
    volts = -2.0 * float(inputs["imu"][0, 0, -10:].mean()) - 0.002 * float(inputs["encoder"][0, 0, -1])
    return float(np.float32(np.clip(volts, -5.0, 5.0)))  # a COMMAND carries float32


def _host(twin: Twin) -> tuple[DeviceClient, SensorWindows, list]:
    client = DeviceClient(LoopbackTransport(twin))
    spec = client.connect(1.0)
    windows = SensorWindows.for_device(spec)
    return client, windows, []


def _absorb(client: DeviceClient, windows: SensorWindows, sensor_frames: list) -> None:
    for rx in client.poll():
        if isinstance(rx.message, SensorBatch):
            windows.add_sensor(rx.message)
            sensor_frames.append(rx.message)
        elif isinstance(rx.message, ImageFrame):
            windows.add_image(rx.message)


def test_lockstep_twin_is_the_simulator_bit_for_bit() -> None:
    """Same seed: the host's windows after every command equal the simulator's observation, sample by sample."""
    cfg, seed = DeviceConfig(), 4
    twin = Twin(cfg, TaskConfig(), seed=seed, lockstep=True)
    client, windows, frames = _host(twin)
    sim = FurutaSim(cfg, 1, seed=seed)
    client.start()
    sim.reset()
    for _ in range(150):  # 1.5 s of device time
        _absorb(client, windows, frames)
        assert windows.ready
        host, truth = windows.inputs(), sim.observation()
        for key in ("imu", "encoder", "image"):
            assert np.array_equal(host[key], truth[key]), key
        volts = _policy(host)
        client.send_command([volts])  # the twin advances one control period now
        sim.step(np.array([volts]))
        assert np.array_equal(twin.sim.state, sim.state)


def test_stream_continues_the_warm_up_window_without_repeating_samples() -> None:
    """Every SENSOR frame after START carries exactly the next samples: the encoder ticks and the IMU samples
    the host collects are the device's, in order, none twice and none missing."""
    cfg = DeviceConfig()
    twin = Twin(cfg, TaskConfig(), seed=1, lockstep=True)
    client, windows, frames = _host(twin)
    client.start()
    reference = FurutaSim(cfg, 1, seed=1)
    reference.reset()
    longest = cfg.imu.window + 40 * cfg.substeps_per_control
    history = reference.received(cfg.imu.window)["imu"][0]  # what the device's sensors produced, by tick
    for _ in range(40):
        _absorb(client, windows, frames)
        client.send_command([1.0])
        reference.step(np.array([1.0]))
        history = np.concatenate([history, reference.latest_samples(cfg.substeps_per_control)[0][0].T], axis=1)
    _absorb(client, windows, frames)
    sent = np.concatenate([f.imu.T for f in frames], axis=1)
    assert sent.shape[1] == history.shape[1] == longest
    assert np.array_equal(sent, history)


def test_loopback_needs_lockstep() -> None:
    with pytest.raises(ValueError, match="lockstep"):
        LoopbackTransport(Twin(DeviceConfig(), TaskConfig()))
