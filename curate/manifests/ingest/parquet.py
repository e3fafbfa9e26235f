"""Parquet sources: LAION/DataComp-style metadata, HF Parquet exports, curate manifests."""

from __future__ import annotations

from collections.abc import Iterator
from glob import glob
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests import vectors as V
from curate.manifests.ingest import columns as C
from curate.manifests.ingest.base import Adapter, IngestContext, detect_files, is_glob
from curate.manifests.ingest.images import probe_images
from curate.manifests.ingest.labels import StringLabels, is_string_type
from curate.manifests.io import IN_PROGRESS, parquet_error, read_footer

#: Rows per batch of the first pass that collects the distinct string labels.
LABEL_PASS_ROWS = 65_536
#: The fix for an unreadable source file.
_FIX = "re-export it from its source, or move it out of the input"


def _is_data_file(p: Path) -> bool:
    return p.suffix == ".parquet" and not p.name.startswith((".", "_"))


def parquet_files(src: Path) -> list[Path]:
    """The Parquet files of a file, a folder (recursively) or a glob, sorted."""
    if is_glob(src):
        return sorted(Path(p) for p in glob(str(src), recursive=True) if _is_data_file(Path(p)))
    if src.is_dir():
        return sorted(p for p in src.rglob("*.parquet") if _is_data_file(p))
    return [src] if src.suffix == ".parquet" else []


def _suggest(names: list[str]) -> str:
    for target in (S.URL, S.IMAGE, S.TEXT, S.PATH):
        for n in names:
            if target in n.lower():
                return f" e.g. --map {n}={target}"
    return " e.g. --map image_url=url"


def image_bytes(table: pa.Table) -> pa.Table:
    """Unpack an HF-style ``image`` struct {bytes, path} into ``image`` bytes (+ ``path``)."""
    if S.IMAGE not in table.column_names:
        return table
    col = table.column(S.IMAGE)
    if not pa.types.is_struct(col.type) or col.type.get_field_index("bytes") < 0:
        return table
    col = col.combine_chunks()
    table = C.set_column(table, S.IMAGE, col.field("bytes").cast(pa.binary()))
    if col.type.get_field_index("path") >= 0 and S.PATH not in table.column_names:
        table = table.append_column(S.PATH, col.field("path").cast(pa.string()))
    return table


def probe_column(table: pa.Table, ctx: IngestContext) -> pa.Table:
    """Decode the ``image`` column in workers: add ``width``/``height``, flag bad images."""
    if S.IMAGE not in table.column_names or not ctx.config.verify_images:
        return C.ensure_error(table)
    images = table.column(S.IMAGE).to_pylist()
    probed = ctx.pool.map_list(probe_images, images)
    for i, name in ((0, "width"), (1, "height")):
        if name not in table.column_names:
            table = table.append_column(name, pa.array([p[i] for p in probed], pa.int32()))
    errors = [
        p[2] if b is not None else "missing_image: the image cell is null"
        for b, p in zip(images, probed, strict=True)
    ]
    return C.ensure_error(table, errors)


class ParquetAdapter(Adapter):
    """Rows of Parquet files, columns normalised: ``caption``/``TEXT`` -> ``text``,
    ``key``/``uid`` -> ``id`` (else the row number), ``URL`` -> ``url``; ``--map`` first."""

    name = "parquet"

    def detect(self, src: Path) -> bool:
        return detect_files(src, ".parquet", parquet_files)

    def num_rows(self, ctx: IngestContext) -> int | None:
        return sum(_footer(f).num_rows for f in parquet_files(ctx.src))

    def _metadata(self, first: Path, ctx: IngestContext) -> dict[bytes, bytes]:
        meta = _footer(first).schema.to_arrow_schema().metadata or {}
        kept = C.keep_curate_metadata(meta)
        hf_names = C.hf_class_names(meta, _label_source(ctx))
        if S.CLASS_NAMES_KEY not in kept and hf_names:
            kept = dict(S.with_class_names(pa.schema([]), hf_names).metadata)
        return kept

    def _string_labels(
        self, files: list[Path], ctx: IngestContext, names: list[str] | None
    ) -> StringLabels | None:
        """The mapping of a string ``label`` column (None for integer labels): the given
        names, or the sorted distinct values from a first pass over that column alone."""
        col = _label_source(ctx)
        schema = _footer(files[0]).schema.to_arrow_schema()
        if col not in schema.names or not is_string_type(schema.field(col).type):
            return None
        values = (b.column(0) for f in files for b in _batches(f, LABEL_PASS_ROWS, [col]))
        labels = StringLabels.plan(ctx.config.class_names or names, lambda: values)
        ctx.labels = labels.record()
        return labels

    def _normalise(
        self,
        table: pa.Table,
        ctx: IngestContext,
        source: str,
        offset: int,
        labels: StringLabels | None,
    ) -> pa.Table:
        table = C.rename_columns(table, ctx.config.column_map, source=source)
        table = image_bytes(C.apply_aliases(table))
        if labels is not None and S.LABEL in table.column_names:
            codes = labels.encode(table.column(S.LABEL), source=source, row_offset=offset)
            table = C.set_column(table, S.LABEL, codes)
        if not any(c in table.column_names for c in C.SAMPLE_COLUMNS):
            raise InputError(
                f"{source}: missing required column: one of {list(C.SAMPLE_COLUMNS)} must say "
                f"where each sample is or what it holds; it has {table.column_names}. Rename "
                f"yours with --map old=new,{_suggest(table.column_names)}."
            )
        table = C.ensure_id(table, row_offset=offset)
        table = C.ensure_split(table, ctx.config.split)
        S.validate_schema(table.schema, source=source, hint="Rename columns with --map old=new.")
        return probe_column(table, ctx)

    def read(self, ctx: IngestContext) -> Iterator[pa.Table]:
        if ctx.src.is_dir() and (ctx.src / IN_PROGRESS).exists():
            raise InputError(
                f"{ctx.src}: an incomplete manifest (the run that wrote it was interrupted); "
                "rerun that step first."
            )
        files = parquet_files(ctx.src)
        if not files:
            raise InputError(
                f"{ctx.src}: no .parquet files found; give a .parquet file, a folder of them "
                "or a glob (or --format for another format)."
            )
        for f in files:
            _footer(f)  # every file is readable before any row is written
        meta = self._metadata(files[0], ctx)
        names = S.class_names(pa.schema([], metadata=meta))
        labels = self._string_labels(files, ctx, names)
        if labels is not None:
            names = labels.class_names
            meta = C.keep_curate_metadata(
                S.with_class_names(pa.schema([], metadata=meta), names).metadata
            )
        offset = 0
        for f in files:
            for batch in _batches(f, ctx.config.batch_size):
                table = pa.Table.from_batches([batch])
                table = self._normalise(table, ctx, str(f), offset, labels)
                C.check_labels(
                    table, ctx.config.class_names or names, source=str(f), row_offset=offset
                )
                offset += table.num_rows
                yield table.replace_schema_metadata(meta)


def _footer(f: Path) -> pq.FileMetaData:
    return read_footer(f, fix=_FIX, error=InputError)


def _label_source(ctx: IngestContext) -> str:
    """The source column that becomes ``label`` (``--map`` may rename one onto it)."""
    return next((o for o, n in ctx.config.column_map.items() if n == S.LABEL), S.LABEL)


def _batches(
    f: Path, batch_size: int, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """The record batches of one source file (a curate manifest's vectors decoded); a file
    that turns out corrupt past its footer raises an error naming it."""
    try:
        pf = pq.ParquetFile(f)
        for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
            yield V.decode_columns(batch, pf.schema_arrow)
    except (pa.ArrowException, OSError) as exc:
        raise parquet_error(f, exc, fix=_FIX, error=InputError) from exc
