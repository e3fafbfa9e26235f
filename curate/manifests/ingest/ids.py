"""Duplicate-id detection while streaming, in a spill-to-disk DuckDB table (bounded memory)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa

from curate.errors import InputError

EXAMPLES = 5
INSERT_ROWS = 262_144


class IdChecker:
    """Collect ids batch by batch; :meth:`check` raises if any id occurs twice."""

    def __init__(self, *, memory_limit: str = "512MB") -> None:
        import duckdb

        self._tmp = tempfile.TemporaryDirectory(prefix="curate-ids-")
        self._con = duckdb.connect(str(Path(self._tmp.name) / "ids.duckdb"))
        self._con.execute(f"SET memory_limit='{memory_limit}'")
        self._con.execute("SET preserve_insertion_order=false")
        self._con.execute("CREATE TABLE ids (id VARCHAR)")
        self.rows = 0
        self._pending: list = []
        self._pending_rows = 0

    def add(self, ids: pa.ChunkedArray | pa.Array) -> None:
        """Queue a batch of ids (inserted in large blocks: each insert has a fixed cost)."""
        self._pending.append(ids)
        self._pending_rows += len(ids)
        self.rows += len(ids)
        if self._pending_rows >= INSERT_ROWS:
            self._insert()

    def _insert(self) -> None:
        if not self._pending:
            return
        chunks = [c for ids in self._pending for c in getattr(ids, "chunks", [ids])]
        batch = pa.table({"id": pa.chunked_array(chunks, pa.string())})  # noqa: F841 (DuckDB scan)
        self._con.execute("INSERT INTO ids SELECT id FROM batch")
        self._pending, self._pending_rows = [], 0

    def check(self, *, source: str) -> None:
        """Raise :class:`InputError` naming the count and a few duplicated ids."""
        self._insert()
        dups = self._con.execute(
            "SELECT count(*), sum(n) FROM (SELECT count(*) AS n FROM ids GROUP BY id HAVING n > 1)"
        ).fetchone()
        if not dups or not dups[0]:
            return
        examples = self._con.execute(
            "SELECT id, count(*) AS n FROM ids GROUP BY id HAVING n > 1 ORDER BY n DESC, id "
            f"LIMIT {EXAMPLES}"
        ).fetchall()
        shown = ", ".join(f"{i!r} x{n}" for i, n in examples)
        raise InputError(
            f"{source}: {dups[0]} id(s) occur more than once ({dups[1]} rows), e.g. {shown}. "
            "Ids must be unique: --map a unique column to id (e.g. --map uid=id), or rename the "
            "id column out of the way (--map id=source_id) so rows are numbered. "
            "Nothing was written."
        )

    def close(self) -> None:
        self._con.close()
        self._tmp.cleanup()
