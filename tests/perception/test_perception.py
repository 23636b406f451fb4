"""Perception: data generation is seeded, the models run on raw units, training reduces the loss."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from sensorimotor.perception.config import OBS_NAMES, PerceptionConfig
from sensorimotor.perception.data import generate
from sensorimotor.perception.errors import DatasetError
from sensorimotor.perception.models import INFERENCE_CHUNK, FrameCache, ObservationModel, Perception, slope_weights
from sensorimotor.perception.train import evaluate, finetune, phases, split
from sensorimotor.sim.config import DeviceConfig


def test_generation_is_seeded_bit_for_bit() -> None:
    a, b = generate(DeviceConfig(), 300, seed=5, envs=64), generate(DeviceConfig(), 300, seed=5, envs=64)
    c = generate(DeviceConfig(), 300, seed=6, envs=64)
    for name, tensor in a.tensors().items():
        assert torch.equal(tensor, getattr(b, name)), name
    assert not torch.equal(a.imu, c.imu)
    assert len(a) == 300 and a.seq_len == 12 and a.n_sequences == 25


def test_encoder_rate_filter_recovers_a_constant_slope() -> None:
    counts = torch.arange(64, dtype=torch.float32)[None, None] * 3.0  # one encoder, 3 counts per sample
    obs = ObservationModel(Perception(), cpr=2048, imu_rate_hz=1000)
    rate = obs(torch.zeros(1, 6, 64), counts, torch.zeros(1, 1, 64, 64, dtype=torch.uint8))[0][
        0, OBS_NAMES.index("arm_rate")
    ]
    expected = 3.0 * 1000 * 2 * np.pi / 2048 / 5.0  # rad/s, scaled by RATE_SCALE
    assert abs(float(rate.detach()) - expected) < 1e-4
    assert abs(float(slope_weights(24).sum())) < 1e-6


def test_fine_tuning_reduces_the_loss_and_keeps_the_best_validation_weights() -> None:
    torch.manual_seed(0)
    data = generate(DeviceConfig(), 1200, seed=0, envs=128)
    train, val = split(data, 0.2, seed=0, batch_size=64)
    assert len(train) + len(val) == len(data) and len(val) == 240  # whole 12-sample episodes
    cfg = PerceptionConfig(finetune_steps=150, batch_size=64, eval_every=25, patience=0, init="scratch")
    model = Perception()
    result = finetune(model, train, val, cfg, seed=0, pretrained=False, progress=False)
    assert np.mean(result.train[-10:]) < 0.5 * np.mean(result.train[:10])
    best = min(v for _, v in result.val)
    assert dict(result.val)[result.best_step] == best
    metrics = evaluate(model, data)
    assert metrics["camera_class_accuracy"] > 0.5 and np.isfinite(metrics["imu_angle_rmse_deg"])
    assert np.array(metrics["camera_confusion"]).sum() == len(data)


def test_freeze_strategies_train_only_their_layers() -> None:
    data = generate(DeviceConfig(), 256, seed=1, envs=64)
    train, val = split(data, 0.25, seed=0, batch_size=32)
    for freeze, imu_conv0_moves, imu_proj_moves in (("linear", False, False), ("partial", False, True),
                                                    ("full", True, True), ("lp-ft", True, True)):  # fmt: skip
        torch.manual_seed(0)
        model = Perception()
        before = copy.deepcopy(model.state_dict())
        cfg = PerceptionConfig(finetune_steps=5, batch_size=32, eval_every=5, patience=0, freeze=freeze, lr=1e-2)
        finetune(model, train, val, cfg, seed=0, pretrained=True, modality="imu", progress=False)
        after = model.state_dict()
        moved = {k for k in before if not torch.equal(before[k], after[k])}
        assert "imu_head.weight" in moved, freeze
        assert ("imu_encoder.conv.0.weight" in moved) == imu_conv0_moves, freeze
        assert ("imu_encoder.proj.1.weight" in moved) == imu_proj_moves, freeze
        assert not moved & {"image_encoder.conv.0.weight", "image_head.weight"}, freeze  # the other modality


def test_lp_ft_probes_pretrained_encoders_first_and_is_full_from_scratch() -> None:
    cfg = PerceptionConfig(finetune_steps=30, lr=1e-3, lp_ft_lr_ratio=0.3)
    assert phases(cfg, pretrained=True) == [("linear", 1e-3, 10), ("full", pytest.approx(3e-4), 20)]
    assert phases(cfg, pretrained=False) == [("full", 1e-3, 30)]
    assert phases(dataclasses.replace(cfg, freeze="partial"), pretrained=True) == [("partial", 1e-3, 30)]
    # From scratch, lp-ft trains exactly as full does.
    data = generate(DeviceConfig(), 256, seed=1, envs=64)
    train, val = split(data, 0.25, seed=0, batch_size=32)
    states = []
    for freeze in ("lp-ft", "full"):
        torch.manual_seed(0)
        model = Perception()
        run = PerceptionConfig(finetune_steps=6, batch_size=32, eval_every=3, patience=0, freeze=freeze)
        finetune(model, train, val, run, seed=0, pretrained=False, modality="imu", progress=False)
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_too_few_samples_for_the_split_is_a_clear_error() -> None:
    data = generate(DeviceConfig(), 48, seed=1, envs=4)
    with pytest.raises(DatasetError, match="too few"):
        split(data, 0.1, seed=0, batch_size=64)


def test_the_mirrored_view_is_the_pendulum_at_minus_alpha() -> None:
    """What mirror averaging rests on: the frame flipped left-right is the pendulum at -alpha, roll and shift mirrored."""
    from sensorimotor.sim.furuta import FurutaParams
    from sensorimotor.sim.sensors import render_clean

    rng = np.random.default_rng(0)
    x = np.zeros((16, 4))
    x[:, 1] = rng.uniform(-np.pi, np.pi, 16)
    shift, roll = rng.uniform(-2e-3, 2e-3, (16, 2)), rng.uniform(-0.05, 0.05, 16)
    mirrored_x, mirrored_shift = x.copy(), shift * [-1.0, 1.0]
    mirrored_x[:, 1] = -x[:, 1]
    frames = render_clean(x, FurutaParams(), shift, roll)
    expected = render_clean(mirrored_x, FurutaParams(), mirrored_shift, -roll)
    np.testing.assert_allclose(frames[..., ::-1], expected, atol=1e-9)


def test_mirror_averaging_is_mirror_equivariant_and_only_outside_training() -> None:
    torch.manual_seed(0)
    model = Perception()
    imu = torch.randn(8, 6, 64)
    image = torch.randint(0, 256, (8, 1, 64, 64), dtype=torch.uint8)
    flipped = image.flip(-1)
    single = model.image_head(model.image_encoder(image))
    with torch.no_grad():
        model.train()
        assert torch.equal(model(imu, image).image, single)  # training steps read single frames
        model.eval()
        est, est_flipped = model(imu, image).image, model(imu, flipped).image
        # the average reads the mirrored frame as the pendulum at -alpha: (sin, cos) -> (-sin, cos), exactly
        torch.testing.assert_close(est_flipped, est * torch.tensor([-1.0, 1.0]), rtol=0, atol=1e-6)
        torch.testing.assert_close(
            est, 0.5 * (single + model.image_head(model.image_encoder(flipped)) * torch.tensor([-1.0, 1.0]))
        )
        assert not torch.allclose(est, single, atol=1e-3)  # it changes the estimate
        model.mirror = False
        torch.testing.assert_close(model(imu, image).image, single, rtol=0, atol=0)  # off: the single frame's
        # the other heads read the frame as it came, averaged or not
        model.mirror = True
        a = model(imu, image)
        model.mirror = False
        b = model(imu, image)
        for name in ("imu", "camera_logits", "fused"):
            torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=0, atol=1e-6)


def test_single_frames_turns_the_mirror_average_off_for_the_block_only() -> None:
    torch.manual_seed(0)
    model = Perception().eval()
    imu, image = torch.randn(4, 6, 64), torch.randint(0, 256, (4, 1, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        averaged, single = model(imu, image).image, model.image_head(model.image_encoder(image))
        with model.single_frames():
            torch.testing.assert_close(model(imu, image).image, single, rtol=0, atol=0)
        torch.testing.assert_close(model(imu, image).image, averaged, rtol=0, atol=0)
        with pytest.raises(RuntimeError), model.single_frames():
            raise RuntimeError("an error inside the block")
        assert model.mirror  # restored on the way out


def test_frame_cache_encodes_only_the_frames_that_changed_and_changes_no_output() -> None:
    torch.manual_seed(0)
    model = Perception().eval()
    encoded: list[int] = []
    model.image_encoder.register_forward_hook(lambda _m, args, _out: encoded.append(args[0].shape[0]))
    imu = torch.randn(6, 6, 64)
    frames = torch.randint(0, 256, (6, 1, 64, 64), dtype=torch.uint8)
    batches = [frames]
    for k in range(4):  # a camera at half the control rate: each step, a different half of the rows has a new frame
        nxt = batches[-1].clone()
        rows = torch.arange(k % 2, 6, 2)
        nxt[rows] = torch.randint(0, 256, (len(rows), 1, 64, 64), dtype=torch.uint8)
        batches.append(nxt)
    for mirror in (True, False):
        model.mirror = mirror
        cache = FrameCache()
        with torch.no_grad():
            for batch in batches:
                expected = model(imu, batch)
                encoded.clear()
                with model.cached(cache):
                    got = model(imu, batch)
                for name, want in expected._asdict().items():  # the same up to float rounding (batch-size kernels)
                    torch.testing.assert_close(getattr(got, name), want, rtol=0, atol=1e-6, msg=name)
        # the first batch in full, then the three new frames of each step (doubled by the mirror average)
        assert encoded == [3 * (2 if mirror else 1)]
        assert (cache.frames_seen, cache.frames_encoded) == (30, 6 + 4 * 3)
    # a batch of another size has an entry of its own; gradients or training mode bypass the cache
    with torch.no_grad(), model.cached(cache):
        model(imu[:2], batches[0][:2])
        assert len(cache.entries) == 2
    model.train()
    with torch.no_grad(), model.cached(cache):
        before = cache.frames_seen
        model(imu, batches[0])
        assert cache.frames_seen == before
    assert model.frame_cache is None  # restored on the way out


def test_large_batches_run_the_encoders_in_chunks_with_the_same_outputs() -> None:
    torch.manual_seed(0)
    model = Perception().eval()
    n = 2 * INFERENCE_CHUNK + 5
    seen: list[int] = []
    model.image_encoder.conv.register_forward_hook(lambda _m, args, _out: seen.append(args[0].shape[0]))
    imu = torch.randn(n, 6, 64)
    image = torch.randint(0, 256, (n, 1, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        got = model(imu, image)
        assert max(seen) <= INFERENCE_CHUNK and sum(seen) == 2 * n  # the frames and their mirror images
        whole = model.image_encoder._encode(image)
        torch.testing.assert_close(model.image_encoder(image), whole, rtol=0, atol=1e-6)
        torch.testing.assert_close(model.imu_encoder(imu), model.imu_encoder._encode(imu), rtol=0, atol=1e-6)
    seen.clear()
    with torch.enable_grad():  # training keeps its batch whole (one graph, one backward)
        model.image_encoder(image[: INFERENCE_CHUNK + 1])
    assert seen == [INFERENCE_CHUNK + 1]
    assert got.image.shape == (n, 2)
