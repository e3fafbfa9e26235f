"""Generated embedding manifests with planted structure for the cluster and prune tests."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S
from curate.manifests.io import write_manifest


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def blobs(n_clusters: int, per: int, dim: int = 16, *, spread: float = 0.05, seed: int = 0):
    """Unit vectors around ``n_clusters`` random directions; returns (x, true cluster)."""
    rng = np.random.default_rng(seed)
    centers = unit(rng.normal(size=(n_clusters, dim)))
    labels = np.repeat(np.arange(n_clusters), per)
    x = unit(centers[labels] + spread * rng.normal(size=(len(labels), dim)))
    return x.astype(np.float32), labels


def embedding_table(
    x: np.ndarray,
    *,
    dtype: str = "float32",
    model: str = "test-model",
    null_rows: tuple[int, ...] = (),
    extra: dict | None = None,
) -> pa.Table:
    """A manifest table: id ``r00000``..., an ``embedding`` column, optional extra columns."""
    n, d = x.shape
    field = S.embedding_field(S.EMBEDDING, d, dtype, model=model)
    values = pa.array(x.astype(np.float16 if dtype == "float16" else np.float32).ravel())
    emb = pa.FixedSizeListArray.from_arrays(values, d)
    if null_rows:
        mask = np.zeros(n, bool)
        mask[list(null_rows)] = True
        emb = pa.FixedSizeListArray.from_arrays(values, d, mask=pa.array(mask))
    cols = {"id": pa.array([f"r{i:05d}" for i in range(n)]), S.EMBEDDING: emb}
    fields = [pa.field("id", pa.string()), field]
    for name, vals in (extra or {}).items():
        arr = pa.array(vals)
        cols[name] = arr
        fields.append(pa.field(name, arr.type))
    return pa.table(cols, schema=pa.schema(fields))


def write_embeddings(path, x: np.ndarray, **kwargs):
    """Write :func:`embedding_table` to ``path``; returns the path."""
    write_manifest(embedding_table(x, **kwargs), path)
    return path
