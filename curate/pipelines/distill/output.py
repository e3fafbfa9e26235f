"""The synthetic manifest: viewable PNGs, the exact float32 pixels, and where each one began."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S
from curate.manifests.io import ManifestWriter

PIXELS = "pixels"
SOURCE_ID = "source_id"


def to_uint8(syn: np.ndarray, mean: list[float], std: list[float]) -> np.ndarray:
    """Normalised float pixels (N, C, H, W) -> uint8 images (N, H, W[, C]) for viewing."""
    m = np.asarray(mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(std, np.float32).reshape(1, -1, 1, 1)
    img = np.clip((syn * s + m) * 255.0, 0, 255).round().astype(np.uint8)
    return img[:, 0] if img.shape[1] == 1 else img.transpose(0, 2, 3, 1)


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def pixels_field(shape: list[int], mean: list[float], std: list[float]) -> pa.Field:
    """The ``pixels`` column: FixedSizeList<float32, C*H*W>, shape and normalisation in metadata."""
    meta = {
        b"curate.shape": json.dumps(shape).encode(),
        b"curate.normalization": json.dumps({"mean": mean, "std": std}).encode(),
    }
    return pa.field(PIXELS, pa.list_(pa.float32(), int(np.prod(shape))), metadata=meta)


def write_synthetic(out: Path, state, real, cfg, run_info: dict) -> None:
    """Write the synthetic images of ``state`` as the manifest ``out`` (marked complete)."""
    syn = state.syn.detach().float().cpu().numpy()
    shape = list(syn.shape[1:])
    labels = np.repeat(np.arange(len(real.class_names)), cfg.ipc)
    ids = [f"{cfg.method}-{c}-{j}" for c in range(len(real.class_names)) for j in range(cfg.ipc)]
    field = pixels_field(shape, real.mean, real.std)
    schema = pa.schema(
        [
            pa.field(S.ID, pa.string()),
            pa.field(S.LABEL, pa.int64()),
            pa.field(S.IMAGE, pa.binary()),
            field,
            pa.field(SOURCE_ID, pa.string()),
        ]
    )
    schema = S.with_class_names(schema, real.class_names)
    flat = pa.array(syn.reshape(len(syn), -1).ravel(), pa.float32())
    table = pa.table(
        {
            S.ID: ids,
            S.LABEL: pa.array(labels, pa.int64()),
            S.IMAGE: pa.array([_png(a) for a in to_uint8(syn, real.mean, real.std)], pa.binary()),
            PIXELS: pa.FixedSizeListArray.from_arrays(flat, field.type.list_size),
            SOURCE_ID: pa.array(state.source_ids, pa.string()),
        },
        schema=schema,
    )
    writer = ManifestWriter(out, resume=True, schema=schema)
    writer.write(table)
    writer.close(run_info)


def read_pixels(manifest) -> tuple[np.ndarray, np.ndarray, dict]:
    """(pixels (N, C, H, W) float32, labels (N,), normalisation) of a synthetic manifest."""
    from curate.errors import ManifestError

    if PIXELS not in manifest.schema.names:
        raise ManifestError(
            f"{manifest.path}: no 'pixels' column; is this the output of `curate distill`?"
        )
    meta = manifest.schema.field(PIXELS).metadata or {}
    shape = json.loads(meta[b"curate.shape"])
    norm = json.loads(meta[b"curate.normalization"])
    table = manifest.read([PIXELS, S.LABEL])
    flat = table.column(PIXELS).combine_chunks().flatten().to_numpy(zero_copy_only=False)
    pixels = flat.astype(np.float32).reshape(-1, *shape)
    return pixels, np.array(table.column(S.LABEL).to_numpy()), norm
