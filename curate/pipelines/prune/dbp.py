"""Density-based pruning: cluster quotas from softmax(complexity / T), hardest rows kept."""

from __future__ import annotations

import numpy as np

from curate.errors import InputError
from curate.pipelines.prune.base import PruneConfig, PruneMethod, quota_rule
from curate.pipelines.prune.quotas import dbp_floors, integer_quotas, softmax


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


def complexity(stats: dict[int, dict], centroids: np.ndarray, n_neighbors: int):
    """(sizes, d_intra, d_inter, complexity) per cluster from the per-cluster aggregates of
    the rows left after deduplication: d_intra = mean (1 - centroid_sim)."""
    k = len(centroids)
    sizes = np.zeros(k, np.int64)
    dist = np.zeros(k)
    for c, s in stats.items():
        sizes[c], dist[c] = s["live"], s["dist"]
    d_intra = dist / np.maximum(sizes, 1)
    d_inter = inter_cluster_distance(centroids, n_neighbors)
    return sizes, d_intra, d_inter, d_intra * d_inter


class DensityBasedPruning(PruneMethod):
    """Abbas et al., "Effective pruning of web-scale datasets based on complexity of concept
    clusters": complex (diffuse, crowded) clusters keep more, simple ones less.

    Quotas solve the authors' QP (``softmax(complexity / T) * target`` under the cluster sizes,
    each cluster at least ``cluster_balance * target / k``), rounded by largest remainder so
    they sum to ``target`` exactly; within a cluster the hardest rows are kept. With
    ``dedup_eps`` SemDeDup runs first, inside the same per-cluster pass, and quotas are drawn
    from the rows it keeps.
    """

    name = "dbp"

    def needs_vectors(self, cfg: PruneConfig) -> bool:
        return cfg.dedup_eps is not None

    def decide(self, plan, cfg: PruneConfig) -> tuple[dict, dict]:
        threshold = None if cfg.dedup_eps is None else 1.0 - cfg.dedup_eps
        rank = "easy" if cfg.keep_easy else "hard"
        stats = plan.per_cluster(threshold=threshold, rank=rank, ids=threshold is not None)
        explain: dict = {"temperature": cfg.temperature, "cluster_balance": cfg.cluster_balance}
        sizes, d_intra, d_inter, cx = complexity(stats, plan.centroids, cfg.n_neighbors)
        if threshold is not None:
            explain["after_dedup"] = int(sizes.sum())
            if sizes.sum() < plan.target:
                raise InputError(
                    f"SemDeDup at --dedup-eps {cfg.dedup_eps} leaves {int(sizes.sum())} rows, "
                    f"fewer than the {plan.target} that --keep {cfg.keep} asks for; lower "
                    "--dedup-eps or --keep."
                )
        weights = np.where(sizes > 0, softmax(cx, cfg.temperature), 0.0)
        floors = dbp_floors(sizes, plan.target, cfg.cluster_balance)
        quotas = integer_quotas(weights, sizes, plan.target, floors)
        explain["per_cluster"] = {
            "d_intra": np.round(d_intra, 6).tolist(),
            "d_inter": np.round(d_inter, 6).tolist(),
            "complexity": np.round(cx, 6).tolist(),
            "quota": quotas.tolist(),
        }
        return {"quota": quotas.tolist()}, explain

    def rule(self, f, state, cfg):
        return quota_rule(f, state["quota"])
