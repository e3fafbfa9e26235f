"""SSL prototypes: keep the hardest (least centroid-like) rows of every cluster, in proportion."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import (
    OVER_QUOTA,
    PruneConfig,
    PruneData,
    PruneMethod,
    Selection,
    cluster_sizes,
    keep_by_quota,
)
from curate.pipelines.prune.quotas import integer_quotas


class Prototypes(PruneMethod):
    """ "Beyond neural scaling laws" (Sorscher et al.): difficulty = distance to the prototype.

    Each cluster keeps a share of the budget proportional to its size (largest-remainder
    rounding makes the total exact); within it the rows with the lowest ``centroid_sim``
    are kept, or the highest with ``keep_easy``.
    """

    name = "prototypes"

    def select(self, data: PruneData, cfg: PruneConfig) -> Selection:
        rows = np.flatnonzero(data.valid)
        sizes = cluster_sizes(data, rows)
        quotas = integer_quotas(sizes, sizes, data.target)
        sel = Selection.empty(data.n_rows, OVER_QUOTA)
        keep_by_quota(data, rows, quotas, easy=cfg.keep_easy, sel=sel)
        sel.explain = {"per_cluster": {"quota": quotas.tolist()}}
        return sel
