"""Vector columns stored as raw bytes: bit-exact round trips, manifests in the old list layout,
SQL over both layouts, and invalid vectors reported as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import curate
from curate.manifests import open_manifest, write_manifest
from curate.manifests import vectors as V
from curate.manifests.catalog import connect
from curate.manifests.schema import embedding_field
from curate.manifests.vectors import read_vectors
from curate.pipelines import _embeddings as E


def _table(vectors: np.ndarray, *, nulls: list[int] = ()) -> pa.Table:
    n, dim = vectors.shape
    field = embedding_field("embedding", dim, vectors.dtype.name, model="test-model")
    schema = pa.schema([pa.field("id", pa.string()), pa.field("label", pa.int64()), field])
    mask = np.zeros(n, bool)
    mask[list(nulls)] = True
    emb = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dim, mask=pa.array(mask))
    ids = [f"r{i:04d}" for i in range(n)]
    return pa.table({"id": ids, "label": np.arange(n) % 3, "embedding": emb}, schema=schema)


def _unit(n: int, dim: int, dtype: str, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(dtype)


def _old_layout(table: pa.Table, path: Path, *, shards: int = 2) -> Path:
    """A manifest as curate wrote it before raw-bytes vectors: Parquet FixedSizeList."""
    path.mkdir()
    step = -(-table.num_rows // shards)
    for i in range(shards):
        part = table.slice(i * step, step)
        pq.write_table(part, path / f"part-{i:05d}.parquet", use_dictionary=["id", "label"])
    return path


def _bits(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint16 if x.dtype == np.float16 else np.uint32)


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_vectors_round_trip_bit_exact_in_both_layouts(tmp_path: Path, dtype: str) -> None:
    x = _unit(500, 24, dtype)
    x[7, 3] = np.nan  # unusual bit patterns survive too
    x[8] = 0
    table = _table(x, nulls=[5])
    new = write_manifest(table.slice(1), tmp_path / "new", rows_per_shard=200)  # offset slice
    old = _old_layout(table.slice(1), tmp_path / "old")
    stored = pq.read_schema(next(new.glob("*.parquet"))).field("embedding")
    assert pa.types.is_fixed_size_binary(stored.type)
    for path in (new, old):
        m = open_manifest(path)
        assert m.schema.field("embedding").type == table.schema.field("embedding").type
        assert m.schema.field("embedding").metadata[b"curate.model"] == b"test-model"
        got = m.read()
        assert got.column("embedding").to_pylist()[4] is None  # row 5 of the table
        vectors, present = read_vectors(m, "embedding")
        want = x[1:].copy()
        want[4] = 0
        assert vectors.dtype == np.dtype(dtype) and present.tolist() == [i != 4 for i in range(499)]
        assert np.array_equal(_bits(vectors), _bits(want))
        ranged, _ = read_vectors(m, "embedding", rows=(150, 260), workers=2)
        assert np.array_equal(_bits(ranged), _bits(want[150:260]))


def test_old_layout_manifest_reads_through_scan_and_sql(tmp_path: Path) -> None:
    x = _unit(300, 16, "float16")
    old = open_manifest(_old_layout(_table(x), tmp_path / "old"))
    col = E.check_embedding_column(old, "embedding")
    assert col.dim == 16
    mats = [mat for _, mat, codes, _ in E.scan(old, col) if (codes == E.VALID).all()]
    assert np.allclose(np.concatenate(mats), x.astype(np.float32), atol=1e-3)
    q = curate.sql("SELECT embedding[1] AS e FROM m ORDER BY id LIMIT 2", m=old)
    assert q["e"].to_pylist() == pytest.approx(x[:2, 0].astype(np.float32).tolist())


def test_sql_similarity_is_equal_across_layouts(tmp_path: Path) -> None:
    x = _unit(200, 32, "float16", seed=3)
    new = write_manifest(_table(x), tmp_path / "new", rows_per_shard=64)
    old = _old_layout(_table(x), tmp_path / "old")
    query = (
        "SELECT a.id AS a, b.id AS b, array_cosine_similarity(a.embedding, b.embedding) AS s "
        "FROM m a, m b WHERE a.id < 'r0010' ORDER BY a.id, b.id"
    )
    s_new = np.array(curate.sql(query, m=new)["s"].to_pylist())
    s_old = np.array(curate.sql(query, m=old)["s"].to_pylist())
    xf = x.astype(np.float32)
    want = xf[:10] @ xf.T / np.outer(np.linalg.norm(xf[:10], axis=1), np.linalg.norm(xf, axis=1))
    assert np.allclose(s_new, s_old, atol=1e-3) and np.allclose(s_new, want.ravel(), atol=1e-3)
    types = curate.sql("SELECT typeof(embedding) AS t FROM m LIMIT 1", m=new)["t"][0].as_py()
    assert types == "FLOAT[32]"


def test_group_by_over_scalars_never_reads_the_vectors(tmp_path: Path) -> None:
    new = write_manifest(_table(_unit(100, 8, "float16")), tmp_path / "new")
    con = connect({"m": new})
    plan = "\n".join(
        row[1] for row in con.sql("EXPLAIN SELECT label, count(*) FROM m GROUP BY label").fetchall()
    )
    assert "embedding" not in plan and "curate_vector" not in plan
    explain = con.sql("EXPLAIN SELECT avg(embedding[1]) FROM m").fetchall()
    plan = "\n".join(row[1] for row in explain)
    assert "embedding" in plan  # the scan reads the column only when a query names it


def test_a_manifest_mixing_both_layouts_reads_and_queries(tmp_path: Path) -> None:
    x = _unit(120, 8, "float32")
    path = _old_layout(_table(x).slice(0, 60), tmp_path / "mixed", shards=1)
    new = write_manifest(_table(x).slice(60), tmp_path / "new.parquet")
    new.rename(path / "part-00001.parquet")
    vectors, present = read_vectors(path, "embedding")
    assert present.all() and np.array_equal(vectors, x)
    q = curate.sql("SELECT count(*) AS n, sum(embedding[2]) AS s FROM m", m=path)
    assert q["n"][0].as_py() == 120 and q["s"][0].as_py() == pytest.approx(x[:, 1].sum(), abs=1e-4)


def test_nan_zero_null_and_wrong_length_vectors_are_still_reported(tmp_path: Path) -> None:
    x = _unit(10, 4, "float16")
    x[1, 0], x[2] = np.nan, 0
    table = _table(x)
    values = [float(v) for v in x.astype(np.float32).ravel()]
    values[1] = None  # a null value inside row 0
    emb = pa.FixedSizeListArray.from_arrays(
        pa.array(values, pa.float16()), 4, mask=pa.array(np.arange(10) == 3)
    )
    table = table.set_column(2, table.schema.field("embedding"), emb).slice(0, 4)
    path = write_manifest(table, tmp_path / "new")
    m = open_manifest(path)
    col = E.check_embedding_column(m, "embedding")
    codes = np.concatenate([c for _, _, c, _ in E.scan(m, col)])
    assert codes.tolist() == [2, 2, 3, 1]  # null value inside a vector reads back as NaN
    rows = pa.array([[1.0, 0.0], [1.0]], pa.list_(pa.float32()))
    ragged = pa.table({"id": ["a", "b"], "v": rows})
    field = ragged.schema.field("v").with_metadata({b"curate.dim": b"2"})
    ragged = ragged.cast(pa.schema([ragged.schema.field("id"), field]))
    m = open_manifest(write_manifest(ragged, tmp_path / "ragged"))
    assert not V.stored_vector_columns(m.storage_schema)  # variable lists stay lists
    codes = np.concatenate([c for _, _, c, _ in E.scan(m, E.check_embedding_column(m, "v"))])
    assert codes.tolist() == [0, 4]
    vectors, present = read_vectors(m, "v")
    assert present.tolist() == [True, False] and vectors[1].tolist() == [0, 0]


def test_a_unit_float16_npy_is_stored_without_conversion(tmp_path: Path) -> None:
    from curate.manifests.ingest import ingest

    x = _unit(50, 16, "float16", seed=5)
    np.save(tmp_path / "img_emb.npy", x)
    src = tmp_path / "meta.parquet"
    pq.write_table(pa.table({"url": [f"http://x/{i}.jpg" for i in range(50)]}), src)
    m = ingest(src, tmp_path / "out", embeddings=tmp_path / "img_emb.npy", batch_size=16)
    vectors, present = read_vectors(m, "embedding")
    assert present.all() and np.array_equal(_bits(vectors), _bits(x))
