"""Photometric augmentation: seeded, varied, and it never hides or moves the pendulum."""

from __future__ import annotations

import numpy as np
import torch

from sensorimotor.perception.augment import photometric
from sensorimotor.sim.config import DeviceConfig
from sensorimotor.sim.device import nominal_params
from sensorimotor.sim.sensors import render_clean


def frames(n: int) -> tuple[torch.Tensor, np.ndarray]:
    """n clean renders at spread angles as the camera streams them (uint8, background 0.2), and the rod masks."""
    alphas = np.linspace(-np.pi, np.pi, n, endpoint=False)
    clean = render_clean(np.stack([np.zeros(n), alphas, np.zeros(n), np.zeros(n)], -1), nominal_params(DeviceConfig()))
    scene = 0.2 + clean * 0.7
    return torch.from_numpy(np.round(scene * 255).astype(np.uint8))[:, None], clean > 0.5


def test_same_seed_same_frames_and_each_frame_lit_differently() -> None:
    img, masks = frames(16)
    a = photometric(img, torch.Generator().manual_seed(3))
    b = photometric(img, torch.Generator().manual_seed(3))
    c = photometric(img, torch.Generator().manual_seed(4))
    assert a.dtype == torch.uint8 and a.shape == img.shape
    assert torch.equal(a, b) and not torch.equal(a, c)
    background = [float(a[i, 0][~torch.from_numpy(m)].float().mean()) for i, m in enumerate(masks)]
    assert max(background) - min(background) > 40  # intensity levels: the lighting really varies per frame


def test_the_rod_stays_brighter_than_its_background_where_it_was() -> None:
    """Gain > 0 and gamma are monotonic: the pendulum is never inverted or moved, so the label stays true."""
    img, masks = frames(64)
    out = photometric(img, torch.Generator().manual_seed(0)).float()
    for i, m in enumerate(masks):
        rod = torch.from_numpy(m)
        assert float(out[i, 0][rod].mean()) > float(out[i, 0][~rod].mean()) + 5
