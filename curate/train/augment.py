"""Parameterised augmentations: sample a view's parameters from a seeded RNG, store them, and
re-apply them exactly later (dataset reinforcement's replay).

A view's parameters are a flat float vector (:data:`PARAM_NAMES`), with boxes in normalised
coordinates of the source image, so they survive a resize. They are rounded to float16 before
use (:func:`as_stored`), so the view a teacher saw and the view a replay makes are the same
image. Every pixel operation is a ``torchvision.transforms.v2.functional`` op.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

#: The parameter vector of one view.
PARAM_NAMES = (
    "crop_top", "crop_left", "crop_height", "crop_width",  # RandomResizedCrop box, 0..1
    "flip",  # 1: horizontal flip
    "op1", "mag1", "op2", "mag2",  # RandAugment: op index (-1 none), magnitude 0..MAX_MAGNITUDE
    "erase_top", "erase_left", "erase_height", "erase_width",  # random erasing box (0: none)
    "mix",  # 0 none, 1 mixup, 2 cutmix (partner id stored beside)
    "mix_lambda",  # weight of this image in the mix
    "cut_top", "cut_left", "cut_height", "cut_width",  # cutmix box taken from the partner
)  # fmt: skip
P = len(PARAM_NAMES)
MAX_MAGNITUDE = 30
#: RandAugment ops by index (a stored op index must keep its meaning: append only).
OPS = (
    "identity", "rotate", "shear_x", "shear_y", "translate_x", "translate_y", "brightness",
    "contrast", "sharpness", "posterize", "solarize", "autocontrast", "equalize",
)  # fmt: skip
MIXES = ("none", "mixup", "cutmix")


@dataclass(frozen=True)
class Policy:
    """How views are sampled.

    Parameters
    ----------
    scale
        RandomResizedCrop area range (fraction of the image).
    ratio
        Aspect-ratio range of the crop.
    flip
        Probability of a horizontal flip (0 for digits and text, where flip changes meaning).
    ops
        RandAugment ops per view (0: none) and ``magnitude`` the upper bound of their strength.
    erase
        Probability of a random-erasing box.
    """

    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    ops: int = 2
    magnitude: int = 9
    erase: float = 0.25


#: The named policies (``--policy``).
POLICIES: dict[str, Policy] = {
    "randaugment": Policy(),
    "light": Policy(scale=(0.6, 1.0), ops=1, magnitude=5, erase=0.0),
    "crop-flip": Policy(ops=0, erase=0.0),
    "crop": Policy(flip=0.0, ops=0, erase=0.0),
}


def get_policy(name: str) -> Policy:
    """The policy registered as ``name``; an unknown name lists the valid ones."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown augmentation policy {name!r}; choose one of {', '.join(POLICIES)}"
        ) from None


def view_rng(seed: int, row_id: str, aug: int) -> np.random.Generator:
    """The RNG of view ``aug`` of row ``row_id``: keyed by the id, not the row's position, so
    a resumed or re-sharded run draws the same parameters."""
    digest = hashlib.sha256(f"{seed}\x00{row_id}\x00{aug}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _crop_box(rng: np.random.Generator, policy: Policy) -> tuple[float, float, float, float]:
    for _ in range(10):
        area = rng.uniform(*policy.scale)
        ratio = np.exp(rng.uniform(np.log(policy.ratio[0]), np.log(policy.ratio[1])))
        h, w = np.sqrt(area / ratio), np.sqrt(area * ratio)
        if h <= 1 and w <= 1:
            return rng.uniform(0, 1 - h), rng.uniform(0, 1 - w), h, w
    return 0.0, 0.0, 1.0, 1.0


def sample_params(
    rng: np.random.Generator, policy: Policy, *, mix: str = "none", mix_prob: float = 0.0
) -> np.ndarray:
    """One view's parameter vector (float32, :data:`PARAM_NAMES` order)."""
    p = np.zeros(P, np.float32)
    p[0:4] = _crop_box(rng, policy)
    p[4] = float(rng.random() < policy.flip)
    p[5:9] = (-1, 0, -1, 0)
    for k in range(policy.ops):
        p[5 + 2 * k] = rng.integers(0, len(OPS))
        p[6 + 2 * k] = rng.integers(0, policy.magnitude + 1)
    if rng.random() < policy.erase:
        area = rng.uniform(0.02, 0.25)
        h = w = np.sqrt(area)
        p[9:13] = rng.uniform(0, 1 - h), rng.uniform(0, 1 - w), h, w
    if mix != "none" and rng.random() < mix_prob:
        p[13] = MIXES.index(mix)
        lam = rng.beta(1.0, 1.0)
        p[14] = lam
        if mix == "cutmix":  # the partner's box covers 1 - lam of the area
            side = np.sqrt(1 - lam)
            p[15:19] = rng.uniform(0, 1 - side), rng.uniform(0, 1 - side), side, side
    else:
        p[14] = 1.0
    return p


def as_stored(params: np.ndarray) -> np.ndarray:
    """The parameters as a manifest stores them (float16), back as float32."""
    return np.asarray(params, np.float16).astype(np.float32)


def _pixels(frac: float, n: int) -> int:
    return int(round(float(frac) * n))


def _op(img, op: int, mag: int):
    """RandAugment op ``op`` at magnitude ``mag`` on a uint8 (C, H, W) tensor."""
    import torchvision.transforms.v2.functional as F

    name, m = OPS[op], mag / MAX_MAGNITUDE
    h, w = img.shape[-2:]
    if name == "rotate":
        return F.rotate(img, 30.0 * m)
    if name in ("shear_x", "shear_y"):
        shear = [17.0 * m, 0.0] if name == "shear_x" else [0.0, 17.0 * m]
        return F.affine(img, angle=0.0, translate=[0, 0], scale=1.0, shear=shear)
    if name in ("translate_x", "translate_y"):
        t = [round(0.3 * m * w), 0] if name == "translate_x" else [0, round(0.3 * m * h)]
        return F.affine(img, angle=0.0, translate=t, scale=1.0, shear=[0.0, 0.0])
    if name in ("brightness", "contrast", "sharpness"):
        fn = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast}.get(
            name, F.adjust_sharpness
        )
        return fn(img, 1.0 + 0.9 * m)
    if name == "posterize":
        return F.posterize(img, max(1, 8 - int(round(4 * m))))
    if name == "solarize":
        return F.solarize(img, 255.0 * (1.0 - m))
    if name == "autocontrast":
        return F.autocontrast(img)
    if name == "equalize":
        return F.equalize(img)
    return img


def _base_view(img, p: np.ndarray, size: int):
    """Crop, resize, flip and RandAugment: uint8 (C, H, W) -> float (C, size, size) in [0, 1]."""
    import torch
    import torchvision.transforms.v2.functional as F

    h, w = img.shape[-2:]
    top, left = _pixels(p[0], h), _pixels(p[1], w)
    ch, cw = max(1, _pixels(p[2], h)), max(1, _pixels(p[3], w))
    x = F.resized_crop(img, top, left, ch, cw, [size, size], antialias=True)
    if p[4] >= 0.5:
        x = F.horizontal_flip(x)
    for k in (5, 7):
        if p[k] >= 0:
            x = _op(x, int(p[k]), int(p[k + 1]))
    x = x.to(torch.float32) / 255.0
    if p[11] > 0 and p[12] > 0:
        x = F.erase(
            x, _pixels(p[9], size), _pixels(p[10], size),
            max(1, _pixels(p[11], size)), max(1, _pixels(p[12], size)), 0.0,
        )  # fmt: skip
    return x


def apply_params(img, params: np.ndarray, size: int, partner=None):
    """The view ``params`` describe, of a uint8 (C, H, W) tensor, as float (C, size, size).

    A mixed view (``mix`` 1 or 2) needs ``partner``: the partner row's uint8 image, resized
    whole to ``size`` (no other augmentation). MixUp blends ``lambda * view + (1 - lambda) *
    partner``; CutMix pastes the partner's ``cut`` box into the view.
    """
    import torch
    import torchvision.transforms.v2.functional as F

    p = as_stored(params)
    x = _base_view(img, p, size)
    mix = int(p[13])
    if mix == 0:
        return x
    if partner is None:
        raise ValueError("this view mixes in a partner image; pass partner=")
    other = F.resize(partner, [size, size], antialias=True).to(torch.float32) / 255.0
    if mix == 1:
        return p[14] * x + (1.0 - p[14]) * other
    top, left = _pixels(p[15], size), _pixels(p[16], size)
    ch, cw = max(1, _pixels(p[17], size)), max(1, _pixels(p[18], size))
    x = x.clone()
    x[..., top : top + ch, left : left + cw] = other[..., top : top + ch, left : left + cw]
    return x


def decode_image(data: bytes, channels: int | None = None):
    """Image bytes -> uint8 (C, H, W) tensor.

    ``channels`` 1 or 3 converts every image to grayscale or RGB (a manifest that mixes the
    two must give its views one channel count); None keeps one channel for a grayscale image
    and RGB for any other.
    """
    import io

    import torch
    from PIL import Image

    if channels not in (None, 1, 3):
        raise ValueError(f"channels={channels!r}: must be 1, 3 or None")
    with Image.open(io.BytesIO(data)) as im:
        gray = im.mode in ("1", "L", "LA", "I", "I;16", "F")
        im = im.convert("L" if (channels == 1 or (channels is None and gray)) else "RGB")
        arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(np.array(arr.transpose(2, 0, 1)))


def to_rgb(x):
    """(N, 1|3, H, W) -> (N, 3, H, W): grayscale repeated, as the teachers take it."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
