"""Shared fixtures: a small exported model (untrained, exported by the real exporter) and the --port option."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sensorimotor.sim.config import DeviceConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "furuta.yaml"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--port", default=None,
        help="run the hil tests against this real serial port instead of a twin on a pty",
    )  # fmt: skip


@pytest.fixture(scope="session")
def config_path() -> Path:
    return CONFIG


def export_untrained(device: DeviceConfig, path: Path, seed: int = 0) -> Path:
    """policy.onnx of a randomly initialised chain for ``device`` (seeded), through the real exporter."""
    import torch
    from torch import nn

    from sensorimotor.control.export import PolicyChain, export_onnx
    from sensorimotor.perception.config import OBS_NAMES
    from sensorimotor.perception.models import ObservationModel, Perception

    torch.manual_seed(seed)
    perception = Perception(device.imu.window, image_shape=device.image_shape)
    obs = ObservationModel(perception, device.encoder_cpr, device.imu.rate_hz)
    chain = PolicyChain(
        obs, nn.Sequential(nn.Linear(len(OBS_NAMES), 16), nn.Tanh(), nn.Linear(16, 1)), device.v_max
    ).eval()
    export_onnx(chain, device, path)
    return path


def export_untrained_balancer(path: Path, seed: int = 0) -> Path:
    """policy.onnx of a randomly initialised chain for the balancer (seeded), through the device pipeline's exporter."""
    import torch
    from torch import nn

    from sensorimotor.control.device_train import DeviceChain, DevicePlan, export_chain
    from sensorimotor.perception.device_observation import DeviceObservation
    from sensorimotor.perception.imu_targets import ImuEstimator
    from sensorimotor.sim.balancer import BalancerConfig
    from sensorimotor.sim.balancer_task import BalancerTaskConfig

    torch.manual_seed(seed)
    plan = DevicePlan.of(BalancerConfig(), BalancerTaskConfig())
    estimator = ImuEstimator(plan.targets, window=plan.device.window)
    obs = DeviceObservation(
        estimator, plan.channels, plan.encoders, plan.cpr, plan.imu_rate_hz, derived=plan.config.derived_observations()
    )
    actor = nn.Sequential(nn.Linear(len(obs.names), 16), nn.Tanh(), nn.Linear(16, len(plan.config.spec().actuators)))
    export_chain(plan, DeviceChain(obs, actor, plan.v_max).eval(), path)
    return path


@pytest.fixture(scope="session")
def balancer_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """policy.onnx of a randomly initialised chain for the balancer (seeded)."""
    return export_untrained_balancer(tmp_path_factory.mktemp("balancer-model") / "policy.onnx")


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """policy.onnx of a randomly initialised chain for the default device (seeded)."""
    return export_untrained(DeviceConfig(), tmp_path_factory.mktemp("model") / "policy.onnx")


@pytest.fixture(scope="session")
def export_model():
    """The :func:`export_untrained` function, for tests that need a model for another device."""
    return export_untrained


@pytest.fixture(scope="session")
def native_firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The firmware's native build (firmware in the loop) with ASan and UBSan, built by firmware/build.py."""
    out = tmp_path_factory.mktemp("firmware") / "smp_native"
    proc = subprocess.run([sys.executable, str(ROOT / "firmware" / "build.py"), "--out", str(out), "--sanitize"],
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out
