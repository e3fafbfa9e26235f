"""Write manifests atomically: one Parquet file or a directory of shards, each renamed into
place when whole, with ``_CURATE_IN_PROGRESS`` until the write ends (read by :mod:`.io`)."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import ManifestError, OutputExistsError
from curate.manifests import vectors as V

IN_PROGRESS = "_CURATE_IN_PROGRESS"
SUCCESS = "_SUCCESS"
DEFAULT_SHARD_ROWS = 1_000_000
ROW_GROUP_ROWS = 65_536


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Columns worth dictionary-encoding: flat, non-float ones. Float vectors (embeddings) are
    written plain: dictionary pages never pay off for them and make float16 reads ~5x slower."""
    return [
        f.name
        for f in schema
        if not pa.types.is_nested(f.type) and not pa.types.is_floating(f.type)
    ]


def _statistics_columns(stored: pa.Schema) -> list[str]:
    """Columns that get Parquet min/max statistics: flat ones except stored vectors (their
    statistics would be two meaningless byte strings per page, computed over every value)."""
    return [f.name for f in stored if not pa.types.is_nested(f.type) and not V.is_stored_vector(f)]


def _leaf_paths(name: str, typ: pa.DataType) -> list[str]:
    """The Parquet column paths of an Arrow field (``labels.list.element`` for a list): a
    per-column option keyed by the top-level name alone does not reach a nested column."""
    if pa.types.is_list(typ) or pa.types.is_large_list(typ) or pa.types.is_fixed_size_list(typ):
        return _leaf_paths(f"{name}.list.element", typ.value_type)
    if pa.types.is_map(typ):
        return _leaf_paths(f"{name}.key_value.key", typ.key_type) + _leaf_paths(
            f"{name}.key_value.value", typ.item_type
        )
    if pa.types.is_struct(typ):
        return [p for f in typ for p in _leaf_paths(f"{name}.{f.name}", f.type)]
    return [name]


def _compression(stored: pa.Schema) -> dict[str, str]:
    """Snappy, except for stored vectors: float bits do not compress (< 1% on unit float16
    vectors) and skipping the codec saves its time on every write and read. Keyed by leaf
    column path, so list columns (soft labels, label sets, ids) are compressed too."""
    return {
        path: "none" if V.is_stored_vector(f) else "snappy"
        for f in stored
        for path in _leaf_paths(f.name, f.type)
    }


def default_out(manifest_path: str | os.PathLike, suffix: str) -> Path:
    """Where a step writes when no ``out`` is given: ``NAME-SUFFIX.parquet`` beside a
    ``NAME.parquet`` input, ``DIR-SUFFIX`` beside a directory manifest (``prune`` writes
    ``laion-pruned.parquet`` for ``laion.parquet``)."""
    p = Path(manifest_path)
    if p.suffix == ".parquet":
        return p.with_name(f"{p.stem}-{suffix}.parquet")
    return p.with_name(f"{p.name}-{suffix}")


def prepare_output(
    out: str | os.PathLike, *, overwrite: bool = False, resume: bool = False
) -> Path:
    """Check an output path: refuse an existing one unless ``overwrite`` (or ``resume``)."""
    out = Path(out)
    if out.exists():
        if resume and out.is_dir() and (out / IN_PROGRESS).exists():
            return out
        if not overwrite:
            raise OutputExistsError(
                f"{out}: output already exists; pass --overwrite to replace it"
                + (" (or --resume to finish an interrupted run)." if out.is_dir() else ".")
            )
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    return out


class ManifestWriter:
    """Write a manifest atomically: shards go to temporary files and are renamed when whole.

    ``out`` ending in ``.parquet`` writes one file; anything else writes a directory of
    ``part-NNNNN.parquet`` shards. A directory carries ``_CURATE_IN_PROGRESS`` until
    :meth:`close`, so an interrupted write never reads as a complete manifest, and finished
    shards survive for ``resume``.
    """

    def __init__(
        self,
        out: str | os.PathLike,
        *,
        overwrite: bool = False,
        resume: bool = False,
        rows_per_shard: int = DEFAULT_SHARD_ROWS,
        schema: pa.Schema | None = None,
    ) -> None:
        self.out = prepare_output(out, overwrite=overwrite, resume=resume)
        self.single_file = self.out.suffix == ".parquet"
        self.rows_per_shard = rows_per_shard
        self.schema = schema
        self.rows_written = 0
        self._stream: ShardStream | None = None  # the shard the streaming API is filling
        self._lock = threading.Lock()
        if self.single_file:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self._next_shard = 0
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / IN_PROGRESS).touch()
            for stale in self.out.glob(".*.tmp"):
                stale.unlink()
            done = self.completed_shards()
            self._next_shard = max(done) + 1 if done else 0

    # -- shard-level API (resumable steps) -------------------------------------------------
    def shard_path(self, index: int) -> Path:
        return self.out / f"part-{index:05d}.parquet"

    def completed_shards(self) -> set[int]:
        """Indices of shards already written whole (a rename is the completion marker)."""
        if self.single_file:
            return set()
        return {int(p.stem.split("-")[1]) for p in self.out.glob("part-*.parquet")}

    def write_shard(self, index: int, table: pa.Table | pa.RecordBatch) -> None:
        """Write one whole shard atomically (temporary file, then rename)."""
        if self.single_file:
            raise ValueError("write_shard needs a directory output, not a .parquet file")
        table = self._conform(table)
        stream = ShardStream(self, self.shard_path(index))
        try:
            stream.write(table)
        except BaseException:
            stream.abort()
            raise
        stream.finish(keep_empty=True)

    def open_shard(self, index: int) -> ShardStream:
        """Stream rows into shard ``index``; threads may each fill their own shard at once.

        The schema must be known (``schema=`` or an earlier write). The shard appears only
        when :meth:`ShardStream.finish` renames it into place.
        """
        if self.single_file:
            raise ValueError("open_shard needs a directory output, not a .parquet file")
        if self.schema is None:
            raise ValueError("open_shard needs the schema: pass schema= to ManifestWriter")
        return ShardStream(self, self.shard_path(index))

    def reserve_shards(self, n: int) -> int:
        """Claim the next ``n`` shard indices for :meth:`open_shard`; returns the first."""
        with self._lock:
            first = self._next_shard
            self._next_shard += n
        return first

    def _count(self, rows: int) -> None:
        with self._lock:
            self.rows_written += rows

    # -- streaming API ---------------------------------------------------------------------
    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        """Append rows; shards roll over every ``rows_per_shard`` rows."""
        data = self._conform(data)
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        offset = 0
        while offset < data.num_rows:
            if self._stream is None:
                final = self.out if self.single_file else self.shard_path(self._next_shard)
                self._stream = ShardStream(self, final)
            room = data.num_rows if self.single_file else self.rows_per_shard - self._stream.rows
            piece = data.slice(offset, room)
            self._stream.write(piece)
            offset += piece.num_rows
            if not self.single_file and self._stream.rows >= self.rows_per_shard:
                self._finish_shard()

    def _conform(self, data: pa.Table | pa.RecordBatch) -> pa.Table | pa.RecordBatch:
        if self.schema is None:
            self.schema = data.schema
        if data.schema.equals(self.schema, check_metadata=False):
            return data
        try:
            return data.select(self.schema.names).cast(self.schema)
        except (KeyError, pa.ArrowInvalid, ValueError) as exc:
            raise ManifestError(
                f"{self.out}: batch schema {data.schema} does not match the manifest's "
                f"{self.schema}"
            ) from exc

    def _finish_shard(self) -> None:
        assert self._stream is not None
        self._stream.finish(keep_empty=True)
        self._stream = None
        self._next_shard += 1

    def close(self, run_info: dict | None = None) -> Path:
        """Finish the last shard, write ``run.json`` and mark the manifest complete."""
        if self._stream is None and self.rows_written == 0 and not self.completed_shards():
            if self.schema is None:
                raise ManifestError(f"{self.out}: nothing to write (the input has no rows).")
            # an empty manifest still records its schema
            final = self.out if self.single_file else self.shard_path(self._next_shard)
            self._stream = ShardStream(self, final)
        if self._stream is not None:
            self._finish_shard()
        if run_info is not None:
            from curate.manifests.runinfo import write_run_json

            write_run_json(self.out, run_info)
        if not self.single_file:
            (self.out / IN_PROGRESS).unlink(missing_ok=True)
        return self.out

    def abort(self) -> None:
        """Drop the open temporary shard; finished shards stay for a resume."""
        if self._stream is not None:
            self._stream.abort()
            self._stream = None

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


class ShardStream:
    """One Parquet file of a :class:`ManifestWriter` (a shard, or the single ``.parquet``
    output), streamed to a hidden temporary file beside ``path`` and renamed into place by
    :meth:`finish`; :meth:`abort` removes it. Every write path of the writer goes through one,
    and it is where vector columns take their stored form (:mod:`curate.manifests.vectors`).
    Threads get their own with ``ManifestWriter.open_shard``.
    """

    def __init__(self, owner: ManifestWriter, path: Path) -> None:
        self._owner = owner
        self.path = path
        self._tmp = path.with_name(f".{path.name}.tmp")
        self.rows = 0
        self._stored = V.storage_schema(owner.schema)
        self._writer = pq.ParquetWriter(
            self._tmp,
            self._stored,
            use_dictionary=_dictionary_columns(owner.schema),
            write_statistics=_statistics_columns(self._stored),
            compression=_compression(self._stored),
        )

    def write(self, data: pa.Table | pa.RecordBatch) -> None:
        data = V.encode_columns(self._owner._conform(data), self._stored)
        self._writer.write_table(data, row_group_size=ROW_GROUP_ROWS)
        self.rows += data.num_rows
        self._owner._count(data.num_rows)

    def finish(self, *, keep_empty: bool = False) -> None:
        """Close and rename into place; a file that got no rows is dropped unless
        ``keep_empty`` (an empty manifest still records its schema)."""
        self._writer.close()
        if self.rows == 0 and not keep_empty:
            self._tmp.unlink(missing_ok=True)
            return
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)


def write_manifest(
    data: pa.Table | Iterable[pa.RecordBatch | pa.Table],
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    run_info: dict | None = None,
    schema: pa.Schema | None = None,
    rows_per_shard: int = DEFAULT_SHARD_ROWS,
) -> Path:
    """Write a table or a stream of batches as a manifest; returns the output path."""
    if isinstance(data, pa.Table):
        schema = schema or data.schema
        data = [data]
    with ManifestWriter(
        out, overwrite=overwrite, schema=schema, rows_per_shard=rows_per_shard
    ) as w:
        for part in data:
            w.write(part)
        return w.close(run_info)
