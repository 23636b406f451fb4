"""Photometric augmentation of camera frames for fine-tuning: what changes when the lights or the exposure do.

The simulator randomizes lighting per episode within the camera config's ranges; a rig's
exposure can still land outside them (a darker rod, a brighter background). Fine-tuning
therefore also sees each training frame under a random

* gamma (intensity curve) in ``exp([-0.5, 0.5])``,
* gain in ``GAIN`` and offset in ``OFFSET`` (contrast and black level),
* linear lighting gradient across the frame, up to ``GRADIENT`` per half frame on each axis,
* extra pixel noise, sigma up to ``NOISE``,

drawn per frame from a seeded generator. Geometry is never changed: the label is the
pendulum's angle in the frame, so the augmentation must not move it. Blur augmentation was
tried and left out: an isotropic blur does not teach what long exposures do (they smear the
rod along its arc, and one frame cannot tell which end is now), and it cost accuracy
(docs/perception.md).
"""

from __future__ import annotations

import torch

GAMMA_LOG = 0.5  # gamma in exp([-GAMMA_LOG, GAMMA_LOG])
GAIN = (0.3, 1.2)
OFFSET = (-0.1, 0.3)
GRADIENT = 0.15  # intensity per half frame, each axis
NOISE = 0.06  # largest extra pixel noise sigma (intensity)


def photometric(image: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """(B, 1, H, W) uint8 frames -> the same frames under random lighting (uint8); pure given ``gen``'s state."""
    x = image.to(torch.float32) * (1.0 / 255.0)
    b, _, h, w = x.shape

    def draw(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(b, 1, 1, 1, generator=gen)

    # The clamp lifts exact black to at most one grey level (1e-4 ** exp(-0.5) = 0.95 / 255).
    x = x.clamp(min=1e-4) ** torch.exp(draw(-GAMMA_LOG, GAMMA_LOG))
    x = draw(*GAIN) * x + draw(*OFFSET)
    rows = torch.linspace(-1.0, 1.0, h).view(1, 1, h, 1)
    cols = torch.linspace(-1.0, 1.0, w).view(1, 1, 1, w)
    x = x + draw(-GRADIENT, GRADIENT) * rows + draw(-GRADIENT, GRADIENT) * cols
    x = x + draw(0.0, NOISE) * torch.randn(x.shape, generator=gen)
    return (x.clamp(0.0, 1.0) * 255.0 + 0.5).to(torch.uint8)
