"""The columns of a pruning decision for a run of rows: keep, prune_reason, fresh clusters."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S
from curate.pipelines.cluster import (
    CENTROID_SIM,
    CLUSTER,
    invalid_error_messages,
)
from curate.pipelines.prune._load import Loaded
from curate.pipelines.prune.base import DUP, KEEP, KEPT, PRUNE_REASON, Selection, reason_text


def reason_strings(sel: Selection, sl: slice, ids: pa.ChunkedArray | None, method: str):
    """The prune_reason column for rows ``sl``: null where kept."""
    codes = sel.reason[sl]
    out = np.full(len(codes), None, dtype=object)
    for code in np.unique(codes):
        if code != KEPT and code != DUP:
            out[codes == code] = reason_text(int(code), method)
    dups = np.flatnonzero((codes == DUP) & ~sel.keep[sl])
    if len(dups):
        targets = ids.take(pa.array(sel.dup_of[sl][dups])).to_pylist()
        out[dups] = [f"semdedup:dup_of={t}" for t in targets]
    out[sel.keep[sl]] = None
    return pa.array(out, pa.string())


def new_columns(batch, sl, sel, loaded: Loaded, ids, method) -> dict[str, pa.Array]:
    cols: dict[str, pa.Array] = {}
    data = loaded.data
    if loaded.computed_clusters:
        lab = data.cluster[sl]
        cols[CLUSTER] = pa.array(lab, pa.int32(), mask=lab < 0)
        cols[CENTROID_SIM] = pa.array(data.centroid_sim[sl], pa.float32(), mask=lab < 0)
    codes = loaded.embedding_codes
    if codes is not None and ((codes != 0).any() or S.ERROR in batch.schema.names):
        existing = batch.column(S.ERROR) if S.ERROR in batch.schema.names else None
        cols[S.ERROR] = invalid_error_messages(codes[sl], existing, "prune")
    cols[KEEP] = pa.array(sel.keep[sl], pa.bool_())
    cols[PRUNE_REASON] = reason_strings(sel, sl, ids, method)
    return cols
