"""Column normalisation shared by the adapters: renames, aliases, ids, splits, errors."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError
from curate.manifests import schema as S

#: Source column names that mean a manifest column (LAION, DataComp, img2dataset, HF, WDS).
ALIASES: dict[str, tuple[str, ...]] = {
    S.ID: ("key", "uid", "SAMPLE_ID", "sample_id"),
    S.TEXT: ("caption", "TEXT", "CAPTION"),
    S.URL: ("URL",),
    "width": ("WIDTH",),
    "height": ("HEIGHT",),
}

#: Source columns that can locate or hold a sample; a Parquet source needs one of them.
SAMPLE_COLUMNS = (S.URL, S.PATH, S.IMAGE, S.TEXT)


def rename_columns(table: pa.Table, mapping: Mapping[str, str], *, source: str) -> pa.Table:
    """Apply ``--map old=new`` renames; a name not in the table is an error naming it."""
    if not mapping:
        return table
    missing = [old for old in mapping if old not in table.column_names]
    if missing:
        raise InputError(
            f"{source}: --map names column(s) {missing} that are not in the input; "
            f"its columns are {table.column_names}."
        )
    clash = [
        new for old, new in mapping.items() if new in table.column_names and new not in mapping
    ]
    if clash:
        raise InputError(
            f"{source}: --map would rename onto existing column(s) {clash}; rename or drop "
            f"those first (e.g. --map {clash[0]}=source_{clash[0]})."
        )
    return table.rename_columns([mapping.get(c, c) for c in table.column_names])


def apply_aliases(table: pa.Table) -> pa.Table:
    """Rename the first alias present of each manifest column that the table lacks."""
    names = list(table.column_names)
    for target, aliases in ALIASES.items():
        if target in names:
            continue
        for alias in aliases:
            if alias in names:
                names[names.index(alias)] = target
                break
    return table.rename_columns(names)


def set_column(
    table: pa.Table, name: str, values: pa.Array, *, position: int | None = None
) -> pa.Table:
    """Replace column ``name`` or add it (at ``position``, else at the end)."""
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    if position is None:
        return table.append_column(name, values)
    return table.add_column(position, name, values)


def ensure_id(table: pa.Table, *, row_offset: int, prefix: str = "") -> pa.Table:
    """Make ``id`` a string column, first; number the rows from ``row_offset`` when absent."""
    if S.ID in table.column_names:
        col = table.column(S.ID)
        if col.null_count:
            first = col.is_null().to_pylist().index(True)
            raise InputError(
                f"row {row_offset + first}: id is null ({col.null_count} null ids in this batch); "
                "every row needs an id: --map a unique column to id, or rename this one "
                "(--map id=source_id) to number the rows."
            )
        ids = col.cast(pa.string()) if not pa.types.is_string(col.type) else col
        table = table.drop_columns([S.ID])
    else:
        n = table.num_rows
        ids = pa.array([f"{prefix}{i}" for i in range(row_offset, row_offset + n)], pa.string())
    return table.add_column(0, S.ID, ids)


def ensure_error(table: pa.Table, errors: Sequence[str | None] | None = None) -> pa.Table:
    """Add or merge the ``error`` column; messages for one row are joined with ``; ``."""
    new = pa.array(errors if errors is not None else [None] * table.num_rows, pa.string())
    if S.ERROR in table.column_names:
        old = table.column(S.ERROR).cast(pa.string())
        both = pc.binary_join_element_wise(old, new, "; ", null_handling="skip")
        new = pc.if_else(
            pc.and_(old.is_null(), new.is_null()), pa.nulls(len(new), pa.string()), both
        )
        return set_column(table, S.ERROR, new)
    return table.append_column(S.ERROR, new)


def ensure_split(table: pa.Table, split: str | None) -> pa.Table:
    """Add a constant ``split`` column when one is given and the table has none."""
    if split is None or S.SPLIT in table.column_names:
        return table
    return table.append_column(S.SPLIT, pa.array([split] * table.num_rows, pa.string()))


def hf_class_names(
    metadata: Mapping[bytes, bytes] | None, column: str = S.LABEL
) -> list[str] | None:
    """Class names of a ClassLabel column from the ``huggingface`` Parquet/Arrow metadata."""
    raw = (metadata or {}).get(b"huggingface")
    if raw is None:
        return None
    try:
        feats = json.loads(raw)["info"]["features"]
    except (KeyError, ValueError, TypeError):
        return None
    feat = feats.get(column) if isinstance(feats, dict) else None
    if isinstance(feat, dict) and feat.get("_type") == "ClassLabel" and "names" in feat:
        return [str(n) for n in feat["names"]]
    return None


def keep_curate_metadata(metadata: Mapping[bytes, bytes] | None) -> dict[bytes, bytes]:
    """The ``curate.*`` schema metadata of a source (class names and the like)."""
    return {k: v for k, v in (metadata or {}).items() if k.startswith(b"curate.")}


def check_labels(
    table: pa.Table, names: Sequence[str] | None, *, source: str, row_offset: int
) -> None:
    """Raise if a label is outside ``0..len(names)-1`` (the names would not describe it)."""
    if names is None or S.LABEL not in table.column_names:
        return
    col = table.column(S.LABEL)
    bad = pc.or_(pc.less(col, 0), pc.greater_equal(col, len(names)))
    bad = pc.fill_null(bad, False)
    if pc.any(bad).as_py():
        idx = pc.indices_nonzero(bad)[0].as_py()
        raise InputError(
            f"{source}: row {row_offset + idx} has label {col[idx].as_py()}, outside the "
            f"{len(names)} class names {list(names)[:5]}...; give matching --class-names."
        )
