"""DuckDB over manifests: each manifest is a view by its name; embeddings read as ARRAYs."""

from __future__ import annotations

import os
import re

import duckdb
import pyarrow as pa

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _quote_path(p: os.PathLike | str) -> str:
    return "'" + str(p).replace("'", "''") + "'"


def _select_list(m: Manifest) -> str:
    cols = []
    for field in m.schema:
        name = '"' + field.name.replace('"', '""') + '"'
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


def register(con: duckdb.DuckDBPyConnection, name: str, path: str | os.PathLike | Manifest) -> None:
    """Create view ``name`` over the manifest at ``path`` (streamed from Parquet by DuckDB)."""
    if not _NAME.match(name):
        raise InputError(
            f"manifest name {name!r} is not a valid SQL identifier; use letters, digits and _ "
            "(e.g. --manifest train=path/to/manifest)."
        )
    m = open_manifest(path)
    files = "[" + ", ".join(_quote_path(f) for f in m.files) + "]"
    con.execute(
        f'CREATE OR REPLACE VIEW "{name}" AS SELECT {_select_list(m)} '
        f"FROM read_parquet({files}, union_by_name=true)"
    )


def connect(
    manifests: dict[str, str | os.PathLike | Manifest] | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per manifest."""
    con = duckdb.connect()
    for name, path in (manifests or {}).items():
        register(con, name, path)
    return con


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
        raise InputError(f"SQL error: {exc}") from exc
    finally:
        con.close()


def sql_to_parquet(query: str, out: str | os.PathLike, /, **manifests) -> int:
    """Stream the result of ``query`` into a Parquet file (DuckDB COPY); returns its row count."""
    con = connect(manifests)
    try:
        con.execute(f"COPY ({query}) TO {_quote_path(out)} (FORMAT parquet)")
        return con.execute(f"SELECT count(*) FROM read_parquet({_quote_path(out)})").fetchone()[0]
    except duckdb.Error as exc:
        raise InputError(f"SQL error: {exc}") from exc
    finally:
        con.close()
