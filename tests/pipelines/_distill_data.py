"""Small real manifests for the distillation tests: a few classes of the demo Fashion-MNIST."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from curate.manifests.io import write_manifest
from curate.manifests.schema import with_class_names
from tests.pipelines._label_data import one_thread  # noqa: F401 (autouse, re-exported)

DEMO = Path(__file__).resolve().parents[2] / "curate" / "data" / "fashion_mnist_test.parquet"
#: Tiny network settings: the tests check behaviour, not accuracy.
FAST = {"width": 8, "depth": 2, "real_per_class": 8}


def fashion_table(classes: int = 3, per_class: int = 30, *, test_per_class: int = 0) -> pa.Table:
    """``per_class`` train (and ``test_per_class`` test) rows of the first ``classes`` classes."""
    t = pq.read_table(DEMO)
    labels = t.column("label").to_numpy()
    rows, splits = [], []
    for c in range(classes):
        idx = np.flatnonzero(labels == c)[: per_class + test_per_class]
        rows += idx.tolist()
        splits += ["train"] * per_class + ["test"] * test_per_class
    t = t.take(rows)
    t = t.set_column(t.schema.get_field_index("split"), "split", pa.array(splits))
    names = json_names(t)[:classes]
    return t.replace_schema_metadata(with_class_names(t.schema, names).metadata)


def json_names(t: pa.Table) -> list[str]:
    import json

    return json.loads(t.schema.metadata[b"curate.class_names"])


def write(table: pa.Table, path: Path) -> Path:
    write_manifest(table, path)
    return path


def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def digits_table(per_class: int = 12) -> pa.Table:
    """sklearn's 8x8 digits (classes 0-2) upscaled to 16x16 PNGs: class names are digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    rows = np.concatenate([np.flatnonzero(d.target == c)[:per_class] for c in range(3)])
    imgs = [
        np.kron((d.images[i] * 255 / 16).astype(np.uint8), np.ones((2, 2), np.uint8)) for i in rows
    ]
    t = pa.table(
        {
            "id": [f"digit-{i}" for i in rows],
            "image": pa.array([png(x) for x in imgs], pa.binary()),
            "label": pa.array(d.target[rows], pa.int64()),
        }
    )
    return t.replace_schema_metadata(with_class_names(t.schema, ["0", "1", "2"]).metadata)
