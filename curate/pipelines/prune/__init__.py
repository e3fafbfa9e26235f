"""Prune a manifest to a fraction of its rows: SemDeDup, SSL prototypes, DBP, CLIP score, random."""

from __future__ import annotations

import os
from dataclasses import asdict

import numpy as np

from curate.config import resolve_config
from curate.engines import check_engine, fitting, run
from curate.manifests.io import Manifest, open_manifest, prepare_output, write_manifest
from curate.manifests.runinfo import Timer, write_run_json
from curate.pipelines.cluster import centroids_path
from curate.pipelines.prune.base import (
    KEEP,
    PruneConfig,
    PruneMethod,
    Selection,
    UnknownMethodError,
    reason_text,
)
from curate.pipelines.prune.clip_score import ClipScore
from curate.pipelines.prune.dbp import DensityBasedPruning
from curate.pipelines.prune.prototypes import Prototypes
from curate.pipelines.prune.random_subset import RandomSubset
from curate.pipelines.prune.semdedup import SemDeDup
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


def _explain(m: Manifest, sel: Selection, loaded, cfg: PruneConfig) -> tuple[dict, dict]:
    """(counts, explain) for run.json: removals by reason and the per-cluster table."""
    data = loaded.data
    reasons: dict[str, int] = {}
    codes, counts = np.unique(sel.reason[~sel.keep], return_counts=True)
    for code, count in zip(codes, counts, strict=True):
        text = reason_text(int(code), cfg.method) or "unknown"
        reasons[text.removesuffix("=") if text.endswith("=") else text] = int(count)
    n_kept = int(sel.keep.sum())
    counts_out = {
        "rows": m.num_rows,
        "valid": data.n_valid,
        "invalid": m.num_rows - data.n_valid,
        "target": data.target,
        "kept": n_kept,
        "removed": m.num_rows - n_kept,
        "removed_by_reason": reasons,
    }
    explain = dict(sel.explain)
    if data.cluster is not None:
        valid = np.flatnonzero(data.valid)
        per = {
            "cluster": list(range(data.k)),
            "size": np.bincount(data.cluster[valid], minlength=data.k).tolist(),
            "kept": np.bincount(data.cluster[sel.keep], minlength=data.k).tolist(),
        }
        extra = explain.pop("per_cluster", {})
        if "cluster" in extra:  # sparse table (semdedup): spread onto all clusters
            groups = np.zeros(data.k, np.int64)
            groups[extra["cluster"]] = extra["groups"]
            extra = {"duplicate_groups": groups.tolist()}
        explain["per_cluster"] = {**per, **extra}
        explain["k"] = data.k
    return counts_out, explain


def prune(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    kept_out: str | os.PathLike | None = None,
    overwrite: bool = False,
    config: PruneConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: str = "auto",
    **options: object,
) -> Manifest:
    """Mark which rows to keep; write every row with ``keep`` and ``prune_reason`` to ``out``.

    ``prune(m, out, keep=0.27, method="dbp")``: the options are the fields of
    :class:`PruneConfig` (or pass ``config=`` directly).

    Parameters
    ----------
    manifest, out
        Input manifest and output path. ``out`` holds ALL rows; none is dropped.
    kept_out
        Also write the kept rows as their own manifest here.
    overwrite
        Replace existing outputs.
    engine, ray_address
        ``"local"`` (default) or ``"ray"`` (see :mod:`curate.engines`): the decision is made
        once over the whole manifest (the fit stage), then the engine writes every row's
        columns; both give the same manifest.
    progress
        ``auto``, ``bar``, ``lines`` or ``off``.
    config
        A ready :class:`PruneConfig`; mutually exclusive with ``options``.
    **options
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
            clusters with about 100 rows per cluster; an explicit ``k`` reclusters.
        seed : int, default 0
            Seed for clustering and the random baseline; same seed, same output.
        keep_easy : bool
            prototypes/dbp: keep the rows closest to their centroid instead of the hardest.
        dedup_eps : float
            dbp: run SemDeDup at this eps first; quotas come from the rows it keeps.
        temperature : float, default 0.1
            dbp: softmax temperature on cluster complexity (lower is more uneven).
        embedding_column : str, default "embedding"
            The vector column to use.

    Returns
    -------
    Manifest
        ``out``; its run.json holds the per-cluster size, complexity, quota and kept count.
    """
    cfg = resolve_config(PruneConfig, config, options, step="prune")
    get_method(cfg.method)  # an unknown method fails before any work
    check_engine(engine)
    m = open_manifest(manifest).validate()
    if not overwrite:
        for path in (out, kept_out):
            if path is not None:
                prepare_output(path)  # an existing output fails before any work
    with fitting(engine, ray_address):  # the fit here; under Ray its clusters as a groupby
        return _prune(m, out, cfg, kept_out, engine, ray_address, overwrite, progress)


def _prune(m, out, cfg, kept_out, engine, ray_address, overwrite, progress) -> Manifest:
    step = PruneDecision(cfg)
    timer = Timer()
    with timer("fit"):
        step.fit(m)
    counts, explain = _explain(m, step.selection_, step.loaded_, cfg)
    info_cfg = {**asdict(cfg), "kept_out": str(kept_out) if kept_out else None}
    info = {"config": info_cfg, "counts": counts, "explain": explain, "timings": step.timings_}
    with timer("write"):
        result = run(
            step,
            m,
            out,
            engine=engine,
            ray_address=ray_address,
            overwrite=overwrite,
            resume=False,
            progress=progress,
            run_info=info,
        )
        if step.loaded_.computed_clusters:
            np.save(centroids_path(result.path), step.loaded_.data.centroids)
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
    path = write_manifest(batches, kept_out, overwrite=overwrite, schema=result.schema)
    src = centroids_path(result.path)
    if src.exists():
        np.save(centroids_path(path), np.load(src))
