"""The shipped pretrained encoders and heads: present, small, fit the shipped config, read the angle; the card is current."""

from __future__ import annotations

from pathlib import Path

from sensorimotor.control.config import load_experiment
from sensorimotor.control.motions import swingup_scenarios
from sensorimotor.perception.data import generate
from sensorimotor.perception.model_card import render
from sensorimotor.perception.models import Perception
from sensorimotor.perception.pretrain import grade_heads
from sensorimotor.perception.weights import HEADS, SHIPPED, load_encoders

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


def test_shipped_heads_read_the_angle_before_any_label() -> None:
    """The shipped IMU and fused heads, as loaded, estimate the angle of fresh labelled data (graded only)."""
    cfg = load_experiment()
    model = Perception(cfg.device.imu.window, cfg.perception.dim, cfg.device.image_shape)
    meta = load_encoders(model, SHIPPED)
    assert meta["heads"] == list(HEADS)
    data = generate(cfg.device, 2000, seed=4242, seq_len=20, every=5, scenarios=swingup_scenarios(), clean=False)
    graded = grade_heads(model, data)
    assert graded["imu_angle_rmse_deg"] < 5.0 and graded["fused_angle_rmse_deg"] < 5.0, graded
