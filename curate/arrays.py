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
    labels = np.asarray(labels)
    pred_probs = np.asarray(pred_probs)
    if pred_probs.ndim != 2 or len(pred_probs) != len(labels):
        raise ValueError(
            f"pred_probs has shape {pred_probs.shape} for {len(labels)} labels: one row of "
            "class probabilities per label."
        )
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
    channel = estimate_channel(labels, pred_probs, prior=prior)
    return posterior_probs(np.asarray(pred_probs), np.asarray(labels), channel,
                           temperature=temperature)  # fmt: skip
