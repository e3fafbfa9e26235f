"""Random subset: a uniform seeded sample of the same size, the baseline (RS2) to beat."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import NOT_SAMPLED, PruneConfig, PruneData, PruneMethod, Selection


class RandomSubset(PruneMethod):
    """Keep ``target`` valid rows drawn uniformly without replacement (seeded)."""

    name = "random"
    needs_clusters = False

    def select(self, data: PruneData, cfg: PruneConfig) -> Selection:
        rows = np.flatnonzero(data.valid)
        rng = np.random.default_rng(cfg.seed)
        sel = Selection.empty(data.n_rows, NOT_SAMPLED)
        sel.mark_kept(np.sort(rng.choice(rows, data.target, replace=False)))
        return sel
