"""CLIP-score filtering: keep the rows whose image-text similarity is highest (DataComp)."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import (
    BELOW_CUTOFF,
    PruneConfig,
    PruneData,
    PruneMethod,
    Selection,
)


class ClipScore(PruneMethod):
    """Keep the ``target`` rows with the highest ``clip_score`` (ties to the lower row index).

    Rows with a null or NaN score are invalid for this method and never kept.
    """

    name = "clip-score"
    needs_clusters = False
    needs_embeddings = False

    def select(self, data: PruneData, cfg: PruneConfig) -> Selection:
        rows = np.flatnonzero(data.valid)
        order = rows[np.lexsort((rows, -data.clip_score[rows]))]
        sel = Selection.empty(data.n_rows, BELOW_CUTOFF)
        sel.mark_kept(order[: data.target])
        cutoff = float(data.clip_score[order[data.target - 1]]) if data.target else None
        sel.explain = {"clip_score_cutoff": cutoff}
        return sel
