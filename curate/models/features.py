"""Inputs for the built-in predictors: embedding vectors or the pixels of small images."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest

#: Images up to this side (pixels) count as small: the CNN and pixel features use them as is.
MAX_PIXEL_SIDE = 64


@dataclass
class Features:
    """Per-row predictor inputs for the rows selected by ``rows`` (indices into the manifest).

    ``vectors`` is ``(n, d)`` float32; ``pixels`` is ``(n, channels, side, side)`` float32 in
    [0, 1]; either may be None when no predictor needs it. ``source`` says what the vectors are.
    """

    rows: np.ndarray
    vectors: np.ndarray | None = None
    pixels: np.ndarray | None = None
    source: str = ""


def has_embedding(manifest: Manifest) -> bool:
    return S.EMBEDDING in manifest.schema.names


def read_embedding(manifest: Manifest, rows: np.ndarray) -> np.ndarray:
    """The ``embedding`` column as float32 for ``rows``; nulls are an error naming the rows."""
    field = manifest.schema.field(S.EMBEDDING)
    dim = S.embedding_dim(field)
    if dim is None:
        raise ManifestError(f"{manifest.path}: column 'embedding' is not a vector column.")
    parts = []
    for batch in manifest.iter_batches([S.EMBEDDING]):
        col = batch.column(0)
        if col.null_count:
            raise ManifestError(
                f"{manifest.path}: {col.null_count} rows have no embedding (null); rerun "
                "`curate embed`, or exclude those rows (they should carry an error)."
            )
        parts.append(list_to_numpy(col, dim).astype(np.float32, copy=False))
    return np.concatenate(parts)[rows]


def _decode(data: bytes, mode: str, side: int) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        im = im.convert(mode)
        if im.size != (side, side):
            im = im.resize((side, side), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.float32) / 255.0
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def _image_geometry(first: bytes) -> tuple[str, int]:
    from PIL import Image

    with Image.open(io.BytesIO(first)) as im:
        mode = "L" if im.mode in ("1", "L", "I", "I;16", "F") else "RGB"
        side = max(im.size)
    side = -(-side // 4) * 4  # the CNN pools twice: a multiple of 4
    return mode, side


def pixel_side(manifest: Manifest) -> int | None:
    """The side the pixels would have, or None when images are absent or too large."""
    if S.IMAGE not in manifest.schema.names:
        return None
    for batch in manifest.iter_batches([S.IMAGE], batch_size=16):
        for value in batch.column(0):
            if value.is_valid:
                side = _image_geometry(value.as_py())[1]
                return side if side <= MAX_PIXEL_SIDE else None
    return None


def read_pixels(manifest: Manifest, rows: np.ndarray) -> np.ndarray:
    """Decode the ``image`` column for ``rows`` to ``(n, c, side, side)`` float32."""
    if S.IMAGE not in manifest.schema.names:
        raise InputError(
            f"{manifest.path}: pixel features need an 'image' column (bytes); embed the "
            "manifest first (`curate embed`) or pass --pred-probs."
        )
    position = np.full(manifest.num_rows, -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    out: np.ndarray | None = None
    mode, side, offset = "L", 0, 0
    for batch in manifest.iter_batches([S.IMAGE], batch_size=4096):
        col: pa.Array = batch.column(0)
        for i in np.flatnonzero(position[offset : offset + batch.num_rows] >= 0):
            data = col[int(i)].as_py()
            if data is None:
                raise InputError(f"{manifest.path}: row {offset + int(i)} has no image bytes.")
            if out is None:
                mode, side = _image_geometry(data)
                channels = 1 if mode == "L" else 3
                out = np.empty((len(rows), channels, side, side), dtype=np.float32)
            out[position[offset + int(i)]] = _decode(data, mode, side)
        offset += batch.num_rows
    return out


def load_features(
    manifest: Manifest,
    rows: np.ndarray,
    *,
    need: set[str],
    features: str = "auto",
    log: Callable[[str], None] | None = None,
) -> Features:
    """Read what the predictors ``need`` ("vectors", "pixels") for ``rows``.

    ``features="auto"`` uses the embedding column for vectors when present, else flattened
    pixels of small images. The caller embeds first when neither is available.
    """
    feats = Features(rows=rows)
    use_embedding = features == "embedding" or (features == "auto" and has_embedding(manifest))
    if features == "embedding" and not has_embedding(manifest):
        raise InputError(f"{manifest.path}: no 'embedding' column; run `curate embed` first.")
    if "pixels" in need or ("vectors" in need and not use_embedding):
        if features == "auto" and pixel_side(manifest) is None and not use_embedding:
            raise InputError(
                f"{manifest.path}: images are larger than {MAX_PIXEL_SIDE}px or missing, so "
                "pixel features do not apply; embed the manifest first (`curate embed`)."
            )
        if log:
            log(f"decoding {len(rows)} images to pixels")
        feats.pixels = read_pixels(manifest, rows)
    if "vectors" in need:
        if use_embedding:
            info = S.embedding_info(manifest.schema.field(S.EMBEDDING))
            feats.vectors = read_embedding(manifest, rows)
            feats.source = f"embedding ({info.get('model', 'unknown model')})"
        else:
            feats.vectors = feats.pixels.reshape(len(rows), -1)
            feats.source = f"pixels ({feats.pixels.shape[1]}x{feats.pixels.shape[2]}^2)"
    return feats


def list_to_numpy(
    col: pa.Array | pa.ChunkedArray, width: int, name: str = "pred_probs"
) -> np.ndarray:
    """A (fixed-size) list column of floats as a 2-D array without per-row Python work;
    ``name`` is the column the errors name."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if col.null_count:
        rows = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[:5].tolist()
        raise InputError(f"{name} column has null rows (first: {rows}); every row needs one.")
    if pa.types.is_fixed_size_list(col.type):
        values = col.flatten()
    else:
        lengths = col.value_lengths().to_numpy()
        if (lengths != width).any():
            bad = np.flatnonzero(lengths != width)[:5].tolist()
            raise InputError(f"{name} rows {bad} do not have {width} entries.")
        values = col.flatten()
    return values.to_numpy(zero_copy_only=False).reshape(-1, width)
