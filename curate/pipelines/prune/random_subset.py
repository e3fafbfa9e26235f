"""Random subset: a uniform seeded sample of the same size, the baseline (RS2) to beat."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import KEPT, NOT_SAMPLED, PruneConfig, PruneMethod


class RandomSubset(PruneMethod):
    """Keep ``target`` valid rows drawn uniformly without replacement (seeded).

    The draw is numpy's ``Generator.choice`` over the valid rows' ordinals; it holds 8 bytes
    per valid row while it draws (numpy's sampler), nothing per row afterwards but the draw.
    """

    name = "random"
    needs_clusters = False

    def decide(self, plan, cfg: PruneConfig) -> tuple[dict, dict]:
        rng = np.random.default_rng(cfg.seed)
        chosen = np.sort(rng.choice(plan.n_valid, plan.target, replace=False))
        return {"sample": plan.save_array("random-sample", chosen)}, {}

    def rule(self, f, state, cfg):
        chosen = f["load"](state["sample"])
        ordinal = f["ordinal"]
        pos = np.searchsorted(chosen, ordinal)
        keep = (pos < len(chosen)) & (chosen[np.minimum(pos, len(chosen) - 1)] == ordinal)
        return keep, np.where(keep, KEPT, NOT_SAMPLED).astype(np.int8)
