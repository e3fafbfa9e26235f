"""What one decoded image says about itself: a hash of its pixels, its perceptual hash, and
cleanvision's image-property scores (dark, light, blurry, low information, aspect ratio) plus
a colour measure, each in [0, 1] with lower meaning worse.

The definitions follow cleanvision 0.3 (``cleanvision/issue_managers/image_property.py``),
re-implemented on numpy; where they differ it is said at the function and in the README:
entropy of a grayscale image stored as RGB is taken on one channel (cleanvision's 768-bin
RGB histogram adds log2(3) bits to it), and grayscale is measured on the pixels (cleanvision
reads PIL's mode).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from curate.errors import require

#: cleanvision's blurriness is measured on the image shrunk to at most this side.
BLUR_MAX_SIDE = 64
#: cleanvision's normalising factors (low information: entropy x 0.1; blurry: 1 - exp(-0.01 x)).
ENTROPY_FACTOR = 0.1
BLUR_FACTOR = 0.01
BLUR_COLOUR_THRESHOLD = 0.18
#: Perceived brightness weights (cleanvision's): sqrt(0.241 R^2 + 0.691 G^2 + 0.068 B^2).
_BRIGHT = np.array([0.241, 0.691, 0.068], np.float32) / 255.0**2

#: The raw measurements of one image, in this order (NaN where the image failed).
SCORES = (
    "dark_score",
    "light_score",
    "blurry_score",
    "low_information_score",
    "odd_aspect_ratio_score",
    "grayscale_score",
)


@dataclass(frozen=True)
class ImageFacts:
    """What :func:`measure` found: size, hashes and the scores of :data:`SCORES`."""

    width: int
    height: int
    pixel_hash: str
    phash: int
    scores: tuple[float, ...]


def pixel_hash(rgb: np.ndarray) -> str:
    """128-bit BLAKE2b of the decoded RGB pixels and their shape (32 hex digits): equal for
    the same pixels whatever the file format or encoder (a PNG re-encode, a grayscale PNG
    and the RGB PNG of the same gray values)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.asarray(rgb.shape, np.int64).tobytes())
    h.update(np.ascontiguousarray(rgb).tobytes())
    return h.hexdigest()


def phash64(im: Image.Image) -> int:
    """imagehash's 64-bit perceptual hash (DCT of the 32 x 32 grayscale image, 8 x 8 low
    frequencies against their median) as an unsigned integer, first bit most significant:
    ``format(phash64(im), "016x") == str(imagehash.phash(im))``."""
    imagehash = require("imagehash", "check")
    bits = imagehash.phash(im).hash.ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def brightness_percentiles(rgb: np.ndarray, gray: bool) -> tuple[float, float]:
    """The 5th and 99th percentiles of per-pixel perceived brightness in [0, 1]."""
    if gray:  # one channel: brightness is the value itself (the weights sum to 1)
        values = rgb[..., 0].astype(np.float32) / 255.0
    else:
        sq = rgb.astype(np.float32) ** 2
        values = np.sqrt(sq @ _BRIGHT)
    p5, p99 = np.percentile(values, [5, 99])
    return float(p5), float(p99)


def entropy_bits(im: Image.Image, gray: bool) -> float:
    """Shannon entropy of the pixel histogram: PIL's ``Image.entropy`` of the grayscale image
    for a gray one (whatever mode it was stored in), of the RGB image (768 bins) otherwise."""
    return float(im.convert("L").entropy() if gray else im.entropy())


def blurry_score(im: Image.Image) -> float:
    """cleanvision's blurry score: the spread of FIND_EDGES on the image shrunk to 64 px, plus
    (when large) the spread of its grayscale histogram, mapped to [0, 1] by 1 - exp(-0.01 x)."""
    ratio = max(im.width, im.height) / BLUR_MAX_SIDE
    small = (
        im.resize((max(int(im.width // ratio), 1), max(int(im.height // ratio), 1)))
        if ratio > 1
        else im
    )
    gray = small.convert("L")
    edges = np.asarray(gray.filter(ImageFilter.FIND_EDGES), np.float64)
    blur = 1.0 - math.exp(-BLUR_FACTOR * float(edges.std()))
    spread = 1.0 - math.exp(-BLUR_FACTOR * float(np.std(gray.histogram())))
    if spread <= BLUR_COLOUR_THRESHOLD:
        spread = 0.0
    return min(blur + spread, 1.0)


def colour_spread(rgb: np.ndarray) -> float:
    """The 99th percentile over pixels of (max - min channel) / 255: 0 for a grayscale image
    (a gray JPEG stored as RGB decodes to equal channels too), up to 1. A percentile, not the
    mean, so a coloured object on a large black or white background still reads as colour."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return 0.0
    spread = rgb.max(axis=2) - rgb.min(axis=2)  # uint8: max >= min
    return float(np.percentile(spread, 99) / 255.0)


def measure(im: Image.Image) -> ImageFacts:
    """Hashes and scores of one decoded RGB image (see :data:`SCORES`)."""
    rgb = np.asarray(im)
    colour = colour_spread(rgb)
    gray = colour == 0.0
    p5, p99 = brightness_percentiles(rgb, gray)
    w, h = im.size
    scores = (
        p99,  # dark: even the brightest pixels are dim
        1.0 - p5,  # light: even the darkest pixels are bright
        blurry_score(im),
        min(1.0, max(0.0, ENTROPY_FACTOR * entropy_bits(im, gray))),
        min(w / h, h / w),
        colour,
    )
    return ImageFacts(w, h, pixel_hash(rgb), phash64(im), scores)


def size_scores(sizes: np.ndarray, iqr_factor: float) -> tuple[np.ndarray, float]:
    """cleanvision's odd-size score of each image from sqrt(width x height) of all of them:
    1 - |size - mid| / gap, clipped to [0, 1], where [mid - gap/2, mid + gap/2] is
    [Q1 - f IQR, Q3 + f IQR]; returns the scores and the threshold below which a size is
    odd (0.5: outside that range; 1.0 when every size is the same, so any other is odd).

    ``sizes`` holds finite values only.
    """
    if len(sizes) == 0:
        return np.zeros(0, np.float32), 0.5
    q1, q3 = np.percentile(sizes, [25, 75])
    lo, hi = q1 - iqr_factor * (q3 - q1), q3 + iqr_factor * (q3 - q1)
    mid, gap = (lo + hi) / 2, hi - lo
    norm, threshold = (gap, 0.5) if gap > 0 else (mid, 1.0)
    scores = 1.0 - np.clip(np.abs(sizes - mid) / norm, 0.0, 1.0)
    return scores.astype(np.float32), threshold
