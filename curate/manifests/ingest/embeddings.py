"""Precomputed embeddings at ingest: an aligned ``.npy`` file or a list column, L2-normalised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.ingest.arrays import load_npy

#: How far from 1 a row's norm may be for the row to count as already normalised: float16
#: rounding of a unit vector moves its norm by well under 1e-3.
_UNIT_TOLERANCE = {np.dtype(np.float16): 2e-3, np.dtype(np.float32): 1e-5}


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.array(x, dtype=np.float32)  # a writable copy (the source may be a read-only view)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    np.divide(x, norms, out=x, where=norms > 0)  # a zero vector stays zero
    return x


def _is_unit(x: np.ndarray) -> bool:
    """Every row has norm 1 (or 0) within the tolerance of ``x``'s dtype."""
    tol = _UNIT_TOLERANCE.get(x.dtype)
    if tol is None:
        return False
    norms = np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float32))
    return bool(np.all((np.abs(norms - 1) <= tol) | (norms == 0)))


def _out_dtype(dtype: np.dtype) -> str:
    return "float16" if dtype == np.float16 else "float32"


def embedding_array(x: np.ndarray, dtype: str) -> pa.FixedSizeListArray:
    """Normalise rows of ``x`` (n, d) and wrap them as a FixedSizeList array.

    Rows already of unit length in the output dtype (clip-retrieval's ``img_emb/*.npy`` are)
    are wrapped as they are, without a float conversion or a copy: a memory-mapped ``x``
    then goes from the page cache straight to the Parquet writer.
    """
    value = pa.float16() if dtype == "float16" else pa.float32()
    if x.dtype == np.dtype(dtype) and x.flags.c_contiguous and _is_unit(x):
        flat = pa.Array.from_buffers(value, x.size, [None, pa.py_buffer(x)])
    else:
        flat = pa.array(_normalise(x).astype(dtype, copy=False).reshape(-1), type=value)
    return pa.FixedSizeListArray.from_arrays(flat, x.shape[1])


def _attach(table: pa.Table, values: np.ndarray, dtype: str, source: str) -> pa.Table:
    field = S.embedding_field(S.EMBEDDING, values.shape[1], dtype, source=source, normalized="true")
    arr = embedding_array(values, dtype)
    if S.EMBEDDING in table.column_names:
        table = table.drop_columns([S.EMBEDDING])
    return table.append_column(field, arr)


class NpyEmbeddings:
    """Slices of an ``.npy`` file of shape (rows, d), memory-mapped, aligned with input rows."""

    def __init__(self, path: Path) -> None:
        if not path.exists():
            raise InputError(f"{path}: embeddings file does not exist; check --embeddings.")
        self.values = load_npy(path, option="--embeddings", mmap=True)
        if self.values.ndim != 2 or not np.issubdtype(self.values.dtype, np.floating):
            raise InputError(
                f"{path}: embeddings must be a 2-D float array (rows, dim); found shape "
                f"{self.values.shape} of {self.values.dtype}."
            )
        self.path = path
        self.dtype = _out_dtype(self.values.dtype)
        self.offset = 0

    def check_rows(self, rows: int | None) -> None:
        """Fail before any work when the input's row count is known and differs."""
        if rows is not None and rows != len(self.values):
            raise InputError(
                f"{self.path}: has {len(self.values)} embedding rows but the input has {rows} "
                "rows; the file must hold one row per input row, in input order."
            )

    def attach(self, table: pa.Table) -> pa.Table:
        end = self.offset + table.num_rows
        if end > len(self.values):
            raise InputError(
                f"{self.path}: has {len(self.values)} embedding rows but the input has more "
                f"(at least {end}); the file must hold one row per input row, in input order."
            )
        part = self.values[self.offset : end]  # a view of the memory map, not a copy
        self.offset = end
        return _attach(table, part, self.dtype, self.path.name)

    def finish(self) -> None:
        if self.offset != len(self.values):
            raise InputError(
                f"{self.path}: has {len(self.values)} embedding rows but the input has "
                f"{self.offset}; the file must hold one row per input row, in input order."
            )


class ColumnEmbeddings:
    """A list column of the source, turned into the FixedSizeList ``embedding`` column."""

    def __init__(self, column: str) -> None:
        self.column = column
        self.offset = 0
        self.dim: int | None = None

    def attach(self, table: pa.Table) -> pa.Table:
        if self.column not in table.column_names:
            raise InputError(
                f"no column {self.column!r} for --embedding-column; the input has "
                f"{table.column_names}."
            )
        col = table.column(self.column).combine_chunks()
        if not (
            pa.types.is_list(col.type)
            or pa.types.is_large_list(col.type)
            or pa.types.is_fixed_size_list(col.type)
        ):
            raise InputError(
                f"column {self.column!r} is {col.type}, not a list of floats; "
                "--embedding-column needs one vector per row."
            )
        values = self._to_numpy(col)
        dtype = _out_dtype(values.dtype)
        self.offset += table.num_rows
        table = table.drop_columns([self.column])
        return _attach(table, values, dtype, f"column:{self.column}")

    def _to_numpy(self, col: pa.Array) -> np.ndarray:
        if col.null_count:
            row = self.offset + col.is_null().to_pylist().index(True)
            raise InputError(
                f"row {row}: column {self.column!r} is null; every row needs a vector."
            )
        if pa.types.is_fixed_size_list(col.type):
            lengths = np.full(len(col), col.type.list_size)
        else:
            lengths = np.asarray(col.value_lengths())
        dim = self.dim if self.dim is not None else int(lengths[0]) if len(lengths) else 0
        bad = np.flatnonzero(lengths != dim)
        if len(bad):
            raise InputError(
                f"row {self.offset + int(bad[0])}: column {self.column!r} has a vector of "
                f"length {int(lengths[bad[0]])}, others have {dim}; all must have the same length."
            )
        self.dim = dim
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(col), dim)

    def finish(self) -> None:
        return None


def embedding_source(embeddings: Path | None, column: str | None, table: pa.Table):
    """The embedding handler for these options (auto: a list column named ``embedding``)."""
    if embeddings is not None:
        return NpyEmbeddings(embeddings)
    if column is not None:
        return ColumnEmbeddings(column)
    if S.EMBEDDING in table.column_names:
        t = table.schema.field(S.EMBEDDING).type
        if pa.types.is_list(t) or pa.types.is_large_list(t):
            return ColumnEmbeddings(S.EMBEDDING)
    return None
