"""Array-level functions for a notebook user without a manifest, in cleanlab's style: labels
and out-of-sample ``pred_probs`` in, a ranking or soft labels out.

>>> ranking = curate.find_label_issues(labels, pred_probs)   # cleanlab under the hood
>>> ranking.is_label_issue.sum(), ranking.label_quality.argsort()[:10]
>>> soft = curate.soft_labels(labels, pred_probs)           # relabel's posterior
"""

from __future__ import annotations

import numpy as np

from curate.pipelines.label_issues.ranking import Ranking, rank_in_memory
from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.relabel.posterior import estimate_channel, posterior_probs

__all__ = ["Ranking", "find_label_issues", "soft_labels"]


def find_label_issues(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    method: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
) -> Ranking:
    """Label issues of ``labels`` ``(n,)`` given out-of-sample ``pred_probs`` ``(n, C)``:
    cleanlab's ``find_label_issues`` (``filter_by=method``) and label quality scores
    (``rank_by``), as ``curate label-issues --pred-probs`` computes them.

    Returns
    -------
    Ranking
        ``label_quality`` (lower is worse), ``is_label_issue``, ``suggested_label``,
        ``suggested_confidence`` per row and ``num_issues``.
    """
    labels, pred_probs = checked(labels, pred_probs)
    return rank_in_memory(labels, pred_probs, method=method, rank_by=rank_by)


def soft_labels(
    labels: np.ndarray,
    pred_probs: np.ndarray,
    *,
    prior: float = RelabelConfig.prior,
    temperature: float = RelabelConfig.temperature,
) -> np.ndarray:
    """Relabel's soft labels ``(n, C)``: the posterior of out-of-sample ``pred_probs`` and the
    given ``labels`` through the noise channel cleanlab's confident joint estimates from the
    same predictions (``prior`` pseudo-rows per class trust the labels more; ``temperature``
    softens the teacher), as ``curate relabel`` computes its global soft label."""
    labels, pred_probs = checked(labels, pred_probs)
    channel = estimate_channel(labels, pred_probs, prior=prior)
    return posterior_probs(pred_probs, labels, channel, temperature=temperature)


def checked(labels: np.ndarray, pred_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` as int64 class indices ``(n,)`` and ``pred_probs`` as float ``(n, C)``, or a
    ValueError that says which argument is wrong and how (before cleanlab sees them)."""
    labels, pred_probs = np.asarray(labels), np.asarray(pred_probs, dtype=np.float64)
    if labels.ndim != 1:
        raise ValueError(f"labels has shape {labels.shape}: pass one class index per row, (n,).")
    if pred_probs.ndim != 2 or len(pred_probs) != len(labels):
        raise ValueError(
            f"pred_probs has shape {pred_probs.shape} for {len(labels)} labels: one row of "
            "class probabilities per label."
        )
    n_classes = pred_probs.shape[1]
    as_int = labels.astype(np.int64, copy=False) if labels.dtype.kind in "iub" else None
    if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == labels.round()).all():
        as_int = labels.astype(np.int64)
    if as_int is None or (len(as_int) and (as_int.min() < 0 or as_int.max() >= n_classes)):
        raise ValueError(
            f"labels must be class indices 0..{n_classes - 1} (pred_probs has {n_classes} "
            "columns); map class names to indices first, in pred_probs' column order."
        )
    bad = np.flatnonzero(~np.isfinite(pred_probs).all(axis=1))
    if len(bad):
        raise ValueError(
            f"pred_probs row {bad[0]} (and {len(bad) - 1} more) is not finite: drop those rows "
            "from both arrays, or give them a prediction."
        )
    return as_int, pred_probs
