"""Small real data for the label-issues tests: sklearn digits with known flipped labels."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from curate.manifests.io import write_manifest
from curate.manifests.schema import embedding_field, with_class_names


@pytest.fixture(autouse=True)
def one_thread():
    """Shared 2-core test machines: multi-threaded BLAS/torch spin-wait and run far slower."""
    from threadpoolctl import threadpool_limits

    try:
        import torch
    except ImportError:
        torch = None
    before = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    if torch:
        torch.set_num_threads(before)


#: Published predictions (cleanlab/label-errors): ../shared/data/label-errors beside the repo.
_REPO = Path(__file__).resolve().parents[2]
LABEL_ERRORS = Path(
    os.environ.get("CURATE_LABEL_ERRORS", _REPO.parent / "shared" / "data" / "label-errors")
)
CLASS_NAMES = [f"digit_{k}" for k in range(10)]


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((img * 255 / 16).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def digits_table(
    *, n: int | None = None, flips: int = 60, seed: int = 0, embedding: bool = False
) -> tuple[pa.Table, np.ndarray]:
    """Digits as a manifest (PNG image, label, split); returns it and the flipped rows."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images, y = d.images[:n], d.target[:n].astype(np.int64).copy()
    rng = np.random.default_rng(seed)
    flipped = np.sort(rng.choice(len(y), flips, replace=False))
    y[flipped] = (y[flipped] + rng.integers(1, 10, flips)) % 10
    cols = {
        "id": pa.array([f"d{i:04d}" for i in range(len(y))]),
        "image": pa.array([_png(x) for x in images], pa.binary()),
        "label": pa.array(y, pa.int64()),
        "split": pa.array(np.where(np.arange(len(y)) % 4 == 0, "test", "train")),
    }
    fields = [
        pa.field("id", pa.string()),
        pa.field("image", pa.binary()),
        pa.field("label", pa.int64()),
        pa.field("split", pa.string()),
    ]
    if embedding:
        emb = images.reshape(len(y), -1).astype(np.float32) + 1e-3
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        cols["embedding"] = pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), emb.shape[1])
        fields.append(embedding_field("embedding", emb.shape[1], "float32", model="pixels"))
    schema = with_class_names(pa.schema(fields), CLASS_NAMES)
    return pa.table(cols, schema=schema), flipped


def write_digits(path: Path, **kw) -> tuple[Path, np.ndarray]:
    table, flipped = digits_table(**kw)
    write_manifest(table, path)
    return path, flipped


def published(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The published cross-validated pred_probs and given labels (mnist or cifar10)."""
    pp = np.load(LABEL_ERRORS / f"{name}_test_set_pyx.npy")
    labels = np.load(LABEL_ERRORS / f"{name}_test_set_original_labels.npy").astype(np.int64)
    return pp, labels


def labels_manifest(path: Path, labels: np.ndarray, names: list[str] | None = None) -> Path:
    """A manifest of ids and labels only (for --pred-probs runs)."""
    table = pa.table(
        {"id": [f"r{i:05d}" for i in range(len(labels))], "label": pa.array(labels, pa.int64())}
    )
    schema = with_class_names(table.schema, names or [f"c{k}" for k in range(labels.max() + 1)])
    write_manifest(table.replace_schema_metadata(schema.metadata), path)
    return path


def noisy_pred_probs(n: int, k: int, *, seed: int = 0, dtype=np.float32):
    """Generated probabilities and labels with ~15% label noise (for exactness tests)."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) * 1.5
    logits[np.arange(n), true] += rng.uniform(0, 5, n)
    pp = np.exp(logits - logits.max(axis=1, keepdims=True))
    pp = (pp / pp.sum(axis=1, keepdims=True)).astype(dtype)
    labels = true.copy()
    noisy = rng.random(n) < 0.15
    labels[noisy] = rng.integers(0, k, noisy.sum())
    return labels, pp


def fresh_out() -> Path:
    """A new output path in its own temporary folder (label-issues writes beside its input
    when given none, and tests share their inputs)."""
    return Path(tempfile.mkdtemp(prefix="curate-li-")) / "out"
