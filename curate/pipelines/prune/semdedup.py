"""SemDeDup: near-duplicates inside each cluster, one representative kept per duplicate group."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import DUP, KEPT, OVER_QUOTA, PruneConfig, PruneMethod
from curate.pipelines.prune.select import at_or_below, negate, smallest


def eps_threshold(plan, remove: int) -> float:
    """The cosine threshold whose near-neighbour duplicate structure leaves ``remove`` fewer
    groups than rows: the tightest one that still links ``remove`` forest edges."""
    edges = plan.forest_edges()
    if remove <= 0 or edges == 0:
        return 1.0 + 1e-3  # nothing above it: no duplicates
    weights = plan.stream_forest()
    if remove >= edges:
        return float(np.float32(smallest(weights, 1)[0])) - 1e-6
    negated = negate(weights)
    a = np.float32(-smallest(negated, remove)[0])  # the remove-th largest merge similarity
    b = np.float32(-smallest(negated, remove + 1)[0])
    return float(a - min(1e-6, (a - b) / 2))


class SemDeDup(PruneMethod):
    """Near-duplicate removal inside k-means clusters (Abbas et al., SemDeDup).

    With ``eps``, rows with cosine similarity > 1 - eps are linked; each connected group
    keeps one row, the one least similar to its centroid. With ``keep``, eps is chosen from
    the near-neighbour single-linkage structure so that the groups number ``target``; the exact
    pass at that eps is then filled (least similar duplicates re-admitted) or trimmed (easiest
    representatives dropped) to the exact count.
    """

    name = "semdedup"

    def needs_vectors(self, cfg: PruneConfig) -> bool:
        return True

    def decide(self, plan, cfg: PruneConfig) -> tuple[dict, dict]:
        if cfg.eps is not None:
            threshold = 1.0 - cfg.eps
        else:
            plan.per_cluster(forest=True)
            threshold = eps_threshold(plan, plan.n_valid - plan.target)
        stats = plan.per_cluster(threshold=threshold, dup_sim=cfg.keep is not None, ids=True)
        groups = sum(s["live"] for s in stats.values())
        state: dict = {"fill": None, "trim": None}
        if cfg.keep is not None and groups < plan.target:
            state["fill"] = smallest(plan.stream_decided("dup_sim", dup=True), plan.target - groups)
        elif cfg.keep is not None and groups > plan.target:
            state["trim"] = smallest(plan.stream_decided("-sim", dup=False), groups - plan.target)
        order = sorted(stats)
        explain = {
            "eps": round(1.0 - threshold, 6),
            "duplicate_groups": groups,
            "per_cluster": {
                "cluster": order,
                "size": [stats[c]["size"] for c in order],
                "groups": [stats[c]["groups"] for c in order],
            },
        }
        return state, explain

    def rule(self, f, state, cfg):
        dup = f["dup"]
        keep = ~dup
        reason = np.where(dup, DUP, KEPT).astype(np.int8)
        fill = state["fill"] and tuple(state["fill"])
        trim = state["trim"] and tuple(state["trim"])
        if fill:
            back = dup & at_or_below(f["dup_sim"], f["row"], fill)
            keep, reason = keep | back, np.where(back, KEPT, reason).astype(np.int8)
        if trim:
            drop = ~dup & at_or_below(-f["sim"].astype(np.float64), f["row"], trim)
            keep, reason = keep & ~drop, np.where(drop, OVER_QUOTA, reason).astype(np.int8)
        return keep, reason
