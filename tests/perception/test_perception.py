"""Perception: data generation is seeded, the models run on raw units, training reduces the loss."""

from __future__ import annotations

import numpy as np
import torch

from sensorimotor.perception.data import generate
from sensorimotor.perception.models import OBS_NAMES, ObservationModel, Perception, slope_weights
from sensorimotor.perception.train import PerceptionConfig, evaluate, finetune, pretrain
from sensorimotor.sim.config import DeviceConfig


def test_generation_is_seeded_bit_for_bit() -> None:
    a, b = generate(DeviceConfig(), 300, seed=5, envs=64), generate(DeviceConfig(), 300, seed=5, envs=64)
    c = generate(DeviceConfig(), 300, seed=6, envs=64)
    for name, tensor in a.tensors().items():
        assert torch.equal(tensor, getattr(b, name)), name
    assert not torch.equal(a.imu, c.imu)
    assert len(a) == 300 and a.seq_len == 12 and a.n_sequences == 25


def test_encoder_rate_filter_recovers_a_constant_slope() -> None:
    counts = torch.arange(64, dtype=torch.float32)[None] * 3.0  # 3 counts per sample
    obs = ObservationModel(Perception(), cpr=2048, imu_rate_hz=1000)
    rate = obs(torch.zeros(1, 6, 64), counts, torch.zeros(1, 1, 64, 64, dtype=torch.uint8))[
        0, OBS_NAMES.index("arm_rate")
    ]
    expected = 3.0 * 1000 * 2 * np.pi / 2048 / 5.0  # rad/s, scaled by RATE_SCALE
    assert abs(float(rate) - expected) < 1e-4
    assert abs(float(slope_weights(24).sum())) < 1e-6


def test_pretraining_and_fine_tuning_reduce_their_losses() -> None:
    torch.manual_seed(0)
    data = generate(DeviceConfig(), 1024, seed=0, envs=128)
    cfg = PerceptionConfig(pretrain_steps=60, finetune_steps=120, batch_size=64)
    model = Perception()
    pre = pretrain(model, data, cfg, seed=0)
    ft = finetune(model, data, cfg, seed=0)
    assert np.mean(pre[-10:]) < 0.5 * np.mean(pre[:10])
    assert np.mean(ft[-10:]) < 0.5 * np.mean(ft[:10])
    metrics = evaluate(model, data)
    assert metrics["camera_class_accuracy"] > 0.5 and np.isfinite(metrics["imu_angle_rmse_deg"])
