"""Decode image bytes or files into fixed-size RGB arrays on CPU, turning bad input into errors.

This module imports neither torch nor the rest of curate's heavy parts: it runs inside the
decode worker processes, which should start fast.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile

#: Default decompression-bomb guard: images with more pixels than this are refused unread.
DEFAULT_MAX_PIXELS = 178_956_970  # twice PIL's warning limit, where PIL itself would refuse

INTERPOLATIONS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}
RESIZE_MODES = ("shortest", "squash")


@dataclass(frozen=True)
class Preprocess:
    """How an encoder wants its images: resized, centre-cropped, then normalised.

    Parameters
    ----------
    image_size
        Side of the square the encoder sees.
    resize_mode
        ``shortest``: scale the shortest side to ``image_size / crop_pct``, then centre-crop;
        ``squash``: scale both sides to ``image_size`` (aspect ratio not kept).
    interpolation
        One of ``bicubic``, ``bilinear``, ``nearest``, ``lanczos``.
    crop_pct
        Fraction of the resized image kept by the centre crop (timm's convention; 1.0 = none).
    mean, std
        Per-channel normalisation of pixel values scaled to [0, 1].
    """

    image_size: int
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    crop_pct: float = 1.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, int) or self.image_size < 1:
            raise ValueError(f"image_size={self.image_size!r}: must be a positive integer.")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode={self.resize_mode!r}: valid modes are {RESIZE_MODES}.")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation={self.interpolation!r}: valid values are {sorted(INTERPOLATIONS)}."
            )
        if not 0.0 < self.crop_pct <= 1.0:
            raise ValueError(f"crop_pct={self.crop_pct!r}: must be in (0, 1].")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std need three values each, std positive.")

    @property
    def resize_size(self) -> int:
        """Side the shortest edge is scaled to before the centre crop."""
        return int(round(self.image_size / self.crop_pct))

    def describe(self) -> str:
        """A compact JSON description, stored in the embedding field's metadata."""
        d = asdict(self)
        d["mean"] = [round(v, 6) for v in self.mean]
        d["std"] = [round(v, 6) for v in self.std]
        return json.dumps(d, separators=(",", ":"), sort_keys=True)


class ImageError(Exception):
    """An image that cannot be embedded; ``kind`` is the failure class counted in summaries."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def read_source(
    data: bytes | None, path: str | None, url: str | None, *, base_dir: str | None = None
) -> bytes:
    """The encoded bytes of one row: its ``image`` bytes, else its local ``path``.

    Raises
    ------
    ImageError
        ``not_downloaded`` (a URL only), ``no_image``, ``missing_file``, ``unreadable_file``,
        ``empty``.
    """
    if data is None:
        if path:
            data = _read_path(path, base_dir)
        elif url:
            raise ImageError(
                "not_downloaded", f"{url}: not downloaded; fetch images first (img2dataset)"
            )
        else:
            raise ImageError("no_image", "row has no image bytes, path or url")
    if len(data) == 0:
        raise ImageError("empty", "zero-byte image")
    return data


def _read_path(path: str, base_dir: str | None) -> bytes:
    p = Path(path)
    if not p.is_absolute() and not p.exists() and base_dir is not None:
        p = Path(base_dir) / p
    try:
        return p.read_bytes()
    except FileNotFoundError:
        raise ImageError("missing_file", f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError("unreadable_file", f"{path}: {exc.strerror or exc}") from None


def open_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open encoded bytes lazily and check the size before any pixel is decoded."""
    try:
        with _no_pil_bomb_check():
            im = Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError:
        raise ImageError("corrupt", "not a recognised image format") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError("corrupt", str(exc) or type(exc).__name__) from None
    w, h = im.size
    if w < 1 or h < 1:
        raise ImageError("corrupt", f"image has size {w}x{h}")
    if w * h > max_pixels:
        raise ImageError(
            "too_large",
            f"{w}x{h} = {w * h:,} pixels exceeds the decompression-bomb guard "
            f"({max_pixels:,}); raise max_pixels if this image is genuine",
        )
    return im


class _no_pil_bomb_check:
    """PIL's own bomb check warns or raises by its global limit; curate applies ``max_pixels``."""

    def __enter__(self) -> None:
        self.saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None

    def __exit__(self, *exc: object) -> None:
        Image.MAX_IMAGE_PIXELS = self.saved


def to_rgb(im: Image.Image) -> Image.Image:
    """Convert any PIL mode to 8-bit RGB: 16-bit and float scaled, alpha over white."""
    mode = im.mode
    if mode == "RGB":
        return im
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(im), mode)).convert("RGB")
    if mode == "P" and "transparency" in im.info:
        im, mode = im.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    if mode == "F":
        arr = arr.astype(np.float32)
        hi = float(np.nanmax(arr)) if arr.size else 1.0
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(np.nan_to_num(arr) * scale, 0, 255).astype(np.uint8)
    arr = arr.astype(np.int64)
    if mode.startswith("I;16") or (arr.size and arr.max() > 255):
        return np.clip(arr // 257, 0, 255).astype(np.uint8)  # 0..65535 -> 0..255
    return np.clip(arr, 0, 255).astype(np.uint8)


def resize_crop(im: Image.Image, pre: Preprocess) -> np.ndarray:
    """Resize and centre-crop a decoded RGB image to ``(S, S, 3)`` uint8 per ``pre``."""
    s = pre.image_size
    w, h = im.size
    if pre.resize_mode == "squash":
        return np.asarray(im.resize((s, s), INTERPOLATIONS[pre.interpolation]))
    r = pre.resize_size
    scale = r / min(w, h)
    nw, nh = max(r, round(w * scale)), max(r, round(h * scale))
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), INTERPOLATIONS[pre.interpolation])
    left, top = (nw - s) // 2, (nh - s) // 2
    if (left, top, nw, nh) != (0, 0, s, s):
        im = im.crop((left, top, left + s, top + s))
    return np.asarray(im)


def load_image(
    data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft_side: int | None = None
) -> Image.Image:
    """Decode encoded bytes into a loaded PIL image (its own mode), bad input as ImageError.

    ``draft_side``: a JPEG much larger than this (on its shortest side) is decoded at a
    reduced DCT scale (PIL's ``draft``) that keeps the shortest side at least this long.

    Raises
    ------
    ImageError
        ``corrupt``, ``truncated`` or ``too_large``.
    """
    im = open_image(data, max_pixels=max_pixels)
    if draft_side is not None and im.format == "JPEG":
        w, h = im.size
        f = draft_side / min(w, h)
        if f < 0.5:  # draft keeps each side >= the requested one
            im.draft("RGB", (max(1, int(w * f) + 1), max(1, int(h * f) + 1)))
    try:
        im.load()
    except OSError as exc:
        msg = str(exc)
        kind = "truncated" if "truncated" in msg or "broken data stream" in msg else "corrupt"
        raise ImageError(kind, msg) from None
    except (ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError("corrupt", str(exc) or type(exc).__name__) from None
    return im


def decode_image(
    data: bytes, pre: Preprocess, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode encoded bytes to a ``(S, S, 3)`` uint8 array ready for the encoder.

    JPEGs are decoded at a reduced DCT scale (PIL's ``draft``) when the image is much larger
    than the target, which is most of the decoding time saved.

    Raises
    ------
    ImageError
        ``corrupt``, ``truncated`` or ``too_large``.
    """
    im = load_image(data, max_pixels=max_pixels, draft_side=pre.resize_size)
    return resize_crop(to_rgb(im), pre)


def decode_rows(
    rows: list[tuple[bytes | None, str | None, str | None]],
    pre: Preprocess,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    base_dir: str | None = None,
) -> tuple[np.ndarray, list[tuple[str, str] | None]]:
    """Decode rows of ``(image bytes, path, url)``; the work of one decode-worker task.

    Returns
    -------
    pixels
        ``(n, S, S, 3)`` uint8; rows that failed are zeros.
    errors
        ``None`` for a decoded row, else ``(kind, message)``.
    """
    s = pre.image_size
    out = np.zeros((len(rows), s, s, 3), dtype=np.uint8)
    errors: list[tuple[str, str] | None] = []
    for i, (data, path, url) in enumerate(rows):
        try:
            raw = read_source(data, path, url, base_dir=base_dir)
            out[i] = decode_image(raw, pre, max_pixels=max_pixels)
            errors.append(None)
        except ImageError as exc:
            errors.append((exc.kind, exc.detail))
        except Exception as exc:  # a decoder bug on one image must not stop the run
            errors.append(("decode_failed", f"{type(exc).__name__}: {exc}"))
    return out, errors


def worker_init() -> None:
    """Decode workers: one thread each, and truncated files stay errors."""
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    os.environ.setdefault("OMP_NUM_THREADS", "1")
