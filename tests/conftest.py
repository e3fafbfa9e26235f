"""Shared fixtures: small real manifests built from sklearn's digits."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from curate.manifests.schema import embedding_field, with_class_names


def embedded_table(n: int = 200, dim: int = 16, *, seed: int = 0, classes: int = 3) -> pa.Table:
    """A manifest table with ids, labels, class names and a unit-norm float16 embedding."""
    rng = np.random.default_rng(seed)
    emb = rng.normal(size=(n, dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    field = embedding_field("embedding", dim, "float16", model="test-model", pretrained="none")
    schema = pa.schema([pa.field("id", pa.string()), pa.field("label", pa.int64()), field])
    schema = with_class_names(schema, [f"class{i}" for i in range(classes)])
    flat = pa.array(emb.astype(np.float16).ravel())
    return pa.table(
        {
            "id": [f"r{i:05d}" for i in range(n)],
            "label": pa.array(rng.integers(0, classes, n), pa.int64()),
            "embedding": pa.FixedSizeListArray.from_arrays(flat, dim),
        },
        schema=schema,
    )


@pytest.fixture
def small_embedded() -> pa.Table:
    return embedded_table()
