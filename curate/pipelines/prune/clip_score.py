"""CLIP-score filtering: keep the rows whose image-text similarity is highest (DataComp)."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import (
    BELOW_CUTOFF,
    CLIP_SCORE,
    KEPT,
    PruneConfig,
    PruneMethod,
)
from curate.pipelines.prune.select import at_or_below, smallest


class ClipScore(PruneMethod):
    """Keep the ``target`` rows with the highest ``clip_score`` (ties to the lower row index).

    Rows with a null or NaN score are invalid for this method and never kept. The cut-off is
    found by radix selection over the scores, which are never all held at once.
    """

    name = "clip-score"
    needs_clusters = False
    needs_embeddings = False
    key_column = CLIP_SCORE

    def decide(self, plan, cfg: PruneConfig) -> tuple[dict, dict]:
        cut = smallest(plan.stream_keys(negate=True), plan.target)
        return {"cut": cut}, {"clip_score_cutoff": None if cut is None else -cut[0]}

    def rule(self, f, state, cfg):
        cut = state["cut"]
        keep = at_or_below(-f["key"], f["row"], tuple(cut) if cut else None)
        return keep, np.where(keep, KEPT, BELOW_CUTOFF).astype(np.int8)
