"""Concept clusters: spherical k-means on a seeded sample, then every row assigned in batches.

Memory does not grow with the manifest: the fit reads a seeded sample of bounded size (and
counts the valid rows), k-means trains on it, and assignment is per-batch engine work
(threads locally, an actor pool under Ray, the GPU where present).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.config import resolve_config
from curate.engines import check_engine, run
from curate.engines.options import progress_mode
from curate.engines.workers import ThreadWorkers, Workers, workers_for
from curate.errors import InputError
from curate.manifests import parallel as P
from curate.manifests import schema as S
from curate.manifests.io import Manifest, default_out, open_manifest, prepare_output
from curate.manifests.runinfo import Timer, write_run_json
from curate.pipelines import _embeddings as E
from curate.pipelines._kmeans import BACKENDS, SphericalKMeans
from curate.step import FitStep, add_columns

__all__ = [
    "CENTROID_SIM",
    "CLUSTER",
    "ClusterConfig",
    "ClusterStep",
    "SphericalKMeans",
    "assign_batch",
    "auto_k",
    "centroids_path",
    "cluster",
    "fit_kmeans",
    "sample_rows",
]

CLUSTER = "cluster"
CENTROID_SIM = "centroid_sim"
CENTROIDS_FILE = "centroids.npy"

#: The k-means sample, in rows, once k passes 1024: FAISS's 256 points per centroid up to
#: there, fewer (never below 39, FAISS's minimum) beyond, so the sample stays ~256k rows.
SAMPLE_ROWS = 1 << 18
MIN_POINTS_PER_CENTROID = 39
#: The largest k chosen automatically (``auto_k``).
MAX_AUTO_K = 4096


@dataclass(frozen=True)
class ClusterConfig:
    """How to cluster an embedding column.

    ``k=None`` picks :func:`auto_k` of the valid rows; an explicit ``k`` larger than the number
    of valid rows is an error (it is never clamped silently). The sample has
    :func:`sample_rows` rows, however large the manifest.
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


def auto_k(n_valid: int) -> int:
    """The default number of clusters for ``n_valid`` rows.

    About 100 rows per cluster up to 100k rows (at most 1,000 clusters); beyond, ``sqrt(n)``
    clusters (at least 1,000, at most :data:`MAX_AUTO_K`). Why ``sqrt(n)``: the per-cluster
    work (SemDeDup compares the rows of a cluster pairwise) costs ``n^2 / k`` and assigning
    every row costs ``n * k``, which balance at ``k ~ sqrt(n)``; the cap keeps the k-means
    sample (:func:`sample_rows`) at ~256k rows for any pool: 1M rows -> 1,000 clusters,
    10M -> 3,162, 17M and more -> 4,096.
    """
    if n_valid <= 100_000:
        return int(min(1000, max(1, n_valid // 100)))
    return int(min(MAX_AUTO_K, max(1000, round(math.sqrt(n_valid)))))


def sample_rows(k: int, max_points_per_centroid: int = 256) -> int:
    """Rows in the k-means training sample for ``k`` clusters: ``k x 256`` up to k = 1024
    (FAISS's own cap), then :data:`SAMPLE_ROWS`, and ``k x 39`` past k = 6,721."""
    per = min(max_points_per_centroid, max(MIN_POINTS_PER_CENTROID, SAMPLE_ROWS // k))
    return k * per


def centroids_path(manifest_path: str | os.PathLike) -> Path:
    """``DIR/centroids.npy`` for a directory manifest, ``name.centroids.npy`` beside a file."""
    p = Path(manifest_path)
    if p.suffix == ".parquet":
        return p.with_name(p.stem + ".centroids.npy")
    return p / CENTROIDS_FILE


# -- the fit: sample, then train --------------------------------------------------------------
def _sample_range(path: str, col: E.EmbeddingColumn, chosen: np.ndarray, batch: int, rows):
    """Valid rows in ``rows`` and the chosen ones among them, as unit float32 vectors."""
    m = Manifest(path)
    n_valid, parts = 0, []
    for off, mat, codes, _ in E.scan(m, col, batch_size=batch, rows=rows, prefetch=1):
        ok = codes == E.VALID
        n_valid += int(ok.sum())
        lo, hi = np.searchsorted(chosen, [off, off + len(codes)])
        local = chosen[lo:hi] - off
        parts.append(mat[local[ok[local]]])
    return n_valid, (np.concatenate(parts) if parts else np.zeros((0, col.dim), np.float32))


def sample_vectors(
    manifest: Manifest, col: E.EmbeddingColumn, cfg: ClusterConfig, workers: Workers
) -> tuple[int, np.ndarray]:
    """(valid rows, seeded sample of valid unit vectors in row order): one read of the column
    in row ranges (``workers``), holding only the sample."""
    n = manifest.num_rows
    rng = np.random.default_rng(cfg.seed)
    cap = sample_rows(cfg.k or 1000, cfg.max_points_per_centroid)
    chosen = np.sort(rng.choice(n, cap, replace=False)) if n > cap else np.arange(n)
    # ranges of about one row group: each holds only its small share of the sample
    ranges = P.row_ranges(
        n, max(4 * workers.size, math.ceil(n / 65_536)), starts=manifest.row_group_starts()
    )
    path = str(manifest.path)
    # each range's valid chosen rows go straight into one buffer as the range finishes, at
    # the offset of its first chosen row; gaps (invalid rows) close up at the end
    sample = np.empty((len(chosen), col.dim), np.float32)
    offsets = np.searchsorted(chosen, [lo for lo, _ in ranges])
    counts, sizes = [0] * len(ranges), [0] * len(ranges)

    def place(i: int, result) -> None:
        counts[i] = result[0]
        part = result[1]
        sample[offsets[i] : offsets[i] + len(part)] = part
        sizes[i] = len(part)

    workers.map(
        lambda rows: _sample_range(path, col, chosen, min(cfg.batch_size, 16_384), rows),
        ranges,
        cost=[hi - lo for lo, hi in ranges],
        on_done=place,
        keep_results=False,
    )
    at = 0
    for off, size in zip(offsets, sizes, strict=True):
        sample[at : at + size] = sample[off : off + size]  # moves down: overlap-safe
        at += size
    return sum(counts), sample[:at]


def fit_kmeans(
    manifest: str | os.PathLike | Manifest,
    cfg: ClusterConfig | None = None,
    workers: Workers | None = None,
) -> tuple[SphericalKMeans, int, dict]:
    """Train spherical k-means on a seeded sample: (model, valid rows, timings).

    Memory holds the sample (:func:`sample_rows`), never the manifest.
    """
    cfg = cfg or ClusterConfig()
    m = open_manifest(manifest)
    col = E.check_embedding_column(m, cfg.embedding_column)
    timer = Timer()
    with timer("sample"):
        n_valid, sample = sample_vectors(m, col, cfg, workers or ThreadWorkers())
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
        km.fit_unit(sample)
    return km, n_valid, timer.seconds


# -- the per-batch part: assignment -----------------------------------------------------------
def assign_batch(km: SphericalKMeans, arr: pa.Array, dim: int):
    """(cluster int32 -1 if invalid, centroid_sim float32 NaN if invalid, codes, unit rows)
    for one batch of an embedding column."""
    mat, codes = E.vectors_from_array(arr, dim)
    n = len(codes)
    labels = np.full(n, -1, dtype=np.int32)
    sims = np.full(n, np.nan, dtype=np.float32)
    ok = np.flatnonzero(codes == E.VALID)
    if len(ok) == n:
        labels[:], sims[:] = km.assign_unit(mat)
    elif len(ok):
        labels[ok], sims[ok] = km.assign_unit(mat[ok])
    return labels, sims, codes, mat


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


def cluster_columns(batch, labels, sims, codes, *, step: str, any_invalid: bool) -> dict:
    """``cluster`` / ``centroid_sim`` (null where invalid) and ``error`` for a batch."""
    cols = {
        CLUSTER: pa.array(labels, pa.int32(), mask=labels < 0),
        CENTROID_SIM: pa.array(sims, pa.float32(), mask=labels < 0),
    }
    if any_invalid or S.ERROR in batch.schema.names:
        existing = batch.column(S.ERROR) if S.ERROR in batch.schema.names else None
        cols[S.ERROR] = invalid_error_messages(codes, existing, step)
    return cols


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


class ClusterStep(FitStep):
    """k-means as a step: ``fit`` trains on a bounded sample; each batch then gets its rows'
    ``cluster`` / ``centroid_sim`` (and ``error`` for unusable embeddings) by assignment."""

    name = "cluster"
    thread_safe = True

    def fit(self, manifest: Manifest, workers: Workers | None = None) -> ClusterStep:
        cfg: ClusterConfig = self.config
        km, n_valid, timings = fit_kmeans(manifest, cfg, workers)
        self.model_, self.n_valid_, self.timings_ = km, n_valid, timings
        self.dim_ = E.check_embedding_column(manifest, cfg.embedding_column).dim
        self.any_invalid_ = n_valid < manifest.num_rows
        return self

    @property
    def centroids_(self) -> np.ndarray:
        return self.model_.centroids_

    def _columns(self, batch) -> dict:
        col = batch.column(self.config.embedding_column)
        labels, sims, codes, _ = assign_batch(self.model_, col, self.dim_)
        return cluster_columns(
            batch, labels, sims, codes, step="cluster", any_invalid=self.any_invalid_
        )

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        cache = self.__dict__.setdefault("_schemas", {})
        key = schema.to_string(show_schema_metadata=False)
        if key not in cache:
            empty = np.zeros(0, np.int32)
            cache[key] = extended_schema(
                schema,
                lambda b: cluster_columns(
                    b,
                    empty,
                    empty.astype(np.float32),
                    empty,
                    step="cluster",
                    any_invalid=self.any_invalid_,
                ),
            )
        return cache[key].with_metadata(schema.metadata)

    def process(self, table: pa.Table) -> pa.Table:
        return add_columns(table, self._columns(table), self.output_schema(table.schema))

    def count(self, table: pa.Table) -> dict[str, int]:
        labels = table.column(CLUSTER).drop_null().to_numpy()
        sizes = np.bincount(labels, minlength=self.model_.k)
        out = {f"size:{c}": int(s) for c, s in enumerate(sizes) if s}
        out["clustered"], out["invalid"] = len(labels), table.num_rows - len(labels)
        return out


def cluster(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: ClusterConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: str = "auto",
    overwrite: bool = False,
    **options: Any,
) -> Manifest:
    """Add ``cluster`` (int32) and ``centroid_sim`` (float32 cosine) columns to a manifest.

    Parameters
    ----------
    manifest
        Input manifest with an embedding column.
    out
        Output path (directory, or a ``.parquet`` file); default ``NAME-clustered`` beside
        the input.
    config
        A :class:`ClusterConfig`, or its fields as keyword ``options``: ``k`` (``None`` picks
        :func:`auto_k`: about 100 rows per cluster up to 100k rows, then ``sqrt(n)``, at most
        4,096), ``seed`` (same seed, same sample, same centroids), ``niter``, ``backend``
        (see :class:`SphericalKMeans`), ``embedding_column``, ``batch_size``.
    engine, ray_address
        ``"local"`` or ``"ray"`` (and the cluster to join): where the sample is read and the
        rows assigned (see :mod:`curate.engines`).
    progress
        ``auto``, ``bar``, ``lines`` or ``off``.
    overwrite
        Replace an existing ``out``.

    Returns
    -------
    Manifest
        The output; ``centroids.npy`` lies beside it and ``run.json`` records the run.
        Rows whose embedding is null, NaN or zero get null ``cluster`` and a message in
        ``error``; no row is dropped.
    """
    cfg = resolve_config(ClusterConfig, config, options, step="cluster")
    engine, progress = check_engine(engine), progress_mode(progress)
    m = open_manifest(manifest).validate()
    out = Path(out) if out is not None else default_out(m.path, "clustered")
    if not overwrite:
        prepare_output(out)  # an existing output fails before k-means runs
    with workers_for(engine, ray_address) as workers:
        step = ClusterStep(cfg).fit(m, workers)
        km = step.model_
        info = {
            "config": {**asdict(cfg), "k": km.k, "backend_used": km.backend_},
            "timings": step.timings_,
            "clusters": {"centroids": CENTROIDS_FILE},
        }
        opts = {"overwrite": overwrite, "resume": False, "run_info": info, "progress": progress}
        result = run(step, m, out, engine=engine, ray_address=ray_address, **opts)
    info = result.run_info
    sizes = np.zeros(km.k, np.int64)
    for key in [c for c in info["counts"] if c.startswith("size:")]:
        sizes[int(key[5:])] = info["counts"].pop(key)
    info["clusters"]["sizes"] = sizes.tolist()
    write_run_json(result.path, info)
    np.save(centroids_path(result.path), step.centroids_)
    return Manifest(result.path)
