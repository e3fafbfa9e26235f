"""Streaming two-pass ranking over Parquet: memory bounded by one batch, not the dataset.

Pass 1 reads ``(label, pred_probs)`` batches and merges per-class confident thresholds;
pass 2 re-reads them, scores each batch and counts the confident joint's off-diagonal, as
cleanlab's batched ``LabelInspector`` does, but with results identical to
``cleanlab.filter.find_label_issues`` for the chunked methods. Only per-row scalars are kept.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow.compute as pc

from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest
from curate.models.features import list_to_numpy
from curate.pipelines.label_issues.ranking import Ranking, chunk_rows, rank_chunked
from curate.pipelines.label_issues.validate import check_chunk, warn_renormalised


def _width(m: Manifest, column: str) -> int:
    if column not in m.schema.names:
        raise InputError(f"{m.path}: no column {column!r}; it has {m.schema.names}.")
    t = m.schema.field(column).type
    if hasattr(t, "list_size"):
        return t.list_size
    first = next(m.iter_batches([column], batch_size=1))
    return len(first.column(0)[0])


def rank_parquet(
    manifest: str | os.PathLike | Manifest,
    *,
    column: str = "pred_probs",
    label_column: str = S.LABEL,
    method: str = "low_self_confidence",
    rank_by: str = "self_confidence",
    batch_size: int = 65_536,
) -> Ranking:
    """Rank every row of a Parquet manifest holding labels and a ``pred_probs`` list column.

    Parameters
    ----------
    manifest
        A Parquet file or manifest directory with ``label_column`` (int) and ``column``
        (FixedSizeList<float>) per row.
    method, rank_by
        A chunked method (``low_self_confidence``, ``confident_learning``,
        ``predicted_neq_given``) and ``self_confidence`` or ``normalized_margin``.
    batch_size
        Upper bound on rows per batch; the batch is also capped near 64 MiB of probabilities.

    Returns
    -------
    Ranking
        Per-row arrays in file order; memory is O(rows) scalars plus one batch.
    """
    m = open_manifest(manifest)
    k = _width(m, column)
    rows = chunk_rows(k, batch_size)
    renormalised = [0]

    def chunks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        renormalised[0], offset = 0, 0
        for batch in m.iter_batches([label_column, column], batch_size=rows):
            labels = batch.column(0)
            if labels.null_count:
                raise InputError(f"{m.path}: {labels.null_count} null labels near row {offset}.")
            y = pc.cast(labels, "int64").to_numpy()
            pp, changed = check_chunk(list_to_numpy(batch.column(1), k), offset=offset)
            bad = (y < 0) | (y >= k)
            if bad.any():
                raise InputError(
                    f"{m.path}: row {offset + int(np.argmax(bad))} has label "
                    f"{int(y[bad][0])} outside 0..{k - 1}."
                )
            renormalised[0] += changed
            offset += len(y)
            yield y, pp

    ranking = rank_chunked(chunks, m.num_rows, k, method=method, rank_by=rank_by)
    warn_renormalised(renormalised[0], m.num_rows, str(m.path))
    return ranking
