"""Find and rank label issues: cleanlab in memory, or curate's two-pass chunked equivalent.

The chunked path reproduces ``cleanlab.filter.find_label_issues`` for the methods in
``CHUNKED_METHODS`` (and ``cleanlab.rank.get_label_quality_scores`` for ``self_confidence`` and
``normalized_margin``) without ever holding more than one chunk of ``pred_probs``: pass 1
averages the self-confidence per given class (cleanlab's confident thresholds, merged across
chunks), pass 2 scores each chunk and counts the off-diagonal entries of the confident joint.
Only per-row scalars (scores, suggested label) are kept, so memory is O(rows + chunk × classes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from curate.pipelines.label_issues.config import CHUNKED_METHODS, CHUNKED_RANK_BY

FLOATING_POINT_COMPARISON = 1e-6  # cleanlab.internal.constants
CONFIDENT_THRESHOLDS_LOWER_BOUND = 2e-6
MISSING_CLASS_THRESHOLD = 2.0  # cleanlab's BIG_VALUE: nothing is confidently a missing class
CHUNK_ELEMENTS = 1 << 24  # rows per chunk = this // classes (64 MiB of float32)

#: A re-iterable source of ``(labels, pred_probs)`` chunks in row order.
Chunks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


@dataclass
class Ranking:
    """Per-row results of issue finding, in the input's row order."""

    label_quality: np.ndarray
    is_label_issue: np.ndarray
    suggested_label: np.ndarray
    suggested_confidence: np.ndarray
    num_issues: int
    confident_thresholds: np.ndarray | None = None


def chunk_rows(n_classes: int, batch_size: int) -> int:
    """Rows per chunk so that one chunk of ``pred_probs`` stays near 64 MiB."""
    return max(1, min(batch_size, CHUNK_ELEMENTS // max(1, n_classes)))


def array_chunks(labels: np.ndarray, pred_probs: np.ndarray, rows: int) -> Chunks:
    """Chunks over in-memory (or memory-mapped) arrays, ``rows`` at a time."""

    def gen() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for start in range(0, len(labels), rows):
            yield labels[start : start + rows], pred_probs[start : start + rows]

    return gen


def confident_thresholds(chunks: Chunks, n_classes: int) -> np.ndarray:
    """Pass 1: the mean self-confidence of each given class, merged over all chunks."""
    sums = np.zeros(n_classes, dtype=np.float64)
    counts = np.zeros(n_classes, dtype=np.int64)
    for labels, pp in chunks():
        self_conf = pp[np.arange(len(labels)), labels]
        sums += np.bincount(labels, weights=self_conf, minlength=n_classes)
        counts += np.bincount(labels, minlength=n_classes)
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), MISSING_CLASS_THRESHOLD)
    return np.clip(thresholds, CONFIDENT_THRESHOLDS_LOWER_BOUND, None)


def _reduce_issues(labels: np.ndarray, pp: np.ndarray) -> np.ndarray:
    """Rows where the given label is (within 1e-6) the model's top class (cleanlab's rule)."""
    bumped = np.array(pp, copy=True)
    bumped[np.arange(len(labels)), labels] += FLOATING_POINT_COMPARISON
    return bumped.argmax(axis=1) == labels


def _off_diagonal(labels: np.ndarray, pp: np.ndarray, pred: np.ndarray, adj: np.ndarray):
    """Rows counted off the diagonal of the confident joint (cleanlab's off_diagonal rule)."""
    confident = pp >= adj
    n_confident = confident.sum(axis=1)
    guess = np.where(n_confident > 1, pred, confident.argmax(axis=1))
    return (n_confident > 0) & (guess != labels)


def _score_chunk(labels, pp, thresholds, *, method: str, rank_by: str):
    rows = np.arange(len(labels))
    self_conf = pp[rows, labels]
    pred = pp.argmax(axis=1)
    conf = pp[rows, pred]
    if rank_by == "normalized_margin":
        others = np.array(pp, copy=True)
        others[rows, labels] = -np.inf
        quality = (self_conf - others.max(axis=1) + 1) / 2
    else:
        quality = self_conf
    reduce = _reduce_issues(labels, pp)
    off = _off_diagonal(labels, pp, pred, thresholds - FLOATING_POINT_COMPARISON) & ~reduce
    flag = (pred != labels) & ~reduce if method == "predicted_neq_given" else off
    return self_conf, quality, pred, conf, flag, int(off.sum())


def rank_chunked(
    chunks: Chunks,
    n_rows: int,
    n_classes: int,
    *,
    method: str = "low_self_confidence",
    rank_by: str = "self_confidence",
) -> Ranking:
    """Two passes over ``chunks``: thresholds, then per-row scores and the issue count."""
    if method not in CHUNKED_METHODS:
        raise ValueError(f"method={method!r}: the chunked path supports {list(CHUNKED_METHODS)}.")
    if rank_by not in CHUNKED_RANK_BY:
        raise ValueError(f"rank_by={rank_by!r}: the chunked path supports {list(CHUNKED_RANK_BY)}.")
    thresholds = confident_thresholds(chunks, n_classes)
    self_conf = quality = None
    suggested = np.empty(n_rows, dtype=np.int64)
    flags = np.empty(n_rows, dtype=bool)
    num_issues, start = 0, 0
    for labels, pp in chunks():
        sc, q, pred, conf, flag, n_off = _score_chunk(
            labels, pp, thresholds, method=method, rank_by=rank_by
        )
        if self_conf is None:  # keep cleanlab's dtype (scores are pred_probs entries)
            self_conf = np.empty(n_rows, dtype=sc.dtype)
            quality = np.empty(n_rows, dtype=q.dtype)
            confidence = np.empty(n_rows, dtype=conf.dtype)
        stop = start + len(labels)
        self_conf[start:stop], quality[start:stop] = sc, q
        suggested[start:stop], confidence[start:stop], flags[start:stop] = pred, conf, flag
        num_issues += n_off
        start = stop
    if start != n_rows:
        raise ValueError(f"chunks held {start} rows, expected {n_rows}")
    if method == "low_self_confidence":
        flags = np.zeros(n_rows, dtype=bool)
        flags[np.argsort(self_conf)[:num_issues]] = True
    return Ranking(
        label_quality=quality,
        is_label_issue=flags,
        suggested_label=suggested,
        suggested_confidence=confidence,
        num_issues=int(flags.sum()),
        confident_thresholds=thresholds,
    )


def rank_in_memory(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    method: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
) -> Ranking:
    """cleanlab's ``find_label_issues`` and ``get_label_quality_scores`` on whole arrays."""
    from curate.errors import require

    require("cleanlab", "labels")
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    pred_probs = np.asarray(pred_probs)
    mask = find_label_issues(labels, pred_probs, filter_by=method)
    quality = get_label_quality_scores(labels, pred_probs, method=rank_by)
    pred = pred_probs.argmax(axis=1)
    return Ranking(
        label_quality=quality,
        is_label_issue=np.asarray(mask, dtype=bool),
        suggested_label=pred.astype(np.int64),
        suggested_confidence=pred_probs[np.arange(len(pred)), pred],
        num_issues=int(np.sum(mask)),
    )
