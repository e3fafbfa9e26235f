"""DuckDB over manifests: each manifest is a view by its name; embeddings read as ARRAYs.

Vector columns stored as raw bytes (see :mod:`curate.manifests.vectors`) are decoded by a
vectorised function registered on the connection (``curate_vector_float16_512(col)`` and the
like), so the view shows ``FLOAT[d]`` and ``array_cosine_similarity`` and ``embedding[1]``
work; a query that does not name the column never reads or decodes its bytes (DuckDB prunes
unused view columns before the Parquet scan).
"""

from __future__ import annotations

import os
import re

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests import vectors as V
from curate.manifests.io import Manifest, open_manifest

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quote_path(p: os.PathLike | str) -> str:
    return "'" + str(p).replace("'", "''") + "'"


def _decoder(dtype: str, dim: int):
    """A DuckDB Arrow UDF: BLOBs of ``dim`` raw ``dtype`` values to ``FLOAT[dim]`` arrays."""
    width = dim * np.dtype(dtype).itemsize

    def decode(col: pa.Array | pa.ChunkedArray) -> pa.Array:
        if isinstance(col, pa.ChunkedArray):
            col = col.combine_chunks()
        n = len(col)
        offsets = np.frombuffer(col.buffers()[1], _offset_dtype(col.type), col.offset + n + 1)
        offsets = offsets[col.offset :]
        data = np.frombuffer(col.buffers()[2] or b"", np.uint8)
        valid = np.diff(offsets) == width
        if valid.all() and n:  # contiguous values: one conversion, no gather
            raw = data[offsets[0] : offsets[0] + n * width]
        else:
            raw = np.zeros((n, width), np.uint8)
            rows = np.flatnonzero(valid)
            raw[rows] = data[offsets[rows, None] + np.arange(width)]
        flat = raw.view(dtype).astype(np.float32).reshape(-1)
        mask = pa.array(~valid) if not valid.all() else None
        return pa.FixedSizeListArray.from_arrays(pa.array(flat), dim, mask=mask)

    return decode


def _offset_dtype(t: pa.DataType) -> type:
    return np.int64 if pa.types.is_large_binary(t) else np.int32


def _decode_function(con: duckdb.DuckDBPyConnection, field: pa.Field) -> str:
    """Register (once per connection) the function that decodes this stored vector field."""
    dtype = field.metadata[V.DTYPE_KEY].decode()
    dim = int(field.metadata[V.DIM_KEY])
    fname = f"curate_vector_{dtype}_{dim}"
    known = con.execute(
        "SELECT 1 FROM duckdb_functions() WHERE function_name = ?", [fname]
    ).fetchone()
    if known is None:
        from duckdb.sqltypes import BLOB, FLOAT

        con.create_function(
            fname,
            _decoder(dtype, dim),
            [BLOB],
            duckdb.array_type(FLOAT, dim),
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
    return fname


def _select_list(con: duckdb.DuckDBPyConnection, stored: pa.Schema) -> str:
    cols = []
    for field in stored:
        name = '"' + field.name.replace('"', '""') + '"'
        if V.is_stored_vector(field):
            cols.append(f"{_decode_function(con, field)}({name}) AS {name}")
            continue
        dim = (
            S.embedding_dim(field)
            if pa.types.is_list(field.type) or pa.types.is_fixed_size_list(field.type)
            else None
        )
        value = getattr(field.type, "value_type", None)
        if dim and value is not None and pa.types.is_floating(value):
            cols.append(f"CAST({name} AS FLOAT[{dim}]) AS {name}")
        else:
            cols.append(name)
    return ", ".join(cols)


def _by_layout(m: Manifest) -> dict[tuple[str, ...], list]:
    """The manifest's files grouped by which columns hold stored vectors (one group unless a
    manifest mixes shards written before and after the raw-bytes layout)."""
    groups: dict[tuple[str, ...], list] = {}
    for f in m.files:
        key = tuple(V.stored_vector_columns(pq.read_schema(f)))
        groups.setdefault(key, []).append(f)
    return groups


def register(con: duckdb.DuckDBPyConnection, name: str, path: str | os.PathLike | Manifest) -> None:
    """Create view ``name`` over the manifest at ``path`` (streamed from Parquet by DuckDB)."""
    if not _NAME.match(name):
        raise InputError(
            f"manifest name {name!r} is not a valid SQL identifier; use letters, digits and _ "
            "(e.g. --manifest train=path/to/manifest)."
        )
    m = open_manifest(path)
    parts = []
    for group in _by_layout(m).values():
        files = "[" + ", ".join(_quote_path(f) for f in group) + "]"
        stored = pq.read_schema(group[0])
        parts.append(
            f"SELECT {_select_list(con, stored)} FROM read_parquet({files}, union_by_name=true)"
        )
    con.execute(f'CREATE OR REPLACE VIEW "{name}" AS ' + " UNION ALL BY NAME ".join(parts))


def register_decoders(con: duckdb.DuckDBPyConnection, path: str | os.PathLike | Manifest) -> None:
    """Register on ``con`` the functions that decode this manifest's stored vector columns.

    A view saved in a DuckDB database file names these functions but DuckDB does not save
    Python functions: a connection that reopens the file (e.g. read-only) must register them.
    """
    m = open_manifest(path)
    for group in _by_layout(m).values():
        stored = pq.read_schema(group[0])
        for field in stored:
            if V.is_stored_vector(field):
                _decode_function(con, field)


def connect(
    manifests: dict[str, str | os.PathLike | Manifest] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per manifest."""
    con = duckdb.connect()
    for name, path in (manifests or {}).items():
        register(con, name, path)
    return con


def _sql_error(exc: duckdb.Error, manifests: dict) -> InputError:
    """A query error, or (DuckDB's bare ``Error``) a manifest file it could not read."""
    if not manifests or isinstance(exc, duckdb.ProgrammingError | duckdb.DataError):
        return InputError(f"SQL error: {exc}")
    names = ", ".join(f"{k}={open_manifest(v).path}" for k, v in manifests.items())
    return InputError(
        f"SQL error: {exc}; if the query is right, a file of {names} is corrupt or unreadable: "
        "rerun the step that wrote it (with --overwrite)."
    )


def sql(query: str, /, **manifests: str | os.PathLike | Manifest) -> pa.Table:
    """Run ``query`` with each keyword argument a manifest view; returns a ``pyarrow.Table``.

    Examples
    --------
    >>> curate.sql("SELECT label, count(*) FROM m GROUP BY label", m="out/ingested")
    """
    con = connect(manifests)
    try:
        return con.sql(query).to_arrow_table()
    except duckdb.Error as exc:
        raise _sql_error(exc, manifests) from exc
    finally:
        con.close()


def sql_to_parquet(query: str, out: str | os.PathLike, /, **manifests) -> int:
    """Stream the result of ``query`` into a Parquet file (DuckDB COPY); returns its row count."""
    con = connect(manifests)
    try:
        con.execute(f"COPY ({query}) TO {_quote_path(out)} (FORMAT parquet)")
        return con.execute(f"SELECT count(*) FROM read_parquet({_quote_path(out)})").fetchone()[0]
    except duckdb.Error as exc:
        raise _sql_error(exc, manifests) from exc
    finally:
        con.close()
