"""Links between rows by hash: equal pixel hashes (and equal perceptual hashes) by a DuckDB
group-by that spills to disk, perceptual hashes within a Hamming radius by FAISS binary
indexes. Per row this holds a hash (8 bytes for a perceptual one) and the links found."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from curate.errors import require

#: DuckDB's memory for the group-bys; beyond it the hash table spills to a temporary folder.
DUCKDB_MEMORY = "1GB"
NO_ROW = -1


def _connect():
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
    con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/curate-duckdb'")
    con.execute("SET preserve_insertion_order = false")
    return con


def _load(con, name: str, batches: Iterator[tuple[np.ndarray, pa.Array]], key_type) -> None:
    """Fill table ``name`` (row BIGINT, key) from ``(rows, keys)`` batches, null keys left out."""
    schema = pa.schema([("row", pa.int64()), ("key", key_type)])
    con.register("batch_view", schema.empty_table())
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM batch_view")
    for rows, keys in batches:
        t = pa.table({"row": pa.array(rows, pa.int64()), "key": keys.cast(key_type)}, schema=schema)
        con.register("batch_view", t.filter(t.column("key").is_valid()))
        con.execute(f"INSERT INTO {name} SELECT * FROM batch_view")
    con.unregister("batch_view")


def _pairs(con, query: str) -> tuple[np.ndarray, np.ndarray]:
    res = con.sql(query).to_arrow_table()
    return (
        res.column(0).to_numpy().astype(np.int64),
        res.column(1).to_numpy().astype(np.int64),
    )


class KeyTable:
    """Rows and their keys (a pixel or perceptual hash) in a DuckDB table that spills to disk
    past :data:`DUCKDB_MEMORY`; answers "which earlier row has my key" with group-bys.

    Parameters
    ----------
    keys
        ``(row numbers, key array)`` batches of one manifest; null keys are left out.
    key_type
        The Arrow type of the keys.
    """

    def __init__(self, keys: Iterator[tuple[np.ndarray, pa.Array]], key_type: pa.DataType):
        self.con = _connect()
        self.key_type = key_type
        _load(self.con, "h", keys, key_type)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> KeyTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def within(self) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, first row with the same key)`` for every row that repeats an earlier key."""
        return _pairs(
            self.con,
            "WITH g AS (SELECT key, min(row) AS first FROM h GROUP BY key HAVING count(*) > 1) "
            "SELECT h.row, g.first FROM h JOIN g USING (key) WHERE h.row > g.first "
            "ORDER BY h.row",
        )

    def across(self, queries: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(query rows, first reference row with the same key)``; both are row masks."""
        self.con.register("q", pa.table({"row": np.flatnonzero(queries)}))
        self.con.register("r", pa.table({"row": np.flatnonzero(reference)}))
        return _pairs(
            self.con,
            "WITH g AS (SELECT key, min(row) AS first FROM h SEMI JOIN r USING (row) GROUP BY key) "
            "SELECT h.row, g.first FROM h SEMI JOIN q USING (row) JOIN g USING (key) "
            "ORDER BY h.row",
        )

    def against(
        self, other: Iterator[tuple[np.ndarray, pa.Array]]
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, first row of the other manifest with the same key)``."""
        _load(self.con, "o", other, self.key_type)
        return _pairs(
            self.con,
            "WITH g AS (SELECT key, min(row) AS first FROM o GROUP BY key) "
            "SELECT h.row, g.first FROM h JOIN g USING (key) ORDER BY h.row",
        )


def array_batches(values: pa.Array, batch: int = 1 << 20) -> Iterator[tuple[np.ndarray, pa.Array]]:
    """``(rows, keys)`` batches of an in-memory key array (rows 0..n-1)."""
    for i in range(0, len(values), batch):
        part = values.slice(i, batch)
        yield np.arange(i, i + len(part)), part


def codes_of(phash: np.ndarray) -> np.ndarray:
    """uint64 perceptual hashes -> (n, 8) uint8 codes for FAISS (most significant byte first)."""
    return phash.astype(">u8").view(np.uint8).reshape(-1, 8)


def binary_index(codes: np.ndarray, *, exact_max_rows: int, nprobe: int, seed: int):
    """A FAISS binary index over ``codes``: flat (exact) up to ``exact_max_rows`` codes, else
    an IVF over ~4 sqrt(n) lists trained on a seeded sample, ``nprobe`` lists per query."""
    faiss = require("faiss", "check", package="faiss-cpu")
    n = len(codes)
    if n <= exact_max_rows:
        index = faiss.IndexBinaryFlat(64)
    else:
        nlist = int(min(65_536, max(16, 4 * np.sqrt(n))))
        index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(64), 64, nlist)
        rng = np.random.default_rng(seed)
        sample = codes[np.sort(rng.choice(n, min(n, nlist * 64), replace=False))]
        index.train(sample)
        index.nprobe = nprobe
    index.add(codes)
    return index


def nearest_codes(
    index, codes: np.ndarray, k: int, batch: int = 65_536
) -> tuple[np.ndarray, np.ndarray]:
    """Hamming distances and positions of the ``k`` nearest indexed codes to each of
    ``codes`` (-1 where fewer exist), searched in batches."""
    k = max(1, min(k, index.ntotal))
    dist = np.empty((len(codes), k), np.int32)
    pos = np.empty((len(codes), k), np.int64)
    for i in range(0, len(codes), batch):
        d, p = index.search(np.ascontiguousarray(codes[i : i + batch]), k)
        dist[i : i + batch], pos[i : i + batch] = d, p
    return dist, pos


def nearest_earlier(
    rows: np.ndarray, dist: np.ndarray, pos: np.ndarray, index_rows: np.ndarray, radius: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per query row: the closest indexed row that comes before it within ``radius``
    (ties: the earliest), and the distance to its nearest other row (any order).

    ``pos`` are positions in the index; ``index_rows`` maps them to manifest rows.
    Returns ``(link row or -1, distance or -1)``.
    """
    other = np.where(pos >= 0, index_rows[np.maximum(pos, 0)], NO_ROW)
    valid = (other != NO_ROW) & (other != rows[:, None])
    nearest = np.where(valid, dist, 1 << 30).min(axis=1)
    nearest = np.where(nearest == 1 << 30, -1, nearest)
    ok = valid & (other < rows[:, None]) & (dist <= radius)
    # closest first, then the earliest row: one key per candidate
    key = np.where(ok, dist.astype(np.int64) * (1 << 40) + other, np.iinfo(np.int64).max)
    best = key.argmin(axis=1)
    link = np.where(ok.any(axis=1), other[np.arange(len(rows)), best], NO_ROW)
    return link, nearest.astype(np.int32)
