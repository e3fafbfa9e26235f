"""Hugging Face ``datasets`` saved with ``save_to_disk`` (a Dataset or a DatasetDict of splits)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError, require
from curate.manifests import schema as S
from curate.manifests.ingest import columns as C
from curate.manifests.ingest.base import Adapter, IngestContext
from curate.manifests.ingest.labels import StringLabels
from curate.manifests.ingest.parquet import image_bytes, probe_column

MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


def _renames(features: dict, column_map: dict[str, str]) -> dict[str, str]:
    """``--map`` renames, plus the first Image feature -> ``image``, one ClassLabel -> ``label``."""
    datasets = require("datasets", "hf")
    renames = dict(column_map)
    after = {renames.get(k, k): v for k, v in features.items()}
    if S.IMAGE not in after:
        img = [k for k, v in features.items() if isinstance(v, datasets.Image) and k not in renames]
        if img:
            renames[img[0]] = S.IMAGE
    if S.LABEL not in after:
        cls = [
            k
            for k, v in features.items()
            if isinstance(v, datasets.ClassLabel) and k not in renames
        ]
        if len(cls) == 1:
            renames[cls[0]] = S.LABEL
    return renames


def _class_names(features: dict, renames: dict[str, str]) -> list[str] | None:
    datasets = require("datasets", "hf")
    for k, v in features.items():
        if renames.get(k, k) == S.LABEL and isinstance(v, datasets.ClassLabel):
            return list(v.names)
    return None


def _string_labels(
    splits: list, features: dict, renames: dict[str, str], ctx: IngestContext
) -> StringLabels | None:
    """The mapping of a string ``Value`` feature that becomes ``label`` (None otherwise): the
    given names, or the sorted distinct values from a pass over that column alone."""
    datasets = require("datasets", "hf")
    col = next((k for k in features if renames.get(k, k) == S.LABEL), None)
    feat = features.get(col)
    if not isinstance(feat, datasets.Value) or feat.dtype not in ("string", "large_string"):
        return None

    def values():
        for _, ds in splits:
            for t in ds.select_columns([col]).with_format("arrow").iter(batch_size=65_536):
                yield t.column(0)

    labels = StringLabels.plan(ctx.config.class_names, values)
    ctx.labels = labels.record()
    return labels


def _fill_from_paths(table: pa.Table) -> pa.Table:
    """Read image files that the dataset references by path instead of holding bytes."""
    if S.IMAGE not in table.column_names or S.PATH not in table.column_names:
        return table
    images = table.column(S.IMAGE)
    if not images.null_count:
        return table
    filled = []
    for data, path in zip(images.to_pylist(), table.column(S.PATH).to_pylist(), strict=True):
        if data is None and path and Path(path).is_file():
            data = Path(path).read_bytes()
        filled.append(data)
    return C.set_column(table, S.IMAGE, pa.array(filled, pa.binary()))


def _no_label_to_null(table: pa.Table) -> pa.Table:
    """HF marks an unlabelled row with -1; a manifest leaves its label null."""
    if S.LABEL not in table.column_names or not pa.types.is_integer(
        table.schema.field(S.LABEL).type
    ):
        return table
    col = table.column(S.LABEL)
    return C.set_column(table, S.LABEL, pc.if_else(pc.less(col, 0), pa.scalar(None, col.type), col))


class HFAdapter(Adapter):
    """Rows of each split (``split`` column from a DatasetDict); ClassLabel names kept; an
    ``Image`` feature becomes ``image`` bytes as stored (PNG/JPEG), with width and height."""

    name = "hf"

    def detect(self, src: Path) -> bool:
        return src.is_dir() and any((src / m).exists() for m in MARKERS)

    def _splits(self, ctx: IngestContext) -> list[tuple[str | None, object]]:
        datasets = require("datasets", "hf")
        try:
            ds = datasets.load_from_disk(str(ctx.src))
        except (FileNotFoundError, ValueError, OSError, pa.ArrowException) as exc:
            raise InputError(
                f"{ctx.src}: not a readable save_to_disk dataset ({exc}); pass --format if it "
                "is another format."
            ) from exc
        if isinstance(ds, datasets.DatasetDict):
            return list(ds.items())
        return [(None, ds)]

    def num_rows(self, ctx: IngestContext) -> int | None:
        return sum(d.num_rows for _, d in self._splits(ctx))

    def _normalise(
        self, table: pa.Table, ctx: IngestContext, renames: dict, split, offset: int, labels
    ) -> pa.Table:
        source = str(ctx.src) + (f" (split {split})" if split else "")
        table = C.rename_columns(table, renames, source=source)
        if labels is not None:
            codes = labels.encode(table.column(S.LABEL), source=source, row_offset=offset)
            table = C.set_column(table, S.LABEL, codes)
        table = _fill_from_paths(image_bytes(C.apply_aliases(table)))
        table = C.ensure_id(table, row_offset=offset, prefix=f"{split}/" if split else "")
        table = C.ensure_split(table, split or ctx.config.split)
        table = _no_label_to_null(table)
        S.validate_schema(table.schema, source=source, hint="Rename columns with --map old=new.")
        return probe_column(table, ctx)

    def read(self, ctx: IngestContext) -> Iterator[pa.Table]:
        splits = self._splits(ctx)
        features = dict(splits[0][1].features)
        renames = _renames(features, ctx.config.column_map)
        names = _class_names(features, renames)
        labels = _string_labels(splits, features, renames, ctx)
        if labels is not None:
            names = labels.class_names
        meta = S.with_class_names(pa.schema([]), ctx.config.class_names or names).metadata
        for split, ds in splits:
            offset = 0
            for table in ds.with_format("arrow").iter(batch_size=ctx.config.batch_size):
                table = self._normalise(table, ctx, renames, split, offset, labels)
                offset += table.num_rows
                yield table.replace_schema_metadata(meta)
