"""``ingest``: turn a folder, Parquet, HF dataset, WebDataset tars or arrays into a manifest."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curate.engines import local_only
from curate.engines.options import progress_mode
from curate.engines.progress import Progress
from curate.errors import InputError, OutputExistsError
from curate.manifests import schema as S
from curate.manifests.ingest.base import (
    Adapter,
    IngestConfig,
    IngestContext,
    is_glob,
    missing_path_error,
)
from curate.manifests.ingest.detect import ADAPTERS, detect_format
from curate.manifests.ingest.embeddings import embedding_source
from curate.manifests.ingest.ids import IdChecker
from curate.manifests.ingest.images import WorkerPool
from curate.manifests.io import Manifest, ManifestWriter
from curate.manifests.runinfo import make_run_info
from curate.manifests.writer import default_out

#: The kind of each message in an ``error`` cell: ``kind: detail[; kind: detail]``.
_KIND = re.compile(r"(?:^|; )([a-z][a-z0-9_]*):")
#: Write once this many rows or bytes are buffered: one Parquet row group per write, so row
#: groups hold ~32 MB of images or 64k rows of metadata, and memory stays bounded.
BUFFER_BYTES = 32 * 2**20
BUFFER_ROWS = 65_536


def get_adapter(name: str) -> Adapter:
    """The adapter for a format name; an unknown name raises a ValueError listing valid ones."""
    try:
        return ADAPTERS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; valid formats: {sorted(ADAPTERS)}") from None


def failure_counts(errors: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    """Count row errors by kind (the text before ``:`` of each ``; ``-joined message)."""
    counts: dict[str, int] = {}
    for message in pc.drop_null(errors).to_pylist():
        for kind in _KIND.findall(message) or ["error"]:
            counts[kind] = counts.get(kind, 0) + 1
    return counts


def default_source_out(src: str | os.PathLike) -> Path:
    """Where ingest writes without ``out``: ``NAME-ingested`` beside the source (a folder,
    or a file without its suffix), ``NAME-ingested.parquet`` for ``NAME.parquet``; a glob
    is named by its folder (``shards/*.tar`` -> ``shards-ingested``)."""
    p = Path(src)
    while is_glob(p):
        p = p.parent
    if p.suffix == ".parquet" or not p.suffix:
        return default_out(p, "ingested")
    return p.with_name(f"{p.stem}-ingested")


def _check_paths(src: Path, out: Path, overwrite: bool) -> None:
    if not src.exists() and not is_glob(src):
        raise missing_path_error(src)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: output already exists; pass --overwrite to replace it.")
    s, o = src.resolve(), out.resolve()
    if o == s or s.is_relative_to(o) or (src.is_dir() and o.is_relative_to(s)):
        raise InputError(
            f"{out}: the output must not be the input or contain it (or lie inside an input "
            "folder); choose another output path."
        )


class _Run:
    """One ingest run: buffers tables, attaches embeddings, checks ids, writes, cleans up."""

    def __init__(self, ctx: IngestContext, out: Path, adapter: Adapter, overwrite: bool) -> None:
        self.ctx, self.out, self.adapter, self.overwrite = ctx, out, adapter, overwrite
        self.writer: ManifestWriter | None = None
        self.ids = IdChecker()
        self.embed = None
        self.buffer: list[pa.Table] = []
        self.schema: pa.Schema | None = None
        self.failures: dict[str, int] = {}
        self.error_rows = 0
        self.rows = 0

    def _first(self, table: pa.Table) -> None:
        cfg = self.ctx.config
        self.embed = embedding_source(cfg.embeddings, cfg.embedding_column, table)
        if self.embed is not None and hasattr(self.embed, "check_rows"):
            self.embed.check_rows(self.adapter.num_rows(self.ctx))

    def add(self, table: pa.Table) -> None:
        if self.schema is None:  # the first table decides the embedding source and schema
            self._first(table)
        if self.embed is not None:
            table = self.embed.attach(table)
        table = self._conform(table)
        self.ids.add(table.column(S.ID))
        errors = table.column(S.ERROR)
        self.error_rows += len(errors) - errors.null_count
        for kind, n in failure_counts(errors).items():
            self.failures[kind] = self.failures.get(kind, 0) + n
        self.rows += table.num_rows
        self.buffer.append(table)
        rows = min(BUFFER_ROWS, self.ctx.config.rows_per_shard)
        if sum(t.num_rows for t in self.buffer) >= rows or (
            sum(t.nbytes for t in self.buffer) >= BUFFER_BYTES
        ):
            self.flush()

    def _conform(self, table: pa.Table) -> pa.Table:
        if self.schema is None:
            self.schema = table.schema
            return table
        if table.schema.equals(self.schema):
            return table
        try:
            return table.select(self.schema.names).cast(self.schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
            raise InputError(
                f"{self.ctx.src}: row {self.rows} onwards has columns {table.schema} that do not "
                f"match the first rows' {self.schema}; make the input's columns consistent "
                "(or --map them)."
            ) from exc

    def flush(self) -> None:
        if not self.buffer:
            return
        table = pa.concat_tables(self.buffer, promote_options="none")
        self.buffer = []
        if self.writer is None:
            self.writer = ManifestWriter(
                self.out,
                overwrite=self.overwrite,
                rows_per_shard=self.ctx.config.rows_per_shard,
                schema=table.schema,
            )
        self.writer.write(table)

    def finish(self, run_info: dict) -> Path:
        if self.embed is not None:
            self.embed.finish()
        self.ids.check(source=str(self.ctx.src))
        self.flush()
        assert self.writer is not None
        return self.writer.close(run_info)

    def fail(self) -> None:
        """Drop whatever was written: an ingest that stopped leaves no output behind."""
        if self.writer is not None:
            self.writer.abort()
            if self.out.is_dir():
                shutil.rmtree(self.out, ignore_errors=True)
            else:
                self.out.unlink(missing_ok=True)

    def counts(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "error_rows": self.error_rows,
            "failures": self.failures,
            **({"notes": self.ctx.notes} if self.ctx.notes else {}),
        }


def _conform_schema(tables: Iterator[pa.Table], names: list[str] | None) -> Iterator[pa.Table]:
    """Give every table the schema (with class names) of the first one."""
    schema: pa.Schema | None = None
    for t in tables:
        if schema is None:
            schema = S.with_class_names(t.schema, names) if names else t.schema
        yield t.replace_schema_metadata(schema.metadata)


def ingest(
    src: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    config: IngestConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
    format: str | None = None,
    **options: Any,
) -> Manifest:
    """Ingest a dataset into a manifest at ``out`` and return it.

    Parameters
    ----------
    src
        An ImageFolder tree, a Parquet file or folder, a ``save_to_disk`` Hugging Face dataset,
        WebDataset ``.tar`` shards (a file, a folder or a glob), or ``.npz``/``.npy`` arrays.
    out
        A directory of Parquet shards, or one ``.parquet`` file; ``run.json`` goes beside it.
        Default: ``NAME-ingested`` beside the source (``NAME-ingested.parquet`` for a
        ``NAME.parquet`` file; a glob's folder names it).
    config
        An :class:`IngestConfig`; or give its fields as keyword ``options``
        (``column_map=``, ``embeddings=``, ``embedding_column=``, ``workers=``, ``split=``,
        ``labels=``, ``class_names=``, ``batch_size=``, ``rows_per_shard=``, ``verify_images=``).
    engine, ray_address
        ``"local"`` only: ingest reads one source on this machine (its image decode runs in
        ``workers`` processes); the steps after it run on Ray. ``"ray"`` is an error saying so.
    progress
        ``auto``, ``bar``, ``lines`` or ``off``: rows read, with a line at least every 25 s in
        a log.
    overwrite
        Replace ``out`` if it exists (otherwise an existing output is an error).
    format
        One of ``imagefolder``, ``parquet``, ``hf``, ``webdataset``, ``numpy``; None detects it.

    Returns
    -------
    Manifest
        The written manifest; ``manifest.run_info["counts"]`` has the rows, the rows with an
        error and the failures by kind. Rows that could not be read are kept with ``error`` set.
    """
    if config is None:
        config = IngestConfig.from_options(options)
    elif options:
        raise TypeError("give either config= or keyword options, not both")
    local_only("ingest", engine, ray_address, "it reads one source on this machine, decoding "
               "images in --workers processes")  # fmt: skip
    progress = progress_mode(progress)
    out = default_source_out(src) if out is None else out
    src_path, out_path = Path(src), Path(out)
    _check_paths(src_path, out_path, overwrite)
    name = format or detect_format(src_path)
    adapter = get_adapter(name)
    t0 = time.perf_counter()
    with WorkerPool(config.workers).start() as pool:
        ctx = IngestContext(src=src_path, config=config, pool=pool)
        run = _Run(ctx, out_path, adapter, overwrite)
        bar = Progress(f"ingest {name}", adapter.num_rows(ctx), mode=progress)
        try:
            with ExitStack() as shown:  # shown from the first rows: a bad source is one line
                for i, table in enumerate(_conform_schema(adapter.read(ctx), config.class_names)):
                    if i == 0:
                        shown.enter_context(bar)
                    run.add(table)
                    bar.advance(table.num_rows)
            if run.rows == 0:
                raise InputError(
                    f"{src_path}: the input holds no rows (no samples found as {name}); "
                    "check the path, or pass --format if it was misdetected."
                )
            seconds = round(time.perf_counter() - t0, 3)
            info = make_run_info(
                "ingest",
                config={
                    "format": name,
                    "source": str(src_path),
                    "workers": pool.workers,
                    **{k: v for k, v in vars(config).items() if k != "workers"},
                },
                inputs={"source": src_path},
                counts=run.counts(),
                timings={"total_s": seconds},
                **({"labels": ctx.labels} if ctx.labels else {}),
            )
            run.finish(info)
        except BaseException:
            run.fail()
            raise
        finally:
            run.ids.close()
    return Manifest(out_path)
