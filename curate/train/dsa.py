"""Differentiable siamese augmentation (DSA): one random op per call, replayable parameters.

Every op is differentiable with respect to the input pixels, so a distillation loss can be
back-propagated through it to synthetic images. :func:`sample` draws the op and its
per-sample parameters; :func:`apply` applies them to any batch of at most that many images,
so a real batch and a synthetic batch get the same augmentation (image ``i`` of each gets the
parameters of slot ``i``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from curate.errors import require

torch = require("torch", "torch")
F = torch.nn.functional

#: The ops DSA chooses from, one per call ("color" is brightness, saturation and contrast).
OPS = ("color", "crop", "cutout", "flip", "scale", "rotate")


@dataclass(frozen=True)
class DSAStrengths:
    """How strong each op is (the DSA paper's settings)."""

    scale: float = 1.2  # x and y scale factors in [1/scale, scale]
    rotate: float = 15.0  # degrees, in [-rotate, rotate]
    crop_pad: float = 0.125  # translation up to this fraction of the side
    cutout: float = 0.5  # side of the erased square, as a fraction of the image side
    brightness: float = 1.0  # added offset in [-b/2, b/2]
    saturation: float = 2.0  # factor in [0, saturation]
    contrast: float = 0.5  # factor in [contrast, contrast + 1]


@dataclass
class Augmentation:
    """One op and its parameters for up to ``n`` images (tensors of length ``n``)."""

    op: str
    n: int
    params: dict[str, torch.Tensor] = field(default_factory=dict)


def sample(
    n: int,
    *,
    generator: torch.Generator,
    ops: tuple[str, ...] = OPS,
    strengths: DSAStrengths | None = None,
) -> Augmentation:
    """Draw one op from ``ops`` and its parameters for ``n`` images (on the CPU generator)."""
    s = strengths or DSAStrengths()
    unknown = [o for o in ops if o not in OPS]
    if unknown or not ops:
        raise ValueError(f"unknown DSA op(s) {unknown}; choose from {', '.join(OPS)}")
    op = ops[int(torch.randint(len(ops), (1,), generator=generator))]

    def u(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (hi - lo) + lo

    if op == "color":
        p = {
            "brightness": u(-s.brightness / 2, s.brightness / 2),
            "saturation": u(0, s.saturation),
            "contrast": u(s.contrast, s.contrast + 1),
        }
    elif op == "scale":
        p = {"sx": u(1 / s.scale, s.scale), "sy": u(1 / s.scale, s.scale)}
    elif op == "rotate":
        p = {"angle": u(-s.rotate, s.rotate) * math.pi / 180}
    elif op == "flip":
        p = {"flip": torch.rand(n, generator=generator) < 0.5}
    elif op == "crop":
        p = {"tx": u(-s.crop_pad, s.crop_pad), "ty": u(-s.crop_pad, s.crop_pad)}
    else:  # cutout: centre in [0, 1) of the side, size fixed
        p = {"cx": torch.rand(n, generator=generator), "cy": torch.rand(n, generator=generator)}
        p["size"] = torch.full((n,), s.cutout)
    return Augmentation(op, n, p)


def apply(x: torch.Tensor, aug: Augmentation) -> torch.Tensor:
    """Apply ``aug`` to ``x`` (N, C, H, W) with N <= ``aug.n``; differentiable w.r.t. ``x``."""
    n = x.shape[0]
    if n > aug.n:
        raise ValueError(f"augmentation drawn for {aug.n} images, applied to {n}")
    p = {k: v[:n].to(x.device) for k, v in aug.params.items()}
    return _APPLY[aug.op](x, p)


def augment(
    x: torch.Tensor, *, generator: torch.Generator, ops: tuple[str, ...] = OPS
) -> torch.Tensor:
    """Draw and apply one augmentation to ``x`` (training-time DSA)."""
    return apply(x, sample(x.shape[0], generator=generator, ops=ops))


def _col(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.to(x.dtype).view(-1, 1, 1, 1)


def _color(x: torch.Tensor, p: dict) -> torch.Tensor:
    x = x + _col(p["brightness"], x)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * _col(p["saturation"], x) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * _col(p["contrast"], x) + mean


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, align_corners=True)


def _scale(x: torch.Tensor, p: dict) -> torch.Tensor:
    z = torch.zeros_like(p["sx"])
    theta = torch.stack([torch.stack([p["sx"], z, z], 1), torch.stack([z, p["sy"], z], 1)], 1)
    return _affine(x, theta)


def _rotate(x: torch.Tensor, p: dict) -> torch.Tensor:
    c, s, z = torch.cos(p["angle"]), torch.sin(p["angle"]), torch.zeros_like(p["angle"])
    theta = torch.stack([torch.stack([c, s, z], 1), torch.stack([-s, c, z], 1)], 1)
    return _affine(x, theta)


def _crop(x: torch.Tensor, p: dict) -> torch.Tensor:
    """Translate by whole pixels (zero padding), as a random crop of a padded image does."""
    h, w = x.shape[2], x.shape[3]
    dx, dy = (p["tx"] * w).round(), (p["ty"] * h).round()
    one, z = torch.ones_like(dx), torch.zeros_like(dx)
    # with align_corners=True a shift of one pixel is 2 / (side - 1) in grid units
    theta = torch.stack(
        [
            torch.stack([one, z, dx * 2 / max(w - 1, 1)], 1),
            torch.stack([z, one, dy * 2 / max(h - 1, 1)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="nearest", align_corners=True)


def _cutout(x: torch.Tensor, p: dict) -> torch.Tensor:
    h, w = x.shape[2], x.shape[3]
    half_h, half_w = p["size"] * h / 2, p["size"] * w / 2
    cy, cx = p["cy"] * h, p["cx"] * w
    ys = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    xs = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    inside = ((ys - cy.view(-1, 1, 1)).abs() < half_h.view(-1, 1, 1)) & (
        (xs - cx.view(-1, 1, 1)).abs() < half_w.view(-1, 1, 1)
    )
    return x * (~inside).unsqueeze(1).to(x.dtype)


def _flip(x: torch.Tensor, p: dict) -> torch.Tensor:
    return torch.where(p["flip"].view(-1, 1, 1, 1), x.flip(3), x)


_APPLY = {
    "color": _color,
    "scale": _scale,
    "rotate": _rotate,
    "crop": _crop,
    "cutout": _cutout,
    "flip": _flip,
}
