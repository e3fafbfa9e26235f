"""Images for the embed tests, built with PIL: good ones, and every kind of bad one."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from curate.manifests.io import write_manifest

#: A tiny open_clip architecture (random weights): plumbing tests run in a second on CPU.
TINY_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}


def tiny_clip_config(directory: Path) -> str:
    """Write the tiny open_clip config as ``tiny-clip.json``; its path is a ``--model``."""
    path = Path(directory) / "tiny-clip.json"
    path.write_text(json.dumps(TINY_CLIP))
    return str(path)


def natural(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image with texture (so JPEG sizes are realistic), uint8 HxWx3."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3), dtype=np.uint8)
    im = np.asarray(Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC), np.float32)
    im += rng.normal(0, 12, im.shape)
    return np.clip(im, 0, 255).astype(np.uint8)


def encode(arr_or_im, fmt: str = "PNG", **kw) -> bytes:
    im = arr_or_im if isinstance(arr_or_im, Image.Image) else Image.fromarray(arr_or_im)
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def jpeg(h: int = 64, w: int = 80, seed: int = 0, quality: int = 90) -> bytes:
    return encode(natural(h, w, seed), "JPEG", quality=quality)


def png(h: int = 40, w: int = 48, seed: int = 0) -> bytes:
    return encode(natural(h, w, seed))


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(natural(48, 48, 1)).convert("CMYK"), "JPEG")


def gray_png() -> bytes:
    return encode(Image.fromarray(natural(40, 40, 2)[..., 0]))


def png16() -> bytes:
    arr = (natural(40, 40, 3)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    im = Image.fromarray(arr)
    assert im.mode.startswith("I;16"), im.mode
    return encode(im)


def rgba_png() -> bytes:
    arr = np.dstack([natural(40, 40, 4), np.linspace(0, 255, 1600).reshape(40, 40)])
    return encode(Image.fromarray(arr.astype(np.uint8)))


def truncated_jpeg() -> bytes:
    data = jpeg(128, 128, seed=5)
    return data[: len(data) // 2]


def corrupt() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"this is not really a png" * 4


def bomb_png(side: int = 40_000) -> bytes:
    """A small PNG whose header claims ``side`` x ``side`` pixels (a decompression bomb)."""
    data = bytearray(png(8, 8))
    ihdr = struct.pack(">II", side, side) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(data)


def image_table(images: list, **columns) -> pa.Table:
    cols = {"id": [f"r{i:04d}" for i in range(len(images))], "image": images, **columns}
    return pa.table(cols, schema=_schema(cols))


def _schema(cols: dict) -> pa.Schema:
    types = {"id": pa.string(), "image": pa.binary(), "path": pa.string(), "url": pa.string()}
    types |= {"text": pa.string(), "label": pa.int64(), "error": pa.string()}
    return pa.schema([pa.field(k, types[k]) for k in cols])


def write_images(where: Path, images: list, **columns) -> Path:
    write_manifest(image_table(images, **columns), where, overwrite=True)
    return Path(where)
