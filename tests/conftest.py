"""Shared fixtures: a small exported model (untrained, exported by the real exporter) and the --port option."""

from __future__ import annotations

from pathlib import Path

import pytest

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


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """policy.onnx of a randomly initialised chain for the default device (seeded)."""
    import torch
    from torch import nn

    from sensorimotor.control.export import PolicyChain, export_onnx
    from sensorimotor.perception.models import ObservationModel, Perception
    from sensorimotor.sim.config import DeviceConfig

    torch.manual_seed(0)
    dev = DeviceConfig()
    obs = ObservationModel(Perception(dev.imu.window), dev.encoder_cpr, dev.imu.rate_hz)
    chain = PolicyChain(obs, nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1)), dev.v_max).eval()
    path = tmp_path_factory.mktemp("model") / "policy.onnx"
    export_onnx(chain, dev, path)
    return path
