"""Phase A of a prune: one range of rows read, checked, assigned to clusters and spilled.

Each work item reads its rows' embeddings (and ids, CLIP scores, existing clusters: what the
method needs), computes every row's validity, assigns valid rows to the nearest centroid, and
writes one spill run: the valid rows sorted by cluster (row number, centroid similarity, the
float16 row direction when the method compares vectors, the id when it names duplicates) and
the range's per-row codes. What comes back is small: counts and, when centroids must be
rebuilt from members, per-cluster sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.engines.spill import write_run
from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.pipelines import _embeddings as E
from curate.pipelines._kmeans import SphericalKMeans
from curate.pipelines.cluster import CENTROID_SIM, CLUSTER
from curate.pipelines.prune.space import disk_full_error

#: Rows one scan item reads and spills (a multiple of the 65,536-row batches).
CHUNK_ROWS = 1 << 17


@dataclass(frozen=True)
class ScanSpec:
    """What every scan item needs (pickled to Ray workers: arrays here are small)."""

    path: str
    spill: str
    embedding: E.EmbeddingColumn | None  # None: the method needs no embedding
    parts: int  # clusters (1 when the method has none)
    centroids: np.ndarray | None = None  # assign to these (fresh clusters)
    backend: str = "auto"
    existing: bool = False  # read cluster / centroid_sim instead of assigning
    vectors: bool = False  # spill float16 row directions
    ids: str | None = None  # spill ids (for dup_of): the id column, an alias, or "" = row numbers
    key: str | None = None  # a per-row key column (clip_score)
    member_sums: bool = False  # existing clusters without centroids: sum members per cluster
    batch_size: int = 32_768  # rows decoded at once: the float32 copy of one batch is 64 MB


def id_strings(batch: pa.RecordBatch | pa.Table, column: str, lo: int) -> pa.Array:
    """The ids of a batch whose first row is ``lo``: ``column`` as strings, or row numbers
    when ``column`` is ``""`` (as ``curate ingest`` numbers rows without an id)."""
    if column:
        col = batch.column(column)
        return col.cast(pa.string()) if not pa.types.is_string(col.type) else col
    return pa.array([str(i) for i in range(lo, lo + batch.num_rows)], pa.string())


class _Acc:
    """The pieces of one chunk, collected batch by batch."""

    def __init__(self, spec: ScanSpec, rows: int) -> None:
        self.spec = spec
        self.ecode: list[np.ndarray] = []
        self.key: list[np.ndarray] = []
        self.cluster: list[np.ndarray] = []
        self.sim: list[np.ndarray] = []
        self.row: list[np.ndarray] = []
        self.ids: list[pa.Array] = []
        dim = spec.embedding.dim if spec.embedding else 0
        # one buffer for the chunk's float16 vectors, filled in place (no list, no concat)
        self.vec = np.empty((rows, dim), np.float16) if spec.vectors else None
        self.n_vec = 0
        self.sums = np.zeros((spec.parts, dim)) if spec.member_sums else None


def _held(arr: pa.Array, mat: np.ndarray, codes: np.ndarray, dim: int):
    """(float16 row directions as prune keeps them, whether ``mat`` is already their unit
    float32 form): the stored values of a float16 column (no conversion), else the unit
    float32 vectors rounded to float16."""
    raw = E.raw_view(arr, dim)
    if raw is not None and raw.dtype == np.float16:
        return raw[codes == E.VALID], True
    return mat[codes == E.VALID].astype(np.float16), False


def _clusters(spec, km, batch, mat, codes, held):
    """(cluster, centroid_sim, codes) of a batch: assigned, or read from the manifest."""
    n = len(codes)
    if spec.existing:
        cluster = pc.fill_null(batch.column(CLUSTER).cast("int32"), -1).to_numpy()
        sims = pc.fill_null(batch.column(CENTROID_SIM).cast("float32"), np.nan).to_numpy()
        bad = (codes == E.VALID) & ((cluster < 0) | ~np.isfinite(sims))
        codes = np.where(bad, E.NO_CLUSTER, codes).astype(np.int8)
        return cluster.astype(np.int32), sims.astype(np.float32), codes
    cluster = np.full(n, -1, np.int32)
    sims = np.full(n, np.nan, np.float32)
    ok = np.flatnonzero(codes == E.VALID)
    if len(ok):
        # SemDeDup's vectors are the float16 ones: assign from them, as the in-memory plan did
        x = mat[ok] if held is None else _unit16(held)

        cluster[ok], sims[ok] = km.assign_unit(x)
    return cluster, sims, codes


def _unit16(x16: np.ndarray) -> np.ndarray:
    x = x16.astype(np.float32)
    E.unit_rows(x)
    return x


def _add_batch(acc: _Acc, km, batch, lo: int) -> None:
    spec = acc.spec
    n = batch.num_rows
    if spec.key is not None:
        acc.key.append(pc.fill_null(batch.column(spec.key).cast("float64"), np.nan).to_numpy(False))
    if spec.embedding is None:
        acc.ecode.append(np.zeros(n, np.int8))
        return
    arr = batch.column(spec.embedding.name)
    mat, codes = E.vectors_from_array(arr, spec.embedding.dim)
    if spec.parts == 1 and not spec.existing and spec.centroids is None:
        acc.ecode.append(codes)  # no clusters: validity is all the method needs
        return
    held, same = _held(arr, mat, codes, spec.embedding.dim) if spec.vectors else (None, True)
    was_ok = codes == E.VALID
    # a float16 column's unit rows are exactly those of its held vectors: no second pass
    cluster, sims, codes = _clusters(spec, km, batch, mat, codes, None if same else held)
    acc.ecode.append(codes)
    ok = codes == E.VALID
    acc.cluster.append(cluster[ok])
    acc.sim.append(sims[ok])
    acc.row.append(np.flatnonzero(ok) + lo)
    if held is not None:
        keep = held[ok[was_ok]]
        acc.vec[acc.n_vec : acc.n_vec + len(keep)] = keep
        acc.n_vec += len(keep)
    if spec.ids is not None:
        acc.ids.append(id_strings(batch, spec.ids, lo).filter(pa.array(ok)))
    if acc.sums is not None:
        _add_member_sums(acc.sums, cluster, mat, (codes == E.VALID) | (codes == E.NO_CLUSTER))


def _add_member_sums(sums: np.ndarray, lab: np.ndarray, mat: np.ndarray, ok: np.ndarray):
    ok = ok & (lab >= 0)
    order = np.argsort(lab[ok], kind="stable")
    lab_s, mat_s = lab[ok][order], mat[ok][order]
    if len(lab_s):
        starts = np.r_[0, np.flatnonzero(np.diff(lab_s)) + 1]
        sums[lab_s[starts]] += np.add.reduceat(mat_s, starts, axis=0)


def _columns(spec: ScanSpec) -> list[str]:
    cols = [spec.embedding.name] if spec.embedding else []
    if spec.existing:
        cols += [CLUSTER, CENTROID_SIM]
    if spec.key:
        cols.append(spec.key)
    if spec.ids:
        cols.append(spec.ids)
    return list(dict.fromkeys(cols))


def scan_chunk(spec: ScanSpec, item: tuple[int, int, int]) -> dict:
    """Read rows ``lo:hi``, write spill run ``run``; return its counts (see module doc)."""
    run, lo, hi = item
    km = (
        SphericalKMeans.from_centroids(spec.centroids, backend=spec.backend, unit=True)
        if (spec.centroids is not None and not spec.existing)
        else None
    )
    acc = _Acc(spec, hi - lo)
    cols = _columns(spec)
    m = Manifest(spec.path)
    off = lo
    batches = m.iter_batches(
        cols or [m.schema.names[0]], batch_size=spec.batch_size, rows=(lo, hi), prefetch=1
    )
    for batch in batches:
        _add_batch(acc, km, batch, off)
        off += batch.num_rows
    return _write(spec, acc, run)


def _n_valid(row_order: dict[str, np.ndarray]) -> int:
    if "key" in row_order:
        return int(np.isfinite(row_order["key"]).sum())
    return int((row_order["ecode"] == E.VALID).sum())


def _cat(parts: list[np.ndarray], dtype, shape=()) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros((0, *shape), dtype)


def _write(spec: ScanSpec, acc: _Acc, run: int) -> dict:
    ecode = _cat(acc.ecode, np.int8)
    row_order = {"ecode": ecode}
    if acc.key:
        row_order["key"] = _cat(acc.key, np.float64)
    if acc.sums is not None:
        row_order["sums"] = acc.sums
    clustered = spec.parts > 1 or spec.existing or spec.centroids is not None
    columns, strings = {}, {}
    keys = np.zeros(0, np.int64)
    if clustered:
        keys = _cat(acc.cluster, np.int32).astype(np.int64)
        columns = {"row": _cat(acc.row, np.int64), "sim": _cat(acc.sim, np.float32)}
        if spec.vectors:
            columns["vec"] = acc.vec[: acc.n_vec]
        if spec.ids is not None:
            strings["id"] = pa.concat_arrays(acc.ids) if acc.ids else pa.array([], pa.string())
    try:
        sizes = write_run(
            Path(spec.spill),
            run,
            keys=keys,
            parts=spec.parts,
            columns=columns,
            strings=strings,
            row_order=row_order,
            meta={"rows": len(ecode), "valid": _n_valid(row_order)},
        )
    except OSError as exc:
        raise disk_full_error(exc, Path(spec.spill)) from exc
    return {
        "codes": np.bincount(ecode, minlength=len(E.INVALID_REASONS) + 1).tolist(),
        "sizes": sizes,
    }


def ids_source(m: Manifest) -> str:
    """The column ids come from: ``id``, else the first LAION/DataComp alias present (as
    ``curate ingest`` takes them), else ``""`` (row numbers)."""
    from curate.manifests.ingest.columns import ALIASES

    names = m.schema.names
    for name in (S.ID, *ALIASES[S.ID]):
        if name in names:
            return name
    return ""
