"""Batched augmentation of uint8 face tensors on the training device (CPU or GPU).

One call transforms a whole batch with per-sample random parameters drawn from a
`torch.Generator`, so training never leaves the GPU and is reproducible from the seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the random transforms (0 turns one off).

    Attributes:
        rotate: degrees, uniform in [-rotate, rotate].
        translate: fraction of the side, uniform in [-translate, translate] per axis.
        scale: (low, high) zoom factor.
        flip: horizontal flip with probability 0.5.
        jitter: brightness and contrast factors uniform in [1 - jitter, 1 + jitter].
        erase: probability of random erasing (a noise rectangle of 2-25% of the area).
    """

    rotate: float = 0.0
    translate: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    flip: bool = False
    jitter: float = 0.0
    erase: float = 0.0


def to_float(images: torch.Tensor) -> torch.Tensor:
    """(B, S, S) uint8 -> (B, 1, S, S) float in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


def _uniform(n: int, low: float, high: float, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (high - low) + low


def augment(images: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """Randomly transform a batch.

    Args:
        images: (B, S, S) uint8 on the generator's device.

    Returns:
        (B, 1, S, S) float in [0, 1].
    """
    x = to_float(images)
    b, dev = x.shape[0], x.device
    if cfg.rotate or cfg.translate or cfg.scale != (1.0, 1.0) or cfg.flip:
        angle = _uniform(b, -cfg.rotate, cfg.rotate, g, dev) * (math.pi / 180)
        # affine_grid maps output to input coordinates: zooming in by s samples a 1/s area.
        inv_s = 1.0 / _uniform(b, cfg.scale[0], cfg.scale[1], g, dev)
        flip = torch.ones(b, device=dev)
        if cfg.flip:
            flip = torch.where(torch.rand(b, generator=g, device=dev) < 0.5, -1.0, 1.0)
        cos, sin = torch.cos(angle) * inv_s, torch.sin(angle) * inv_s
        t = _uniform(2 * b, -2 * cfg.translate, 2 * cfg.translate, g, dev).view(b, 2)  # [-1, 1] = full side
        theta = torch.stack(
            [torch.stack([cos * flip, -sin, t[:, 0]], 1), torch.stack([sin * flip, cos, t[:, 1]], 1)], 1
        )
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if cfg.jitter:
        bright = _uniform(b, 1 - cfg.jitter, 1 + cfg.jitter, g, dev).view(b, 1, 1, 1)
        contrast = _uniform(b, 1 - cfg.jitter, 1 + cfg.jitter, g, dev).view(b, 1, 1, 1)
        x = x * bright
        mean = x.mean(dim=(2, 3), keepdim=True)
        x = ((x - mean) * contrast + mean).clamp_(0.0, 1.0)
    if cfg.erase:
        x = _random_erase(x, cfg.erase, g)
    return x


def _random_erase(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    dev = x.device
    area = _uniform(b, 0.02, 0.25, g, dev) * h * w
    ratio = torch.exp(_uniform(b, math.log(0.3), math.log(3.3), g, dev))
    eh = (area * ratio).sqrt().clamp(1, h)
    ew = (area / ratio).sqrt().clamp(1, w)
    y0 = torch.rand(b, generator=g, device=dev) * (h - eh)
    x0 = torch.rand(b, generator=g, device=dev) * (w - ew)
    on = torch.rand(b, generator=g, device=dev) < p
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    mask = (
        (rows >= y0.view(b, 1, 1))
        & (rows < (y0 + eh).view(b, 1, 1))
        & (cols >= x0.view(b, 1, 1))
        & (cols < (x0 + ew).view(b, 1, 1))
        & on.view(b, 1, 1)
    ).unsqueeze(1)
    noise = torch.rand(x.shape, generator=g, device=dev)
    return torch.where(mask, noise, x)


def mix_batch(
    x: torch.Tensor, y: torch.Tensor, mixup_alpha: float, cutmix_alpha: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """MixUp or CutMix (chosen with equal odds when both are on) with a shuffled copy of the batch.

    Returns:
        (mixed x, y, y of the partner, lam): the loss is lam * CE(y) + (1 - lam) * CE(partner).
    """
    b, dev = x.shape[0], x.device
    perm = torch.randperm(b, generator=g, device=dev)
    use_cutmix = cutmix_alpha > 0 and (mixup_alpha <= 0 or torch.rand(1, generator=g, device=dev).item() < 0.5)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = float(torch.distributions.Beta(alpha, alpha).sample().item()) if alpha > 0 else 1.0
    # Beta sampling uses the global RNG (seeded per epoch), not `g`: still reproducible.
    if use_cutmix:
        h, w = x.shape[-2:]
        ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy = int(torch.randint(h, (1,), generator=g, device=dev).item())
        cx = int(torch.randint(w, (1,), generator=g, device=dev).item())
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw // 2, w)
        x = x.clone()
        x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    else:
        x = x * lam + x[perm] * (1 - lam)
    return x, y, y[perm], lam


def tta_views(images: torch.Tensor, mode: str) -> list[torch.Tensor]:
    """Test-time views of a uint8 batch (B, S, S): "none", "flip" (2 views) or "crops" (10 views:
    centre and 4 corner crops of S-4 pixels, resized back to S, each also flipped)."""
    if mode == "none":
        return [images]
    if mode == "flip":
        return [images, images.flip(-1)]
    if mode != "crops":
        raise ValueError(f"tta must be none, flip or crops, not {mode!r}")
    s = images.shape[-1]
    c = s - 4
    views = []
    for y0, x0 in ((2, 2), (0, 0), (0, 4), (4, 0), (4, 4)):
        crop = images[:, y0 : y0 + c, x0 : x0 + c].unsqueeze(1).float()
        crop = F.interpolate(crop, size=(s, s), mode="bilinear", align_corners=False)
        crop = crop.round_().clamp_(0, 255).to(torch.uint8).squeeze(1)
        views += [crop, crop.flip(-1)]
    return views
