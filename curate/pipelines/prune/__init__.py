"""Prune a manifest to a fraction of its rows: SemDeDup, SSL prototypes, DBP, CLIP score, random."""

from __future__ import annotations

import os
from dataclasses import asdict

import numpy as np

from curate.config import resolve_config
from curate.errors import InputError
from curate.manifests.io import Manifest, open_manifest
from curate.manifests.runinfo import Timer, make_run_info, write_run_json
from curate.pipelines.prune._load import load
from curate.pipelines.prune._write import write_outputs
from curate.pipelines.prune.base import (
    KEPT,
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
    impl = get_method(cfg.method)
    m = open_manifest(manifest).validate()
    timer = Timer()
    with timer("load"):
        loaded = load(m, impl, cfg)
    if loaded.data.n_valid == 0:
        what = "clip_score" if cfg.method == "clip-score" else repr(cfg.embedding_column)
        raise InputError(
            f"{m.path}: no row is usable for {cfg.method}: every {what} is null, NaN or zero."
        )
    with timer(cfg.method):
        sel = impl.select(loaded.data, cfg)
    loaded.data.vectors = None  # the write needs no vectors: N x d x 2 bytes less at the peak
    invalid = ~loaded.data.valid
    sel.keep[invalid] = False
    sel.reason[invalid] = loaded.invalid_reason[invalid]
    sel.dup_of[invalid] = -1
    assert (sel.reason[sel.keep] == KEPT).all()
    counts, explain = _explain(m, sel, loaded, cfg)
    info_cfg = {**asdict(cfg), "kept_out": str(kept_out) if kept_out else None}
    info = make_run_info(
        "prune",
        config=info_cfg,
        inputs={"manifest": m.path},
        counts=counts,
        timings=timer.seconds,
        explain=explain,
    )
    info["timings"] = {**loaded.timings, **info["timings"]}
    with timer("write"):
        write_outputs(
            m, out, kept_out, sel, loaded, overwrite=overwrite, run_info=info, method=cfg.method
        )
    info["timings"]["write"] = timer.seconds["write"]
    for path in (out, kept_out):
        if path is not None:
            write_run_json(path, info)
    return Manifest(out)
