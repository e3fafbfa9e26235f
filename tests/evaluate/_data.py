"""Small real pools for the evaluate tests: sklearn's digits, with a share of labels flipped."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.manifests.io import write_manifest
from curate.manifests.schema import embedding_field, with_class_names

NAMES = [str(k) for k in range(10)]


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((image * 255 / 16).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def digits_table(*, noise: float = 0.3, seed: int = 0, images: bool = False) -> pa.Table:
    """All 1,797 digits: embedding = the 64 pixels (unit norm), a ``flipped`` label-noise
    column (``noise`` of the rows got a random other label) and ``split`` (train / test:
    the last 397 rows, never flipped)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x, y = d.data.astype(np.float32), d.target.astype(np.int64)
    n, n_test = len(x), 397
    rng = np.random.default_rng(seed)
    flipped = (rng.random(n) < noise) & (np.arange(n) < n - n_test)
    given = y.copy()
    given[flipped] = (y[flipped] + rng.integers(1, 10, flipped.sum())) % 10
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    field = embedding_field("embedding", 64, "float32", model="digits-pixels", pretrained="none")
    fields = [
        pa.field("id", pa.string()),
        pa.field("label", pa.int64()),
        field,
        pa.field("flipped", pa.bool_()),
        pa.field("split", pa.string()),
    ]
    cols = {
        "id": [f"d{i:04d}" for i in range(n)],
        "label": given,
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(unit.ravel()), 64),
        "flipped": flipped,
        "split": ["test" if i >= n - n_test else "train" for i in range(n)],
    }
    if images:
        fields.append(pa.field("image", pa.binary()))
        cols["image"] = [_png(a.reshape(8, 8)) for a in d.data]
    return pa.table(cols, schema=with_class_names(pa.schema(fields), NAMES))


def write_digits(path: Path, **kw) -> Path:
    return write_manifest(digits_table(**kw), path, overwrite=True)
