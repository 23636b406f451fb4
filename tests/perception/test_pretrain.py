"""Pretraining's corpus and objectives: the corpus is wider than training, every objective learns, blank frames teach nothing."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sensorimotor.control.config import load_experiment
from sensorimotor.control.motions import swingup_scenarios
from sensorimotor.perception.config import IMU_OBJECTIVES, PretrainConfig
from sensorimotor.perception.data import generate
from sensorimotor.perception.models import RATE_SCALE, Perception
from sensorimotor.perception.pretrain import (
    Objective,
    corpus_device,
    grade_heads,
    imu_noise_spread,
    pretrain_heads,
    pseudo_labels,
    widen,
)


def test_widen_about_the_centre_and_inside_the_bounds() -> None:
    assert widen((0.4, 0.6), 2.0) == pytest.approx((0.3, 0.7))
    assert widen((0.05, 0.35), 3.0) == pytest.approx((0.0, 0.65))  # clamped at 0
    assert widen((0.6, 1.0), 3.0) == pytest.approx((0.2, 1.0))  # clamped at 1
    assert widen((0.5, 6.0), 3.0, upper=100.0) == pytest.approx((0.0, 11.5))


def test_corpus_covers_conditions_outside_the_labelled_ranges() -> None:
    device = load_experiment().device
    assert corpus_device(device, 1.0, 1.0) == device
    wide = corpus_device(device, 2.0, 3.0)
    for name in ("background", "brightness", "noise_sigma", "exposure_ms"):
        lo, hi = getattr(device.camera, name)
        wlo, whi = getattr(wide.camera, name)
        assert wlo <= lo and whi >= hi and (whi - wlo) > (hi - lo), name
    # bench_perception's held-out camera (background 0.36-0.5, noise 0.07-0.1) lies outside training, inside the corpus
    assert wide.camera.background[1] >= 0.5 > device.camera.background[1]
    assert wide.camera.noise_sigma[1] >= 0.1 > device.camera.noise_sigma[1]
    assert wide.randomization.imu_noise == pytest.approx(imu_noise_spread(3.0)) == pytest.approx(2.0 / 3.0)
    assert wide.randomization.mass == pytest.approx(2.0 * device.randomization.mass)


@pytest.fixture(scope="module")
def corpus():  # type: ignore[no-untyped-def]
    device = load_experiment().device
    return device, generate(device, 640, seed=3, seq_len=32, every=1, scenarios=swingup_scenarios(), clean=True)


@pytest.mark.parametrize("objective", IMU_OBJECTIVES)
def test_each_objective_lowers_its_loss(corpus, objective: str) -> None:  # type: ignore[no-untyped-def]
    device, data = corpus
    torch.manual_seed(0)
    model = Perception(device.imu.window, 32, device.image_shape)
    obj = Objective(model, data, PretrainConfig(imu_objective=objective), device, seed=0)
    fixed = obj.sample(256)
    opt = torch.optim.Adam(obj.parameters(), lr=3e-3)
    with torch.no_grad():
        before = obj(fixed)[1]  # the IMU objective's own loss (the image loss would fall anyway)
    for _ in range(60):
        loss = obj(obj.sample(64))[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = obj(fixed)[1]
    assert after < 0.7 * before, (objective, before, after)


def test_crossmodal_skips_blank_frames(corpus) -> None:  # type: ignore[no-untyped-def]
    """A blackout (a flat frame) carries no pose: its camera target must not count."""
    device, data = corpus
    model = Perception(device.imu.window, 32, device.image_shape)
    flat = dataclasses.replace(data, image=torch.full_like(data.image, 7))
    obj = Objective(model, flat, PretrainConfig(imu_objective="crossmodal"), device, seed=0)
    b = obj.sample(32)
    assert obj.camera_loss(model.imu_encoder(flat.imu[b]), b).item() == 0.0
    real = Objective(model, data, PretrainConfig(imu_objective="crossmodal"), device, seed=0)
    assert real.camera_loss(model.imu_encoder(data.imu[b]), b).item() > 0.1


def test_pseudo_labels_read_the_angle_and_rate_without_labels(corpus) -> None:  # type: ignore[no-untyped-def]
    """The kinematic angle and the gyro's rate track the simulator's truth (graded here, never used as labels)."""
    device, data = corpus
    target = pseudo_labels(data.imu, device)
    err = (
        torch.remainder(torch.atan2(target[:, 0], target[:, 1]) - data.state[:, 1] + torch.pi, 2 * torch.pi) - torch.pi
    )
    assert float(torch.rad2deg(err).pow(2).mean().sqrt()) < 4.0
    assert float((target[:, 2] * RATE_SCALE - data.state[:, 3]).pow(2).mean().sqrt()) < 0.05  # rad/s


def test_pretrained_heads_read_the_angle_and_leave_the_encoders_alone(corpus) -> None:  # type: ignore[no-untyped-def]
    device, data = corpus
    torch.manual_seed(0)
    model = Perception(device.imu.window, 32, device.image_shape)
    encoders = {k: v.clone() for k, v in model.state_dict().items() if "encoder" in k}
    before = grade_heads(model, data)
    curve = pretrain_heads(model, data, PretrainConfig(head_steps=300, batch_size=64), device, seed=0, progress=False)
    after = grade_heads(model, data)
    assert len(curve) == 300 and sum(curve[-30:]) < 0.3 * sum(curve[:30])
    for key in ("imu_angle_rmse_deg", "fused_angle_rmse_deg"):  # random heads are off by ~90 deg
        assert after[key] < 0.5 * before[key], (key, before, after)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in encoders.items())
