"""Write a pruning decision: every row with keep and prune_reason, optionally the kept rows."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.manifests import parallel as P
from curate.manifests import schema as S
from curate.manifests.io import Manifest, ManifestWriter
from curate.pipelines.cluster import (
    CENTROID_SIM,
    CLUSTER,
    centroids_path,
    extended_schema,
    invalid_error_messages,
    with_columns,
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


def _new_columns(batch, sl, sel, loaded: Loaded, ids, method) -> dict[str, pa.Array]:
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


def write_outputs(m: Manifest, out, kept_out, sel: Selection, loaded: Loaded, **opts) -> None:
    """Stream ``m`` once, writing all rows to ``out`` and the kept ones to ``kept_out``.

    Row ranges are read and written by parallel threads, one output shard per range.
    ``opts``: ``overwrite``, ``run_info`` (dict for run.json), ``method`` (name).
    """
    method, overwrite, info = opts["method"], opts["overwrite"], opts["run_info"]
    ids = m.read([S.ID]).column(S.ID) if (sel.reason == DUP).any() else None
    schema = extended_schema(
        m.schema, lambda b: _new_columns(b, slice(0, 0), sel, loaded, None, method)
    )
    writers = [ManifestWriter(out, overwrite=overwrite, schema=schema)]
    if kept_out is not None:
        writers.append(ManifestWriter(kept_out, overwrite=overwrite, schema=schema))

    def transform(batch: pa.RecordBatch, sl: slice):
        full = with_columns(batch, _new_columns(batch, sl, sel, loaded, ids, method))
        kept = full.filter(pa.array(sel.keep[sl])) if kept_out is not None else None
        return (full, kept)[: len(writers)]

    try:
        if loaded.computed_clusters:
            for w in writers:
                np.save(centroids_path(w.out), loaded.data.centroids)
        P.rewrite(m, writers, transform)
        for w in writers:
            w.close(info)
    except BaseException:
        for w in writers:
            w.abort()
        raise
