"""DuckDB SQL over manifests from Python: views by name, embeddings as arrays, streaming COPY."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

import curate
from curate.errors import InputError
from curate.manifests import write_manifest
from curate.manifests.catalog import sql_to_parquet
from tests.conftest import embedded_table


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    return write_manifest(embedded_table(n=300), tmp_path / "m", rows_per_shard=100)


def test_group_by_over_a_sharded_manifest(manifest: Path) -> None:
    result = curate.sql("SELECT label, count(*) AS n FROM m GROUP BY label", m=manifest)
    assert sum(result.column("n").to_pylist()) == 300


def test_embedding_is_a_duckdb_array(manifest: Path) -> None:
    result = curate.sql(
        "SELECT a.id, array_cosine_similarity(a.embedding, b.embedding) AS sim "
        "FROM m a JOIN m b USING (id) ORDER BY a.id LIMIT 5",
        m=manifest,
    )
    assert all(abs(s - 1.0) < 1e-3 for s in result.column("sim").to_pylist())


def test_two_manifests_join(tmp_path: Path, manifest: Path) -> None:
    other = write_manifest(embedded_table(n=50, seed=1), tmp_path / "other")
    result = curate.sql("SELECT count(*) AS n FROM a JOIN b USING (id)", a=manifest, b=other)
    assert result.column("n")[0].as_py() == 50


def test_copy_to_parquet_streams_the_result(tmp_path: Path, manifest: Path) -> None:
    out = tmp_path / "r.parquet"
    n = sql_to_parquet("SELECT id, label FROM m WHERE label = 1", out, m=manifest)
    assert n == pq.read_metadata(out).num_rows > 0


def test_bad_sql_and_bad_view_name_are_clear(manifest: Path) -> None:
    with pytest.raises(InputError, match="SQL error"):
        curate.sql("SELECT nope FROM m", m=manifest)
    with pytest.raises(InputError, match="not a valid SQL identifier"):
        curate.sql("SELECT 1", **{"bad-name": manifest})
