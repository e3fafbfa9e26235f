"""Read an embedding column in batches: per-row validity, unit float32 blocks, model checks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.errors import ManifestError
from curate.manifests import schema as S
from curate.manifests import vectors as V
from curate.manifests.io import Manifest

#: Why a row's embedding cannot be used; code 0 means valid.
INVALID_REASONS: dict[int, str] = {
    1: "null",
    2: "non_finite",
    3: "zero_vector",
    4: "wrong_dim",
    5: "no_cluster",  # valid vector but null cluster in a clustered manifest
}
VALID = 0
NO_CLUSTER = 5


@dataclass(frozen=True)
class EmbeddingColumn:
    """What is known about an embedding column before reading it."""

    name: str
    dim: int
    info: dict[str, str]


def check_embedding_column(manifest: Manifest, column: str) -> EmbeddingColumn:
    """Validate that ``column`` is a float vector column from one model in every shard.

    Raises
    ------
    ManifestError
        The column is missing (the message says to run ``curate embed`` or pass
        ``--embedding-column``), is not a list of floats, or its shards carry embeddings from
        different models or of different dimensions.
    """
    if column not in manifest.schema.names:
        raise ManifestError(
            f"{manifest.path}: no embedding column {column!r} (it has {manifest.schema.names}). "
            f"Run `curate embed {manifest.path} -o OUT` first, or pass --embedding-column NAME "
            "(embedding_column= in Python) to use a precomputed vector column."
        )
    fields, sources = [], []
    for f in manifest.files:
        field = V.logical_field(pq.read_schema(f).field(column))  # raw bytes -> vectors
        t = field.type
        if not (
            (pa.types.is_fixed_size_list(t) or pa.types.is_list(t) or pa.types.is_large_list(t))
            and pa.types.is_floating(t.value_type)
        ):
            raise ManifestError(
                f"{f}: column {column!r} is {t}, not a list of floats; pass "
                "--embedding-column with the vector column's name."
            )
        fields.append(field)
        sources.append(str(f))
    from curate.pipelines.embed.compat import check_same_embedding_model

    check_same_embedding_model(*fields, sources=sources)  # shards from one model only
    field = manifest.schema.field(column)
    dim = S.embedding_dim(field) or _first_length(manifest, column)
    return EmbeddingColumn(column, int(dim), S.embedding_info(field))


def _first_length(manifest: Manifest, column: str) -> int:
    for batch in manifest.iter_batches([column]):
        lengths = pc.list_value_length(batch.column(0)).drop_null()
        if len(lengths):
            return int(lengths[0].as_py())
    raise ManifestError(f"{manifest.path}: column {column!r} holds no vectors (all null).")


def raw_view(arr: pa.Array, dim: int) -> np.ndarray | None:
    """The (n, dim) values of a fixed-size-list column without nulls, as a zero-copy view of
    its Arrow buffer (float16 stays float16); ``None`` where no such view exists."""
    if not (pa.types.is_fixed_size_list(arr.type) and arr.type.list_size == dim):
        return None
    if arr.null_count:
        return None
    return V.vectors_view(arr)


def _raw_matrix(arr: pa.Array, dim: int, codes: np.ndarray) -> np.ndarray:
    """The float32 (n, dim) values of rows with code VALID; other rows zero."""
    n = len(arr)
    fill = np.flatnonzero(codes == VALID)
    view = raw_view(arr, dim) if len(fill) == n else None
    if view is not None:  # fast path: read the value buffer in place
        return view.astype(np.float32)
    mat = np.zeros((n, dim), dtype=np.float32)
    if len(fill):
        flat = arr.take(pa.array(fill)).flatten().to_numpy(zero_copy_only=False)
        mat[fill] = flat.astype(np.float32, copy=False).reshape(len(fill), dim)
    return mat


def unit_rows(mat: np.ndarray) -> np.ndarray:
    """Scale the rows of float32 ``mat`` to unit length in place (zero rows stay zero) and
    return their original norms; every path that normalises uses this, so results agree
    to the bit."""
    norms = np.sqrt(np.einsum("ij,ij->i", mat, mat))
    mat *= (1.0 / np.maximum(norms, 1e-12)).astype(np.float32)[:, None]
    return norms


def vectors_from_array(arr: pa.Array, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Turn a list-of-floats array into (L2-normalised float32 matrix, int8 validity codes).

    Invalid rows (see :data:`INVALID_REASONS`) come back as zero vectors with a non-zero code.
    """
    n = len(arr)
    codes = np.zeros(n, dtype=np.int8)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_fixed_size_list(arr.type):
        if arr.type.list_size != dim:
            codes[:] = 4
    else:
        codes[pc.fill_null(pc.list_value_length(arr), -1).to_numpy() != dim] = 4
    if arr.null_count:
        codes[arr.is_null().to_numpy(zero_copy_only=False)] = 1
    mat = _raw_matrix(arr, dim, codes)
    finite = np.isfinite(mat).all(axis=1)
    if not finite.all():
        codes[(codes == VALID) & ~finite] = 2
        mat[~finite] = 0.0
    norms = unit_rows(mat)
    codes[(codes == VALID) & (norms <= 1e-12)] = 3
    if (codes != VALID).any():
        mat[codes != VALID] = 0.0
    return mat, codes


def scan(
    manifest: Manifest,
    column: EmbeddingColumn,
    *,
    extra: list[str] | None = None,
    batch_size: int = 65_536,
    rows: tuple[int, int] | None = None,
    prefetch: int = 2,
) -> Iterator[tuple[int, np.ndarray, np.ndarray, pa.RecordBatch]]:
    """Yield ``(row_offset, vectors, codes, batch)`` over the manifest, in row order.

    ``batch`` holds the embedding column plus the ``extra`` columns asked for; ``rows=(lo,
    hi)`` scans only those rows (offsets stay manifest row numbers); ``prefetch`` batches are
    decoded ahead in a background thread.
    """
    cols = [column.name, *(extra or [])]
    offset = rows[0] if rows is not None else 0
    for batch in manifest.iter_batches(cols, batch_size=batch_size, prefetch=prefetch, rows=rows):
        mat, codes = vectors_from_array(batch.column(0), column.dim)
        yield offset, mat, codes, batch
        offset += batch.num_rows


def reason_text(code: int) -> str:
    """``invalid_embedding:<why>`` for a non-zero validity code."""
    return f"invalid_embedding:{INVALID_REASONS[int(code)]}"
