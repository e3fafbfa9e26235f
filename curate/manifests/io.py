"""Read and write manifests: one Parquet file or a directory of Parquet shards, streamed.

Reading is here (:class:`Manifest`); writing is :mod:`curate.manifests.writer`, re-exported.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import InputError, ManifestError
from curate.manifests import _prefetch
from curate.manifests import schema as S
from curate.manifests import vectors as V
from curate.manifests.writer import (
    DEFAULT_SHARD_ROWS,
    IN_PROGRESS,
    ROW_GROUP_ROWS,
    SUCCESS,
    ManifestWriter,
    ShardStream,
    default_out,
    prepare_output,
    write_manifest,
)

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "UNREADABLE",
    "DEFAULT_SHARD_ROWS",
    "IN_PROGRESS",
    "ROW_GROUP_ROWS",
    "SUCCESS",
    "Manifest",
    "ManifestWriter",
    "ShardStream",
    "open_manifest",
    "default_out",
    "prepare_output",
    "write_manifest",
]

DEFAULT_BATCH_ROWS = 65_536
#: Bytes a read buffers per column chunk (see ``Manifest._file_batches``).
READ_BUFFER = 1 << 20


#: The fix for an unreadable file of a manifest, for messages.
UNREADABLE = "rerun the step that wrote it (with --overwrite), or remove the file"


def _is_data_file(p: Path) -> bool:
    return p.suffix == ".parquet" and not p.name.startswith((".", "_"))


def read_problem(path: Path, exc: BaseException) -> str:
    """Why pyarrow could not read a Parquet file, in the user's words."""
    if isinstance(exc, PermissionError):
        return "permission denied (make it readable: chmod u+r, or run as its owner)"
    if isinstance(exc, IsADirectoryError):
        return "a directory where a file was expected"
    try:
        if path.is_file() and path.stat().st_size == 0:
            return "the file is empty (0 bytes)"
    except OSError:
        pass
    text = " ".join(str(exc).split())
    if "magic bytes" in text:
        return "no Parquet footer (not Parquet, or truncated)"
    return f"corrupt ({text})"


def parquet_error(path: Path, exc: BaseException, *, fix: str, error: type = ManifestError):
    """The error to raise for an unreadable Parquet file: the file, what is wrong, the fix."""
    return error(f"{path}: not a readable Parquet file: {read_problem(path, exc)}; {fix}.")


def read_footer(path: Path, *, fix: str, error: type = ManifestError) -> pq.FileMetaData:
    """The footer of a Parquet file; an unreadable file raises ``error`` naming it and ``fix``."""
    try:
        return pq.read_metadata(path)
    except (pa.ArrowException, OSError) as exc:
        raise parquet_error(path, exc, fix=fix, error=error) from exc


class Manifest:
    """A manifest on disk; reads stream record batches, so no step needs the whole table.

    Parameters
    ----------
    path
        A ``.parquet`` file or a directory of Parquet shards.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file or directory; check the path.")
        if self.path.is_dir():
            if (self.path / IN_PROGRESS).exists():
                raise ManifestError(
                    f"{self.path}: incomplete manifest (the run that wrote it was interrupted). "
                    "Rerun the step that writes it (it resumes), or pass --overwrite to start over."
                )
            try:
                self.files = sorted(p for p in self.path.rglob("*.parquet") if _is_data_file(p))
            except OSError as exc:
                raise parquet_error(self.path, exc, fix="check the folder") from exc
            if not self.files:
                raise ManifestError(
                    f"{self.path}: the directory holds no .parquet files, so it is not a "
                    "manifest; give a manifest (a .parquet file or a folder of them), or make "
                    f"one: curate ingest {self.path} -o OUT."
                )
        else:
            self.files = [self.path]
        self._metas = [read_footer(f, fix=UNREADABLE) for f in self.files]
        #: the schema as stored in the first file (vector columns as raw bytes)
        self.storage_schema: pa.Schema = self._metas[0].schema.to_arrow_schema()
        #: the schema steps see: vector columns as ``FixedSizeList<float, dim>``
        self.schema: pa.Schema = V.logical_schema(self.storage_schema)

    @property
    def num_rows(self) -> int:
        """Rows over all shards, from Parquet footers (nothing is read)."""
        return sum(m.num_rows for m in self._metas)

    def row_group_starts(self) -> list[int]:
        """The first row (manifest order) of every Parquet row group, from the footers."""
        starts, row = [], 0
        for meta in self._metas:
            for g in range(meta.num_row_groups):
                starts.append(row)
                row += meta.row_group(g).num_rows
        return starts

    @property
    def nbytes_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    @property
    def class_names(self) -> list[str] | None:
        return S.class_names(self.schema)

    @property
    def run_info(self) -> dict | None:
        from curate.manifests.runinfo import read_run_json

        return read_run_json(self.path)

    def validate(self, *, required: Iterable[str] = (S.ID,), hint: str = "") -> Manifest:
        """Check required columns and known column types; return self."""
        S.validate_schema(self.schema, source=str(self.path), required=required, hint=hint)
        return self

    def iter_batches(
        self,
        columns: list[str] | None = None,
        *,
        batch_size: int = DEFAULT_BATCH_ROWS,
        prefetch: int = 0,
        rows: tuple[int, int] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Yield record batches of at most ``batch_size`` rows, shard by shard.

        ``prefetch=n`` decodes up to ``n`` batches ahead in a background thread, so reading
        overlaps the caller's work (memory grows by ``n`` batches). ``rows=(lo, hi)`` reads
        only rows ``lo`` to ``hi - 1`` (manifest order), touching only the row groups that
        hold them, so several threads can read disjoint ranges at once.
        """
        if columns is not None:
            missing = [c for c in columns if c not in self.schema.names]
            if missing:
                raise ManifestError(
                    f"{self.path}: no column(s) {missing}; it has {self.schema.names}."
                )
        lo, hi = rows if rows is not None else (0, self.num_rows)
        batches = self._batches(columns, batch_size, lo, hi)
        yield from _prefetch.prefetch(batches, prefetch)

    def _batches(
        self, columns: list[str] | None, batch_size: int, lo: int, hi: int
    ) -> Iterator[pa.RecordBatch]:
        file_start = 0  # first row of the current file, in manifest order
        for f, meta in zip(self.files, self._metas, strict=True):
            groups, group_start, row = [], None, file_start
            for g in range(meta.num_row_groups):
                g_rows = meta.row_group(g).num_rows
                if row < hi and row + g_rows > lo:
                    groups.append(g)
                    group_start = row if group_start is None else group_start
                row += g_rows
            file_start += meta.num_rows
            if not groups:
                continue
            skip = max(0, lo - group_start)  # rows of the first group before ``lo``
            want = min(hi, file_start) - max(lo, group_start)
            try:
                yield from self._file_batches(f, columns, batch_size, groups, skip, want)
            except (pa.ArrowException, OSError) as exc:
                raise parquet_error(f, exc, fix=UNREADABLE) from exc

    @staticmethod
    def _file_batches(
        f: Path, columns: list[str] | None, batch_size: int, groups: list[int], skip: int, want: int
    ) -> Iterator[pa.RecordBatch]:
        """``want`` rows of ``f``'s row groups ``groups``, after skipping ``skip``."""
        # pre_buffer=False: pre-buffering caches every requested row group, so memory
        # would grow with the file. buffer_size: read each column chunk through a small
        # buffered stream, page by page, instead of whole: memory holds about one batch, not
        # one row group (a 65,536-row group of images is ~150 MB), and reads are no slower.
        pf = pq.ParquetFile(f, pre_buffer=False, buffer_size=READ_BUFFER)
        stored = pf.schema_arrow
        for batch in pf.iter_batches(batch_size=batch_size, row_groups=groups, columns=columns):
            batch = V.decode_columns(batch, stored)
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            batch = batch.slice(skip, want)
            skip, want = 0, want - batch.num_rows
            if batch.num_rows:
                yield batch
            if want <= 0:
                break

    @property
    def column_names(self) -> list[str]:
        """The manifest's columns, as :attr:`pyarrow.Table.column_names`."""
        return self.schema.names

    def column(self, name: str) -> pa.ChunkedArray:
        """One column read into memory, as :meth:`pyarrow.Table.column` (``m.column("keep")``);
        a name the manifest does not have is a :class:`KeyError` listing the ones it has."""
        if name not in self.schema.names:
            raise KeyError(f"{self.path}: no column {name!r}; it has {self.schema.names}")
        return self.read([name]).column(0)

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """Read the whole manifest (or some columns) into memory; for small manifests."""
        batches = list(self.iter_batches(columns))
        sch = (
            self.schema
            if columns is None
            else pa.schema([self.schema.field(c) for c in columns], metadata=self.schema.metadata)
        )
        if not batches:
            return sch.empty_table()
        return pa.Table.from_batches(batches).replace_schema_metadata(sch.metadata)


def open_manifest(path: str | os.PathLike | Manifest) -> Manifest:
    """Open a manifest (a no-op for an already open one)."""
    return path if isinstance(path, Manifest) else Manifest(path)
