"""Density-based pruning: cluster quotas from softmax(complexity / T), hardest rows kept."""

from __future__ import annotations

import time

import numpy as np

from curate.errors import InputError
from curate.pipelines.prune.base import (
    OVER_QUOTA,
    PruneConfig,
    PruneData,
    PruneMethod,
    Selection,
    cluster_sizes,
    keep_by_quota,
)
from curate.pipelines.prune.quotas import integer_quotas, softmax
from curate.pipelines.prune.semdedup import mark_duplicates


def inter_cluster_distance(centroids: np.ndarray, n_neighbors: int = 20) -> np.ndarray:
    """d_inter: mean cosine distance from each centroid to its ``n_neighbors`` nearest others.

    With one cluster there is no neighbour and d_inter is 1 for it.
    """
    k = len(centroids)
    m = min(n_neighbors, k - 1)
    if m < 1:
        return np.ones(k)
    c = centroids.astype(np.float32)
    out = np.empty(k)
    step = max(1, (1 << 22) // k)
    for i0 in range(0, k, step):
        s = c[i0 : i0 + step] @ c.T
        s[np.arange(len(s)), np.arange(i0, i0 + len(s))] = -np.inf
        top = -np.partition(-s, m - 1, axis=1)[:, :m]
        out[i0 : i0 + len(s)] = (1.0 - top).mean(axis=1)
    return out


def cluster_complexity(data: PruneData, rows: np.ndarray, n_neighbors: int = 20):
    """(sizes, d_intra, d_inter, complexity) per cluster over ``rows``.

    d_intra is the mean cosine distance (1 - centroid_sim) of a cluster's rows to its
    centroid; complexity = d_intra * d_inter.
    """
    sizes = cluster_sizes(data, rows)
    dist = np.bincount(
        data.cluster[rows],
        weights=1.0 - data.centroid_sim[rows].astype(np.float64),
        minlength=data.k,
    )
    d_intra = dist / np.maximum(sizes, 1)
    d_inter = inter_cluster_distance(data.centroids, n_neighbors)
    return sizes, d_intra, d_inter, d_intra * d_inter


class DensityBasedPruning(PruneMethod):
    """Abbas et al., "Effective pruning of web-scale datasets based on complexity of concept
    clusters": complex (diffuse, crowded) clusters keep more, simple ones less.

    Quotas are ``softmax(complexity / T) * target`` water-filled under the cluster sizes and
    rounded by largest remainder, so they sum to ``target`` exactly. With ``dedup_eps``
    SemDeDup runs first and quotas are drawn from the rows it keeps.
    """

    name = "dbp"

    def select(self, data: PruneData, cfg: PruneConfig) -> Selection:
        rows = np.flatnonzero(data.valid)
        sel = Selection.empty(data.n_rows, OVER_QUOTA)
        explain: dict = {"temperature": cfg.temperature}
        if cfg.dedup_eps is not None:
            t0 = time.perf_counter()
            mark_duplicates(data, rows, 1.0 - cfg.dedup_eps, sel)
            explain["semdedup_seconds"] = round(time.perf_counter() - t0, 4)
            rows = rows[sel.keep[rows]]
            sel.keep[rows] = False
            sel.reason[rows] = OVER_QUOTA
            explain["after_dedup"] = len(rows)
            if len(rows) < data.target:
                raise InputError(
                    f"SemDeDup at --dedup-eps {cfg.dedup_eps} leaves {len(rows)} rows, fewer "
                    f"than the {data.target} that --keep {cfg.keep} asks for; lower "
                    "--dedup-eps or --keep."
                )
        sizes, d_intra, d_inter, complexity = cluster_complexity(data, rows, cfg.n_neighbors)
        weights = np.where(sizes > 0, softmax(complexity, cfg.temperature), 0.0)
        quotas = integer_quotas(weights, sizes, data.target)
        keep_by_quota(data, rows, quotas, easy=cfg.keep_easy, sel=sel)
        explain["per_cluster"] = {
            "d_intra": np.round(d_intra, 6).tolist(),
            "d_inter": np.round(d_inter, 6).tolist(),
            "complexity": np.round(complexity, 6).tolist(),
            "quota": quotas.tolist(),
        }
        sel.explain = explain
        return sel
