"""Concept clusters: spherical k-means on a seeded sample, then every row assigned in batches."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.engines import check_engine, run
from curate.engines.base import FitStep, add_columns
from curate.errors import InputError
from curate.manifests import parallel as P
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest, prepare_output
from curate.manifests.runinfo import Timer
from curate.pipelines import _embeddings as E
from curate.pipelines._kmeans import BACKENDS, SphericalKMeans

__all__ = [
    "CENTROID_SIM",
    "CLUSTER",
    "ClusterConfig",
    "ClusterStep",
    "Clustering",
    "SphericalKMeans",
    "centroids_path",
    "cluster",
    "fit_clusters",
]

CLUSTER = "cluster"
CENTROID_SIM = "centroid_sim"
CENTROIDS_FILE = "centroids.npy"


@dataclass(frozen=True)
class ClusterConfig:
    """How to cluster an embedding column.

    ``k=None`` picks ``clamp(valid_rows // 100, 1, 1000)``; an explicit ``k`` larger than the
    number of valid rows is an error (it is never clamped silently).
    """

    k: int | None = None
    seed: int = 0
    niter: int = 20
    max_points_per_centroid: int = 256
    backend: str = "auto"
    embedding_column: str = S.EMBEDDING
    batch_size: int = 65_536

    def __post_init__(self) -> None:
        if self.k is not None and (not isinstance(self.k, int) or self.k < 1):
            raise InputError(f"k must be a positive integer (--k), got {self.k!r}")
        if self.niter < 1:
            raise InputError(f"niter must be >= 1, got {self.niter}")
        if self.max_points_per_centroid < 1:
            raise InputError(
                f"max_points_per_centroid must be >= 1, got {self.max_points_per_centroid}"
            )
        if self.backend not in BACKENDS:
            raise InputError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")


@dataclass
class Clustering:
    """Per-row results of :func:`fit_clusters` (row order of the manifest)."""

    model: SphericalKMeans
    cluster: np.ndarray  # int32, -1 where the embedding is invalid
    centroid_sim: np.ndarray  # float32, NaN where invalid
    codes: np.ndarray  # int8 validity codes (see _embeddings.INVALID_REASONS)
    k: int
    # float16 (n, d) row directions (normalise before use), when asked for
    vectors: np.ndarray | None = None
    timings: dict = field(default_factory=dict)


def auto_k(n_valid: int) -> int:
    """The default number of clusters: about 100 rows each, between 1 and 1000."""
    return int(min(1000, max(1, n_valid // 100)))


def _sample(
    manifest: Manifest,
    col: E.EmbeddingColumn,
    cfg: ClusterConfig,
    k_hint: int | None,
    vectors: np.ndarray | None = None,
):
    """One pass: validity codes for every row and a seeded row sample of valid vectors.

    With ``vectors`` (an (n, d) float16 array), every row's direction is stored there too:
    the raw values for a float16 column (no cast, and normalising them later gives exactly
    the vectors this pass saw), else the unit vectors; invalid rows are zero.
    Row ranges are read by parallel threads; the sample is in row order whatever their number.
    """
    n = manifest.num_rows
    rng = np.random.default_rng(cfg.seed)
    cap = (k_hint or 1000) * cfg.max_points_per_centroid
    chosen = np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)
    codes = np.zeros(n, dtype=np.int8)
    workers = P.default_workers()
    ranges = P.row_ranges(n, workers, starts=manifest.row_group_starts())
    prefetch = 2 if len(ranges) == 1 else 0  # parallel ranges already overlap their reads

    def read(rows: tuple[int, int]) -> list[np.ndarray]:
        parts = []
        for off, mat, c, batch in E.scan(
            manifest, col, batch_size=cfg.batch_size, rows=rows, prefetch=prefetch
        ):
            codes[off : off + len(c)] = c
            lo, hi = np.searchsorted(chosen, [off, off + len(c)])
            local = chosen[lo:hi] - off
            parts.append(mat[local[c[local] == E.VALID]])
            if vectors is not None:
                _hold(vectors, off, batch.column(0), mat, c)
        return parts

    parts = [p for ps in P.ordered_map(read, ranges, workers) for p in ps]
    sample = np.concatenate(parts) if parts else np.zeros((0, col.dim), np.float32)
    return codes, sample


def _hold(vectors: np.ndarray, off: int, arr: pa.Array, mat: np.ndarray, codes: np.ndarray):
    raw = E.raw_view(arr, vectors.shape[1])
    sl = slice(off, off + len(codes))
    if raw is not None and raw.dtype == vectors.dtype:
        vectors[sl] = raw  # a copy, no float32 -> float16 conversion
        bad = np.flatnonzero(codes != E.VALID)
        vectors[off + bad] = 0
    else:
        vectors[sl] = mat


def _held_batches(vectors: np.ndarray, codes: np.ndarray, batch_size: int):
    """``(offset, unit float32 block, codes)`` from the float16 vectors held in memory."""
    for off in range(0, len(vectors), batch_size):
        mat = vectors[off : off + batch_size].astype(np.float32)
        E.unit_rows(mat)
        yield off, mat, codes[off : off + batch_size]


def fit_clusters(
    manifest: str | os.PathLike | Manifest,
    cfg: ClusterConfig | None = None,
    *,
    keep_vectors: bool = False,
) -> Clustering:
    """Train spherical k-means on a seeded sample and assign every valid row.

    Two streaming passes over the embedding column; memory holds the sample
    (``k * max_points_per_centroid`` rows) and per-row results (8 bytes a row). With
    ``keep_vectors`` (for SemDeDup) the float16 vectors are held from the first pass and
    assigned from memory, so the column is read once.
    """
    cfg = cfg or ClusterConfig()
    m = open_manifest(manifest)
    col = E.check_embedding_column(m, cfg.embedding_column)
    timer = Timer()
    vectors = np.zeros((m.num_rows, col.dim), dtype=np.float16) if keep_vectors else None
    with timer("sample"):
        codes, sample = _sample(m, col, cfg, cfg.k, vectors)
    n_valid = int((codes == E.VALID).sum())
    if n_valid == 0:
        raise InputError(
            f"{m.path}: no row has a usable embedding in {col.name!r} (all null, NaN or zero)."
        )
    k = cfg.k if cfg.k is not None else auto_k(n_valid)
    if k > n_valid:
        raise InputError(
            f"k={k} is larger than the {n_valid} rows with a valid embedding in {m.path}; "
            f"pass --k {n_valid} or less."
        )
    km = SphericalKMeans(
        k,
        seed=cfg.seed,
        niter=cfg.niter,
        max_points_per_centroid=cfg.max_points_per_centroid,
        backend=cfg.backend,
    )
    with timer("train"):
        km.fit(sample)
    del sample
    n = m.num_rows
    labels = np.full(n, -1, dtype=np.int32)
    sims = np.full(n, np.nan, dtype=np.float32)
    if vectors is not None:
        batches = _held_batches(vectors, codes, cfg.batch_size)
    else:
        batches = ((off, mat, c) for off, mat, c, _ in E.scan(m, col, batch_size=cfg.batch_size))
    with timer("assign"):
        for off, mat, c in batches:
            ok = np.flatnonzero(c == E.VALID)
            if len(ok) == len(c):
                labels[off : off + len(c)], sims[off : off + len(c)] = km.assign_unit(mat)
            elif len(ok):
                lab, sim = km.assign_unit(mat[ok])
                labels[off + ok], sims[off + ok] = lab, sim
    return Clustering(km, labels, sims, codes, k, vectors, timer.seconds)


def centroids_path(manifest_path: str | os.PathLike) -> Path:
    """``DIR/centroids.npy`` for a directory manifest, ``name.centroids.npy`` beside a file."""
    p = Path(manifest_path)
    if p.suffix == ".parquet":
        return p.with_name(p.stem + ".centroids.npy")
    return p / CENTROIDS_FILE


def invalid_error_messages(codes: np.ndarray, existing: pa.Array | None, step: str) -> pa.Array:
    """The ``error`` column: existing messages kept, invalid embeddings explained."""
    msgs = [
        None if c == E.VALID else f"{step}: {E.reason_text(c)}; excluded from clustering"
        for c in codes
    ]
    new = pa.array(msgs, pa.string())
    if existing is None:
        return new
    return pc.coalesce(existing.cast(pa.string()), new)


def with_columns(batch: pa.RecordBatch, columns: dict[str, pa.Array]) -> pa.RecordBatch:
    """``batch`` with ``columns`` replaced or appended (in the given order)."""
    table = pa.Table.from_batches([batch])
    for name, values in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, values)
        else:
            table = table.append_column(name, values)
    return table.combine_chunks().to_batches()[0] if table.num_rows else table


def extended_schema(schema: pa.Schema, columns_for) -> pa.Schema:
    """The schema of ``with_columns(batch, columns_for(batch))`` for batches of ``schema``,
    known before any row is read (parallel shard writers need it up front)."""
    empty = pa.RecordBatch.from_arrays([pa.array([], f.type) for f in schema], schema=schema)
    return with_columns(empty, columns_for(empty)).schema.with_metadata(schema.metadata)


def _cluster_columns(batch, sl: slice, labels, sims, codes, n_invalid: int) -> dict:
    lab = labels[sl]
    cols = {
        CLUSTER: pa.array(lab, pa.int32(), mask=lab < 0),
        CENTROID_SIM: pa.array(sims[sl], pa.float32(), mask=lab < 0),
    }
    if n_invalid or S.ERROR in batch.schema.names:
        existing = batch.column(S.ERROR) if S.ERROR in batch.schema.names else None
        cols[S.ERROR] = invalid_error_messages(codes[sl], existing, "cluster")
    return cols


class ClusterStep(FitStep):
    """k-means as a step: ``fit`` trains on a sample and assigns every row (once, on one
    worker); each batch then gets its rows' ``cluster`` / ``centroid_sim`` (and ``error``)."""

    name = "cluster"
    thread_safe = True

    def fit(self, manifest: Manifest) -> ClusterStep:
        res = fit_clusters(manifest, self.config)
        self.labels_, self.sims_, self.codes_ = res.cluster, res.centroid_sim, res.codes
        self.k_, self.centroids_ = res.k, res.model.centroids_
        self.backend_, self.timings_ = res.model.backend_, res.timings
        self.n_invalid_ = int((res.codes != E.VALID).sum())
        return self

    def _columns(self, batch, sl: slice) -> dict:
        return _cluster_columns(batch, sl, self.labels_, self.sims_, self.codes_, self.n_invalid_)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extended_schema(schema, lambda b: self._columns(b, slice(0, 0)))

    def process_rows(self, table: pa.Table, rows: slice) -> pa.Table:
        return add_columns(table, self._columns(table, rows), self.output_schema(table.schema))


def cluster(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    k: int | None = None,
    seed: int = 0,
    embedding_column: str = S.EMBEDDING,
    overwrite: bool = False,
    niter: int = 20,
    backend: str = "auto",
    **run_options: Any,
) -> Manifest:
    """Add ``cluster`` (int32) and ``centroid_sim`` (float32 cosine) columns to a manifest.

    Parameters
    ----------
    manifest, out
        Input manifest and output path (directory, or a ``.parquet`` file).
    k
        Number of clusters; ``None`` picks about 100 rows per cluster (1..1000).
    seed
        Same seed, same sample, same centroids, same assignments.
    embedding_column
        The vector column to cluster.
    overwrite
        Replace an existing ``out``.
    niter, backend
        See :class:`SphericalKMeans`.
    **run_options
        ``engine`` (``"local"`` or ``"ray"``), ``ray_address``, ``progress``: how the rows are
        written (see :mod:`curate.engines`); k-means is fitted once, on this process.

    Returns
    -------
    Manifest
        The output; ``centroids.npy`` lies beside it and ``run.json`` records the run.
        Rows whose embedding is null, NaN or zero get null ``cluster`` and a message in
        ``error``; no row is dropped.
    """
    cfg = ClusterConfig(
        k=k, seed=seed, niter=niter, backend=backend, embedding_column=embedding_column
    )
    unknown = set(run_options) - {"engine", "ray_address", "progress"}
    if unknown:
        raise TypeError(f"cluster() got unexpected options {sorted(unknown)}")
    check_engine(run_options.get("engine", "local"))
    m = open_manifest(manifest).validate()
    if not overwrite:
        prepare_output(out)  # an existing output fails before k-means runs
    step = ClusterStep(cfg).fit(m)
    sizes = np.bincount(step.labels_[step.labels_ >= 0], minlength=step.k_)
    info = {
        "config": {**asdict(cfg), "k": step.k_, "backend_used": step.backend_},
        "counts": {"clustered": int(sizes.sum()), "invalid": step.n_invalid_},
        "timings": step.timings_,
        "clusters": {"sizes": sizes.tolist(), "centroids": CENTROIDS_FILE},
    }
    opts = {"overwrite": overwrite, "resume": False, "run_info": info, **run_options}
    result = run(step, m, out, **opts)
    np.save(centroids_path(result.path), step.centroids_)
    return result
