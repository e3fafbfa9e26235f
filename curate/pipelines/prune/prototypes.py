"""SSL prototypes: keep the hardest (least centroid-like) rows of every cluster, in proportion."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import PruneConfig, PruneMethod, quota_rule
from curate.pipelines.prune.quotas import integer_quotas


class Prototypes(PruneMethod):
    """ "Beyond neural scaling laws" (Sorscher et al.): difficulty = distance to the prototype.

    Each cluster keeps a share of the budget proportional to its size (largest-remainder
    rounding makes the total exact); within it the rows with the lowest ``centroid_sim``
    are kept, or the highest with ``keep_easy``.
    """

    name = "prototypes"

    def decide(self, plan, cfg: PruneConfig) -> tuple[dict, dict]:
        stats = plan.per_cluster(rank="easy" if cfg.keep_easy else "hard")
        sizes = np.zeros(plan.k, np.int64)
        for c, s in stats.items():
            sizes[c] = s["size"]
        quotas = integer_quotas(sizes, sizes, plan.target)
        return {"quota": quotas.tolist()}, {"per_cluster": {"quota": quotas.tolist()}}

    def rule(self, f, state, cfg):
        return quota_rule(f, state["quota"])
