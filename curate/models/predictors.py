"""Out-of-sample predicted probabilities from features: stratified K-fold cross-validation.

A predictor is a factory ``make(n_classes, seed) -> estimator`` whose estimator has
scikit-learn's ``fit(X, y)`` and ``predict_proba(X)``. ``logreg`` and ``mlp`` take feature
vectors (an embedding, or flattened pixels); ``cnn`` takes pixel tensors (torch). An ensemble
averages its members' probabilities.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np

from curate._threads import FIT_BLAS_THREADS, limit_blas
from curate.errors import require


def _logreg(n_classes: int, seed: int):
    require("sklearn", "labels", package="scikit-learn")
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=0.1, max_iter=300, random_state=seed)
    )


def _mlp(n_classes: int, seed: int):
    require("sklearn", "labels", package="scikit-learn")
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        MLPClassifier(
            hidden_layer_sizes=(256,),
            alpha=1e-3,
            batch_size=256,
            learning_rate_init=1e-3,
            max_iter=60,
            early_stopping=True,
            n_iter_no_change=5,
            random_state=seed,
        ),
    )


def _cnn(n_classes: int, seed: int, log: Callable[[str], None] | None = None):
    from curate.models.cnn import SmallCNN

    return SmallCNN(n_classes=n_classes, seed=seed, log=log)  # minutes per fold: log its epochs


#: Trained predictors; ``zero_shot`` is not trained and lives in ``zero_shot.py``.
PREDICTOR_FACTORIES: dict[str, Callable] = {"logreg": _logreg, "mlp": _mlp, "cnn": _cnn}
#: Which input each trained predictor takes: flat feature vectors or pixel tensors.
PREDICTOR_INPUT = {"logreg": "vectors", "mlp": "vectors", "cnn": "pixels"}


def make_predictor(name: str, n_classes: int, seed: int, log: Callable[[str], None] | None = None):
    """A fresh predictor; ``log`` gets the progress of the ones that train for minutes."""
    try:
        factory = PREDICTOR_FACTORIES[name]
    except KeyError:
        raise ValueError(
            f"predictor={name!r}: trained predictors are {list(PREDICTOR_FACTORIES)}."
        ) from None
    return factory(n_classes, seed, log=log) if name == "cnn" else factory(n_classes, seed)


def _full_proba(est, X: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba with one column per class, zeros for classes absent from training."""
    proba = np.asarray(est.predict_proba(X), dtype=np.float32)
    classes = np.asarray(getattr(est, "classes_", np.arange(proba.shape[1])))
    if len(classes) == n_classes and (classes == np.arange(n_classes)).all():
        return proba
    out = np.zeros((len(X), n_classes), dtype=np.float32)
    out[:, classes] = proba
    return out


def fit_predict(
    name: str, X_train, y_train, X_test, n_classes: int, *, seed: int = 0, log=None
) -> np.ndarray:
    """Fit one predictor on the train rows; predicted probabilities for the test rows."""
    est = make_predictor(name, n_classes, seed, log=log)
    if len(np.unique(y_train)) < 2:
        raise ValueError("training rows hold a single class; a classifier needs two or more.")
    with warnings.catch_warnings(), limit_blas(FIT_BLAS_THREADS):
        warnings.filterwarnings("ignore", message=".*(converge|Stochastic Optimizer).*")
        est.fit(X_train, y_train)
        return _full_proba(est, X_test, n_classes)


def small_classes(y: np.ndarray, n_classes: int, folds: int) -> dict[int, int]:
    """Classes with fewer examples than ``folds`` (they miss from some training folds)."""
    counts = np.bincount(y, minlength=n_classes)
    return {k: int(c) for k, c in enumerate(counts) if 0 < c < folds}


def fold_indices(y: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified, shuffled, seeded K-fold splits; classes rarer than ``folds`` still work."""
    require("sklearn", "labels", package="scikit-learn")
    from sklearn.model_selection import StratifiedKFold

    if len(y) < folds:
        raise ValueError(f"{len(y)} rows cannot be split into folds={folds}; lower --folds.")
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The least populated class")
        return list(skf.split(np.zeros(len(y)), y))


def cross_val_pred_probs(
    name: str,
    X: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    folds: int = 5,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Out-of-sample predicted probabilities: each row predicted by a model that never saw it."""
    out = np.zeros((len(y), n_classes), dtype=np.float32)
    for i, (train, test) in enumerate(fold_indices(y, folds, seed)):
        if log:
            log(f"  {name}: fold {i + 1}/{folds} ({len(train)} train, {len(test)} held out)")
        out[test] = fit_predict(
            name, X[train], y[train], X[test], n_classes, seed=seed + i, log=log
        )
    return out
