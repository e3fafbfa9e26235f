"""Prune a manifest to a fraction of its rows: SemDeDup, SSL prototypes, DBP, CLIP score, random."""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from curate.config import resolve_config
from curate.engines import check_engine, run
from curate.engines.options import progress_mode
from curate.engines.workers import workers_for
from curate.manifests.io import (
    Manifest,
    default_out,
    open_manifest,
    prepare_output,
    write_manifest,
)
from curate.manifests.runinfo import Timer, write_run_json
from curate.pipelines.cluster import centroids_path
from curate.pipelines.prune.base import KEEP, PruneConfig, PruneMethod, UnknownMethodError
from curate.pipelines.prune.clip_score import ClipScore
from curate.pipelines.prune.dbp import DensityBasedPruning
from curate.pipelines.prune.prototypes import Prototypes
from curate.pipelines.prune.random_subset import RandomSubset
from curate.pipelines.prune.semdedup import SemDeDup
from curate.pipelines.prune.space import default_scratch
from curate.pipelines.prune.step import PruneDecision

__all__ = ["METHODS", "PruneConfig", "PruneMethod", "get_method", "prune"]

#: The pruning methods by name; add a :class:`PruneMethod` subclass here to register one.
METHODS: dict[str, type[PruneMethod]] = {
    "semdedup": SemDeDup,
    "prototypes": Prototypes,
    "dbp": DensityBasedPruning,
    "clip-score": ClipScore,
    "random": RandomSubset,
}


def get_method(name: str) -> PruneMethod:
    """An instance of the method registered as ``name``."""
    try:
        return METHODS[name]()
    except KeyError:
        raise UnknownMethodError(
            f"unknown pruning method {name!r}; choose one of {', '.join(METHODS)}"
        ) from None


def prune(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: PruneConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: str = "auto",
    overwrite: bool = False,
    **options: object,
) -> Manifest:
    """Mark which rows to keep; write every row with ``keep`` and ``prune_reason`` to ``out``.

    ``prune(m, out, keep=0.27, method="dbp")``: the options are the fields of
    :class:`PruneConfig` (or pass ``config=`` directly). Memory is bounded by one cluster, not
    by the pool: k-means trains on a bounded sample, every row is assigned and its vector
    spilled to ``scratch`` partitioned by cluster, and the per-cluster work reads one cluster
    at a time (see :mod:`curate.pipelines.prune.plan`).

    Parameters
    ----------
    manifest, out
        Input manifest (or any Parquet file with an embedding column: LAION's ``url``,
        ``caption``/``TEXT``, ``SAMPLE_ID`` or no id at all, ids then taken as ``curate
        ingest`` takes them) and output path. ``out`` holds ALL rows; none is dropped. Without
        ``out``, the output is ``NAME-pruned.parquet`` (or ``DIR-pruned``) beside the input.
    overwrite
        Replace existing outputs (and an interrupted prune's scratch with other options).
    engine, ray_address
        ``"local"`` (default: worker threads) or ``"ray"`` (every phase's work as Ray tasks,
        the rows written by Ray actors; see :mod:`curate.engines`); both give the same
        manifest.
    progress
        ``auto``, ``bar``, ``lines`` or ``off``.
    config
        A ready :class:`PruneConfig`; mutually exclusive with ``options``.
    **options
        kept_out : path, optional
            Also write the kept rows as their own manifest here.
        scratch : path, optional
            Where the plan spills the vectors (about ``rows x (2 d + 20)`` bytes for SemDeDup
            and ``--dedup-eps``, ``rows x 16`` otherwise); default ``.OUT.prune-scratch`` beside
            the output; removed on success, kept (and resumed from) after a failure.
        keep : float
            Fraction of the valid rows to keep, in (0, 1]: exactly ``round(keep * N)`` rows
            are kept, ``N`` being the rows with a usable embedding (or CLIP score for
            ``clip-score``); invalid rows are never kept and carry their reason.
        method : str, default "dbp"
            ``"dbp"``, ``"semdedup"``, ``"prototypes"``, ``"clip-score"`` or ``"random"``.
        eps : float
            SemDeDup threshold: cosine similarity > 1 - eps is a duplicate. semdedup takes
            either ``eps`` or ``keep``.
        k : int
            Clusters. ``None`` reuses ``cluster``/``centroid_sim`` columns if present, else
            clusters with :func:`~curate.pipelines.cluster.auto_k` clusters; an explicit ``k``
            reclusters.
        seed : int, default 0
            Seed for clustering and the random baseline; same seed, same output.
        keep_easy : bool
            prototypes/dbp: keep the rows closest to their centroid instead of the hardest.
        dedup_eps : float
            dbp: run SemDeDup at this eps first; quotas come from the rows it keeps.
        temperature : float, default 0.5
            dbp: softmax temperature on cluster complexity (the DBP authors' default).
        cluster_balance : float, default 0.5
            dbp: every cluster keeps at least ``cluster_balance x target / k`` rows (or all
            but one of its rows, if fewer): the authors' ``cls_bal_ratio``; 0 switches it off.
        embedding_column : str, default "embedding"
            The vector column to use.
        group_memory : int, default 512 MiB
            Bytes of one cluster's vectors held at once; larger clusters are read in blocks.

    Returns
    -------
    Manifest
        ``out``; its run.json holds the per-cluster size, complexity, quota and kept count.
    """
    kept_out, scratch = options.pop("kept_out", None), options.pop("scratch", None)
    cfg = resolve_config(PruneConfig, config, options, step="prune")
    get_method(cfg.method)  # an unknown method fails before any work
    check_engine(engine)
    progress = progress_mode(progress)  # a bad mode fails before any work
    m = open_manifest(manifest).validate(required=())
    out = Path(out) if out is not None else default_out(m.path, "pruned")
    if not overwrite:
        for path in (out, kept_out):
            if path is not None:
                prepare_output(path, resume=True)  # a finished output fails before any work
    scratch = Path(scratch) if scratch is not None else default_scratch(out)
    step = PruneDecision(cfg, scratch=scratch, progress=progress, overwrite=overwrite)
    timer = Timer()
    with workers_for(engine, ray_address) as workers:
        with timer("fit"):
            step.fit(m, workers)
        decided = step.decided_
        info_cfg = {**asdict(cfg), "kept_out": str(kept_out) if kept_out else None}
        info = {
            "config": info_cfg,
            "counts": decided.counts,
            "explain": decided.explain,
            "timings": decided.timings,
        }
        with timer("write"):
            result = run(
                step,
                m,
                out,
                engine=engine,
                ray_address=ray_address,
                overwrite=overwrite,
                resume=True,
                progress=progress,
                run_info=info,
            )
    if decided.centroids is not None:
        np.save(centroids_path(result.path), decided.centroids)
    if kept_out is not None:
        _write_kept(result, kept_out, overwrite=overwrite)
    info = result.run_info
    info["timings"]["write"] = timer.seconds["write"]
    for path in (out, kept_out):
        if path is not None:
            write_run_json(path, info)
    return Manifest(out)


def _write_kept(result: Manifest, kept_out, *, overwrite: bool) -> None:
    """The kept rows of a written prune output, as their own manifest (centroids beside)."""
    batches = (b.filter(b.column(KEEP)) for b in result.iter_batches(prefetch=1))
    path = write_manifest(batches, kept_out, overwrite=True, schema=result.schema)
    src = centroids_path(result.path)
    if src.exists():
        np.save(centroids_path(path), np.load(src))
