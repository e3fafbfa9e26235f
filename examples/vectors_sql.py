"""Vectors in a manifest: embed 500 Fashion-MNIST test images, read the vectors into numpy,
and find near neighbours in SQL over the stored raw-bytes layout.

    python examples/vectors_sql.py  (about half a minute on 2 CPU cores)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

import curate
from curate.manifests import write_manifest
from curate.manifests.vectors import read_vectors
from curate.pipelines.embed import embed

DEMO = Path(curate.__file__).parent / "data" / "fashion_mnist_test.parquet"

with tempfile.TemporaryDirectory() as d:
    src = write_manifest(pq.read_table(DEMO).slice(0, 500), Path(d) / "fashion")
    m = embed(src, Path(d) / "embedded", model="efficientnet_lite0", image_size=64, progress=False)
    stored = pq.read_schema(m.files[0]).field("embedding").type
    print(f"steps see {m.schema.field('embedding').type}; Parquet stores {stored}")

    vectors, present = read_vectors(m, "embedding")  # (500, 1280) float16, as stored
    x = vectors.astype(np.float32)
    norm = np.linalg.norm(x[0])
    print(f"{present.sum()} vectors, dtype {vectors.dtype}, norm of row 0 {norm:.3f}")

    nearest = curate.sql(
        "SELECT a.id AS query, a.label AS label, b.id AS neighbour, b.label AS neighbour_label, "
        "array_cosine_similarity(a.embedding, b.embedding) AS sim "
        "FROM m a, m b WHERE a.id IN (SELECT id FROM m ORDER BY id LIMIT 3) AND a.id <> b.id "
        "QUALIFY row_number() OVER (PARTITION BY a.id ORDER BY sim DESC) = 1 ORDER BY a.id",
        m=m,
    )
    print(nearest.to_pandas().to_string(index=False))
    # the same question for every row, in numpy on the vectors read above
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    labels = m.read(["label"])["label"].to_numpy()
    agree = (labels[sims.argmax(axis=1)] == labels).mean()
    print(f"1-nearest-neighbour label agreement over the 500 images: {agree:.3f}")
