"""Which rows an export writes, streamed: the kept rows (``keep = true``), all rows, and an
optional DuckDB condition, evaluated batch by batch beside the manifest's own reads."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.pipelines.export.config import ExportConfig

KEEP = "keep"  # the column curate prune writes (curate.pipelines.prune.base.KEEP)


def uses_keep(manifest: Manifest, config: ExportConfig) -> bool:
    """Whether the ``keep`` column decides the rows (it exists and ``all_rows`` is off)."""
    return not config.all_rows and KEEP in manifest.schema.names


def selected_batches(
    manifest: Manifest, config: ExportConfig, columns: list[str]
) -> Iterator[tuple[pa.Table, int]]:
    """``(rows to export, rows read)`` per batch of ``columns``, in manifest order.

    Memory holds one batch (and DuckDB's stream of one boolean per row for ``where``). A
    ``where`` that DuckDB cannot run fails here, before any row is read.
    """
    masks = _where_masks(manifest, config) if config.where else None
    return _batches(manifest, config, columns, masks)


def _batches(
    manifest: Manifest, config: ExportConfig, columns: list[str], masks: _Masks | None
) -> Iterator[tuple[pa.Table, int]]:
    keep = uses_keep(manifest, config)
    read = list(dict.fromkeys([*columns, *([KEEP] if keep else []), S.ID]))
    for batch in manifest.iter_batches(read, batch_size=config.batch_size, prefetch=1):
        table = pa.Table.from_batches([batch])
        mask = pc.fill_null(table.column(KEEP), False) if keep else None
        if masks is not None:
            ids, chosen = masks.take(table.num_rows)
            if not pc.all(pc.equal(ids, table.column(S.ID))).as_py():
                raise InputError(
                    f"{manifest.path}: DuckDB returned the rows of --where in another order "
                    "than the manifest's; export without --where (or filter with curate sql "
                    "--out first)."
                )
            mask = chosen if mask is None else pc.and_(mask, chosen)
        chosen_rows = table if mask is None else table.filter(mask)
        yield chosen_rows.select(columns), table.num_rows


class _Masks:
    """A DuckDB stream of ``(id, condition)`` rows, handed out ``n`` rows at a time."""

    def __init__(self, reader: pa.RecordBatchReader, con) -> None:
        self.reader, self.con = reader, con
        self.buffer: list[pa.RecordBatch] = []
        self.held = 0

    def take(self, n: int) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
        import duckdb

        while self.held < n:
            try:
                batch = self.reader.read_next_batch()
            except (duckdb.Error, StopIteration) as exc:
                raise InputError(f"--where: evaluating the condition failed ({exc}).") from exc
            self.buffer.append(batch)
            self.held += batch.num_rows
        table = pa.Table.from_batches(self.buffer)
        head, rest = table.slice(0, n), table.slice(n)
        self.buffer, self.held = rest.to_batches(), rest.num_rows
        return head.column(0), pc.fill_null(head.column(1), False)


def _where_masks(manifest: Manifest, config: ExportConfig) -> _Masks:
    """Evaluate ``config.where`` in DuckDB over the manifest view, one boolean per row."""
    import duckdb

    from curate.manifests.catalog import connect

    con = connect({"manifest": manifest})
    query = f'SELECT "{S.ID}", coalesce(({config.where}), false) FROM manifest'
    try:
        reader = con.sql(query).to_arrow_reader(config.batch_size)
    except duckdb.Error as exc:
        con.close()
        raise InputError(
            f"--where {config.where!r}: {' '.join(str(exc).split())}; write a SQL condition on "
            f"the manifest's columns {manifest.schema.names}, e.g. --where \"split = 'train'\"."
        ) from exc
    return _Masks(reader, con)
