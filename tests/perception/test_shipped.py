"""The shipped pretrained encoders: present, small, fit the shipped config, and their model card is current."""

from __future__ import annotations

from pathlib import Path

from sensorimotor.control.config import load_experiment
from sensorimotor.perception.model_card import render
from sensorimotor.perception.models import Perception
from sensorimotor.perception.weights import SHIPPED, load_encoders

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_weights_fit_the_shipped_config_and_stay_small() -> None:
    cfg = load_experiment()
    assert SHIPPED.stat().st_size <= 10e6, "the issue's budget for shipped weights is 10 MB in all"
    meta = load_encoders(Perception(cfg.device.imu.window, cfg.perception.dim, cfg.device.image_shape), SHIPPED)
    assert meta["command"].startswith("sim pretrain")
    q = meta["quality"]
    for key in ("imu_angle_rmse_deg", "imu_rate_rmse_rad_s", "image_angle_rmse_deg"):  # pretraining helped
        assert q["probe_pretrained"][key] < q["probe_random_init"][key], key


def test_model_card_is_generated_from_the_shipped_file() -> None:
    assert (ROOT / "docs" / "model-card.md").read_text() == render(), "docs/model-card.md is stale: run `make docs`"
