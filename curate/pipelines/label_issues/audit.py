"""Out-of-sample predictions for the audited rows: cross-validation, or a train-split audit."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from curate.models.features import Features
from curate.models.predictors import (
    PREDICTOR_INPUT,
    cross_val_pred_probs,
    fit_predict,
    small_classes,
)
from curate.pipelines.label_issues.config import LabelIssuesConfig


class SmallClassWarning(UserWarning):
    """A class has fewer examples than folds; its rows are judged by models that rarely saw it."""


def warn_small_classes(
    y: np.ndarray, n_classes: int, folds: int, names: list[str] | None
) -> dict[int, int]:
    small = small_classes(y, n_classes, folds)
    if small:
        desc = ", ".join(f"{names[k] if names else k} ({c})" for k, c in small.items())
        warnings.warn(
            f"class(es) {desc} have fewer examples than folds={folds}: some training folds "
            "miss them, so their rows tend to be flagged. Their label_quality is unreliable; "
            f"lower --folds to {max(2, min(small.values()))}, add examples, or merge the class.",
            SmallClassWarning,
            stacklevel=3,
        )
    return small


def _member_input(name: str, feats: Features) -> np.ndarray:
    return feats.pixels if PREDICTOR_INPUT[name] == "pixels" else feats.vectors


def member_pred_probs(
    name: str,
    feats: Features,
    y: np.ndarray,
    audit: np.ndarray,
    train: np.ndarray | None,
    n_classes: int,
    cfg: LabelIssuesConfig,
    log: Callable[[str], None] | None = None,
) -> np.ndarray:
    """One trained predictor's probabilities for the ``audit`` positions of ``feats``.

    ``audit`` and ``train`` index the rows of ``feats`` (and ``y``). Without ``train`` the
    audit rows are cross-validated; with it a model fit on ``train`` predicts them, averaged
    with in-audit cross-validation when ``cfg.audit_cv``.
    """
    X = _member_input(name, feats)
    if train is None:
        return cross_val_pred_probs(
            name, X[audit], y[audit], n_classes, folds=cfg.folds, seed=cfg.seed, log=log
        )
    if log:
        log(f"  {name}: fit on {len(train)} '{cfg.train_split}' rows, predict {len(audit)}")
    pp = fit_predict(name, X[train], y[train], X[audit], n_classes, seed=cfg.seed, log=log)
    if cfg.audit_cv:
        cv = cross_val_pred_probs(
            name, X[audit], y[audit], n_classes, folds=cfg.folds, seed=cfg.seed, log=log
        )
        pp = (pp + cv) / 2
    return pp


def ensemble(members: list[np.ndarray]) -> np.ndarray:
    """Average members' probabilities (rows still sum to 1)."""
    out = np.mean(np.stack(members), axis=0, dtype=np.float64)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)
