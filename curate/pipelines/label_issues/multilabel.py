"""Multi-label manifests (a ``labels`` list column): cleanlab's multi-label issue finding."""

from __future__ import annotations

import warnings

import numpy as np

from curate._threads import FIT_BLAS_THREADS, limit_blas
from curate.errors import require
from curate.pipelines.label_issues.ranking import Ranking

#: A class counts as present in the suggestion when its probability reaches this.
PRESENT = 0.5


def binarize(labels: list[list[int]], n_classes: int) -> np.ndarray:
    """``[[0, 2], [1]]`` -> a (rows, classes) 0/1 matrix."""
    out = np.zeros((len(labels), n_classes), dtype=np.int8)
    for i, row in enumerate(labels):
        out[i, list(row)] = 1
    return out


def _one_vs_rest(seed: int):
    require("sklearn", "labels", package="scikit-learn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        OneVsRestClassifier(LogisticRegression(C=0.1, max_iter=300, random_state=seed)),
    )


def fit_predict_multilabel(
    X_train: np.ndarray, labels: list[list[int]], X_test: np.ndarray, n_classes: int, *, seed: int
) -> np.ndarray:
    """Fit one-vs-rest logistic regression on the train rows; per-class probabilities for test."""
    Y = binarize(labels, n_classes)
    out = np.zeros((len(X_test), n_classes), dtype=np.float32)
    present = Y.any(axis=0) & ~Y.all(axis=0)
    est = _one_vs_rest(seed)
    with warnings.catch_warnings(), limit_blas(FIT_BLAS_THREADS):
        warnings.filterwarnings("ignore", message=".*converge.*")
        est.fit(X_train, Y[:, present])
        out[:, np.flatnonzero(present)] = est.predict_proba(X_test)
    out[:, np.flatnonzero(~present)] = Y[:1, ~present]  # always (or never) present in training
    return out


def cross_val_pred_probs_multilabel(
    X: np.ndarray, labels: list[list[int]], n_classes: int, *, folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Out-of-sample per-class probabilities (one-vs-rest logistic regression, seeded K-fold)."""
    require("sklearn", "labels", package="scikit-learn")
    from sklearn.model_selection import KFold

    out = np.zeros((len(labels), n_classes), dtype=np.float32)
    for i, (train, test) in enumerate(
        KFold(n_splits=folds, shuffle=True, random_state=seed).split(X)
    ):
        fold_labels = [labels[j] for j in train]
        out[test] = fit_predict_multilabel(X[train], fold_labels, X[test], n_classes, seed=seed + i)
    return out


def rank_multilabel(
    labels: list[list[int]],
    pred_probs: np.ndarray,
    *,
    method: str = "prune_by_noise_rate",
    rank_by: str = "self_confidence",
) -> Ranking:
    """cleanlab.multilabel_classification: issue mask and label quality per row."""
    require("cleanlab", "labels")
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    labels = [list(map(int, row)) for row in labels]
    mask = find_label_issues(labels, pred_probs, filter_by=method)
    quality = get_label_quality_scores(labels, pred_probs, method=rank_by)
    present = pred_probs >= PRESENT
    suggested = [np.flatnonzero(row).tolist() for row in present]
    confidence = np.maximum(pred_probs, 1 - pred_probs).min(axis=1)
    return Ranking(
        label_quality=np.asarray(quality),
        is_label_issue=np.asarray(mask, dtype=bool),
        suggested_label=suggested,
        suggested_confidence=confidence,
        num_issues=int(np.sum(mask)),
    )
