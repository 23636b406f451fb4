"""Frames at rest for the camera-roll calibration: the same rig as the episode, the rod hanging down.

The roll computed from them is tested with `hw calibrate` (tests/hardware/test_calibration.py)."""

from __future__ import annotations

import math

import numpy as np
import torch

from sensorimotor.perception.data import generate
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import FurutaSim


def test_a_rest_run_draws_the_same_rigs_as_the_episode() -> None:
    cfg = DeviceConfig()
    episode, rest = FurutaSim(cfg, 8, seed=3), FurutaSim(cfg, 8, seed=3)
    episode.reset()
    rest.reset(state=np.tile([0.0, math.pi, 0.0, 0.0], (8, 1)))
    # camera pose (roll, shift), lighting, background and physics: the rig is the same, only the start differs
    assert np.array_equal(episode.buffers.cam_ep, rest.buffers.cam_ep)
    assert np.array_equal(episode.buffers.background, rest.buffers.background)
    assert np.array_equal(episode.buffers.params, rest.buffers.params)
    assert not np.array_equal(episode.state, rest.state)
    assert np.abs(episode.buffers.cam_ep).max() > 0  # the rigs are randomized, so equality says something
    for _ in range(50):  # motor off: it hangs still, and the frames show it there
        rest.step(np.zeros(8))
    assert np.allclose(rest.state[:, 1:], [math.pi, 0.0, 0.0], rtol=0, atol=1e-12)
    assert np.allclose(rest.received()["image_state"][:, 1], math.pi, rtol=0, atol=1e-12)


def test_rest_frames_leave_the_episodes_alone_and_hang_down() -> None:
    cfg = DeviceConfig()
    plain, with_rest = generate(cfg, 240, seed=4, envs=10), generate(cfg, 240, seed=4, envs=10, rest=True)
    for name, tensor in plain.tensors().items():
        if name != "rest_image":
            assert torch.equal(tensor, getattr(with_rest, name)), name
    assert plain.rest_image.numel() == 0 and with_rest.rest_image.shape == with_rest.image.shape
    # every rig's rest frames show the rod hanging below the pivot (the image centre): in the median frame of the
    # episode (the median: now and then a frame is occluded or black) the column below is the brighter
    seq = with_rest.sequences(slice(None))
    median = seq.rest_image.view(seq.n_sequences, seq.seq_len, *seq.image.shape[-2:]).float().median(1).values
    h, w = median.shape[-2:]
    column = median[:, :, w // 2 - 2 : w // 2 + 2].mean(-1)  # (sequences, rows)
    below, above = column[:, h // 2 + 4 : h // 2 + 20].mean(1), column[:, h // 2 - 20 : h // 2 - 4].mean(1)
    assert (below > above + 20).float().mean() >= 0.9, (below, above)  # a bright background texture can hide one
