"""How vector columns are stored: a fixed-size list of floats goes to Parquet as one
fixed-size binary value per row (the raw little-endian bytes), and comes back as the same
list without a copy.

Parquet encodes a ``FixedSizeList<float16, 512>`` with repetition and definition levels for
each of the 512 values; the same bytes as ``fixed_size_binary(1024)`` are one plain value per
row, which encodes and decodes at memory speed (see BENCHMARKS.md, "Manifest I/O"). The
stored field keeps its own metadata plus ``curate.storage``, ``curate.vector_dtype`` and
``curate.vector_dim``; steps never see the stored form: :class:`~curate.manifests.io.Manifest`
hands back the logical ``FixedSizeList`` and :func:`read_vectors` reads a column straight into
numpy. Files written before this layout (a Parquet ``FixedSizeList``) read the same way.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

STORAGE_KEY = b"curate.storage"
VECTOR_BYTES = b"vector_bytes"
DTYPE_KEY = b"curate.vector_dtype"
DIM_KEY = b"curate.vector_dim"
_STORAGE_KEYS = (STORAGE_KEY, DTYPE_KEY, DIM_KEY)
_FLOATS = {"float16": pa.float16(), "float32": pa.float32(), "float64": pa.float64()}


def is_vector_type(t: pa.DataType) -> bool:
    """A fixed-size list of float16/32/64: the columns stored as raw bytes."""
    return pa.types.is_fixed_size_list(t) and pa.types.is_floating(t.value_type)


def is_stored_vector(field: pa.Field) -> bool:
    """A field holding vectors as raw bytes (the stored form of a vector column)."""
    md = field.metadata or {}
    return md.get(STORAGE_KEY) == VECTOR_BYTES and pa.types.is_fixed_size_binary(field.type)


def storage_field(field: pa.Field) -> pa.Field:
    """The field as written to Parquet: vector columns become ``fixed_size_binary``."""
    if not is_vector_type(field.type):
        return field
    value, dim = field.type.value_type, field.type.list_size
    md = dict(field.metadata or {})
    md[STORAGE_KEY] = VECTOR_BYTES
    md[DTYPE_KEY] = np.dtype(value.to_pandas_dtype()).name.encode()
    md[DIM_KEY] = str(dim).encode()
    width = dim * value.bit_width // 8
    return pa.field(field.name, pa.binary(width), field.nullable, metadata=md)


def logical_field(field: pa.Field) -> pa.Field:
    """The field steps see: stored vectors become ``FixedSizeList<float, dim>`` again."""
    if not is_stored_vector(field):
        return field
    md = {k: v for k, v in field.metadata.items() if k not in _STORAGE_KEYS}
    value = _FLOATS[field.metadata[DTYPE_KEY].decode()]
    dim = int(field.metadata[DIM_KEY])
    return pa.field(field.name, pa.list_(value, dim), field.nullable, metadata=md or None)


def storage_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([storage_field(f) for f in schema], metadata=schema.metadata)


def logical_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([logical_field(f) for f in schema], metadata=schema.metadata)


def stored_vector_columns(schema: pa.Schema) -> list[str]:
    return [f.name for f in schema if is_stored_vector(f)]


def _validity(arr: pa.Array) -> pa.Buffer | None:
    """A validity bitmap for ``arr`` that starts at bit 0 (``None`` without nulls)."""
    return pc.is_valid(arr).buffers()[1] if arr.null_count else None


def encode(arr: pa.Array, field: pa.Field) -> pa.Array:
    """A ``FixedSizeList<float>`` array as the ``fixed_size_binary`` of ``field``, without a
    copy unless some values inside a vector are null (those become NaN, which readers report
    as a non-finite vector, as before)."""
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([encode(c, field) for c in arr.chunks], field.type)
    dim, width = arr.type.list_size, field.type.byte_width
    values = arr.values  # the unsliced child: slot i starts at value (arr.offset + i) * dim
    start = values.offset + arr.offset * dim
    if values.null_count:
        flat = values.slice(start, len(arr) * dim).to_numpy(zero_copy_only=False)
        data = pa.py_buffer(np.ascontiguousarray(flat))
    else:
        item = values.type.bit_width // 8
        data = values.buffers()[1].slice(start * item, len(arr) * width)
    return pa.Array.from_buffers(field.type, len(arr), [_validity(arr), data])


def decode(arr: pa.Array, field: pa.Field) -> pa.Array:
    """A stored ``fixed_size_binary`` array as the ``FixedSizeList`` of ``field`` (zero-copy)."""
    if isinstance(arr, pa.ChunkedArray):
        return pa.chunked_array([decode(c, field) for c in arr.chunks], field.type)
    n, width = len(arr), arr.type.byte_width
    data = arr.buffers()[1].slice(arr.offset * width, n * width)
    value = field.type.value_type
    child = pa.Array.from_buffers(value, n * field.type.list_size, [None, data])
    return pa.Array.from_buffers(field.type, n, [_validity(arr)], children=[child])


def encode_columns(data: pa.Table | pa.RecordBatch, schema: pa.Schema) -> pa.Table:
    """``data`` (logical schema) with its vector columns encoded for ``schema`` (stored)."""
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    cols = [
        encode(col, f) if is_stored_vector(f) else col
        for col, f in zip(data.columns, schema, strict=True)
    ]
    return pa.Table.from_arrays(cols, schema=schema)


def decode_columns(batch: pa.RecordBatch, stored: pa.Schema) -> pa.RecordBatch:
    """``batch`` as read from a file of schema ``stored``, with vector columns decoded."""
    names = stored_vector_columns(stored)
    if not any(name in names for name in batch.schema.names):
        return batch
    cols, fields = [], []
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        field = stored.field(name)
        if is_stored_vector(field):
            field = logical_field(field)
            col = decode(col, field)
        cols.append(col)
        fields.append(field)
    return pa.RecordBatch.from_arrays(cols, schema=pa.schema(fields, metadata=stored.metadata))


def vectors_view(arr: pa.Array) -> np.ndarray | None:
    """The (n, dim) values of a ``FixedSizeList<float>`` array as a zero-copy numpy view of
    its buffer (float16 stays float16); ``None`` if a value inside a vector is null."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    dim, values = arr.type.list_size, arr.values
    if values.null_count:
        return None
    dtype = np.dtype(values.type.to_pandas_dtype())
    start = (values.offset + arr.offset * dim) * dtype.itemsize
    flat = np.frombuffer(values.buffers()[1], dtype, count=len(arr) * dim, offset=start)
    return flat.reshape(len(arr), dim)


def read_vectors(
    manifest,
    column: str = "embedding",
    *,
    rows: tuple[int, int] | None = None,
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Read a vector column into one ``(n, dim)`` array of its stored dtype.

    Parameters
    ----------
    manifest
        A :class:`~curate.manifests.io.Manifest` or its path.
    column
        The vector column (a fixed-size list of floats, or a list column whose field records
        ``curate.dim``).
    rows
        ``(lo, hi)`` reads rows ``lo`` to ``hi - 1`` only.
    workers
        Threads reading disjoint row ranges (default: the usable cores, at most 8).

    Returns
    -------
    vectors, present
        The values as stored (float16 stays float16, nothing is normalised), and a bool mask
        of rows that hold a vector of the right length; other rows are zero.
    """
    from curate._malloc import huge_empty
    from curate.errors import ManifestError
    from curate.manifests import parallel as P
    from curate.manifests import schema as S
    from curate.manifests.io import open_manifest

    m = open_manifest(manifest)
    if column not in m.schema.names:
        raise ManifestError(f"{m.path}: no vector column {column!r}; it has {m.schema.names}.")
    field = m.schema.field(column)
    dim = S.embedding_dim(field)
    value = getattr(field.type, "value_type", None)
    if dim is None or value is None or not pa.types.is_floating(value):
        raise ManifestError(f"{m.path}: column {column!r} is {field.type}, not float vectors.")
    lo, hi = rows if rows is not None else (0, m.num_rows)
    out = huge_empty((hi - lo, dim), np.dtype(value.to_pandas_dtype()))
    present = np.zeros(hi - lo, bool)
    starts = [s - lo for s in m.row_group_starts() if lo <= s < hi]
    workers = workers or P.default_workers()
    ranges = P.row_ranges(hi - lo, workers, starts=starts)

    def fill(part: tuple[int, int]) -> None:
        at = part[0]
        for batch in m.iter_batches([column], rows=(lo + part[0], lo + part[1])):
            n = batch.num_rows
            _fill_rows(batch.column(0), dim, out[at : at + n], present[at : at + n])
            at += n

    P.ordered_map(fill, ranges, workers)
    return out, present


def _fill_rows(arr: pa.Array, dim: int, out: np.ndarray, present: np.ndarray) -> None:
    """Copy one batch of a vector column into ``out``; rows without a vector stay zero."""
    view = vectors_view(arr) if is_vector_type(arr.type) and arr.type.list_size == dim else None
    if view is not None:
        out[:] = view
        present[:] = True
    else:  # a list column, or null values inside vectors: slow but exact
        lengths = pc.fill_null(pc.list_value_length(arr), -1).to_numpy()
        present[:] = lengths == dim
        out[:] = 0
        ok = np.flatnonzero(present)
        if len(ok):
            flat = arr.take(pa.array(ok)).flatten().to_numpy(zero_copy_only=False)
            out[ok] = flat.reshape(len(ok), dim)
    if arr.null_count:
        nulls = arr.is_null().to_numpy(zero_copy_only=False)
        present[nulls] = False
        out[nulls] = 0
