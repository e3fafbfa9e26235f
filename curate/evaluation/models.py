"""The downstream models evaluate trains on every subset: a linear probe and a small pixel CNN."""

from __future__ import annotations

import numpy as np

from curate.errors import require


class LinearProbe:
    """Logistic regression on standardised PCA features of the embedding column.

    The protocol of ``benchmarks/prune_quality.py``: a ``dim``-d PCA is fit once per evaluate
    run on the pool's usable rows (no labels, no test rows), so every subset and every random
    draw sees the same features; each fit standardises on its own training rows and runs
    L-BFGS logistic regression (``C``, 300 iterations). The fit is deterministic: ``seed``
    changes nothing, so a fixed subset's accuracy has std 0 and the spread of the random
    baseline is the spread of its draws.
    """

    needs = "embedding"
    deterministic = True  # same rows, same fit: evaluate fits it once per subset

    def __init__(self, *, dim: int = 128, C: float = 0.5, max_iter: int = 300) -> None:
        self.dim, self.C, self.max_iter = dim, C, max_iter

    def prepare(self, pool_features: np.ndarray) -> LinearProbe:
        """Fit the PCA on the pool's usable rows (skipped when the embedding is small)."""
        require("sklearn", "labels", package="scikit-learn")
        from sklearn.decomposition import PCA

        self.pca_ = None
        if pool_features.shape[1] > self.dim and len(pool_features) > self.dim:
            self.pca_ = PCA(self.dim, random_state=0).fit(pool_features)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        if self.pca_ is None:
            return features
        return self.pca_.transform(features).astype(np.float32)

    def fit_predict(
        self, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, *, seed: int, n_classes: int
    ) -> np.ndarray:
        """Train on ``(X, y)``, return the predicted class of each test row."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        if len(np.unique(y)) < 2:  # one class: the model can only predict it
            return np.full(len(X_test), y[0], dtype=np.int64)
        scaler = StandardScaler().fit(X)
        clf = LogisticRegression(max_iter=self.max_iter, C=self.C, random_state=seed)
        clf.fit(scaler.transform(X), y)
        return clf.predict(scaler.transform(X_test)).astype(np.int64)


class PixelCNN:
    """The two-conv-block CNN of ``label-issues`` trained from scratch on the pixels.

    Seeded (weights, batch order, shift augmentation), Adam with a one-cycle schedule for
    ``epochs`` epochs; a CUDA GPU when present (``device="auto"``), else the CPU with at most
    ``threads`` torch threads (default: up to 4).
    """

    needs = "pixels"
    deterministic = False

    def __init__(self, *, epochs: int = 8, device: str = "auto", threads: int | None = None):
        self.epochs, self.device, self.threads = epochs, device, threads

    def prepare(self, pool_features: np.ndarray) -> PixelCNN:
        import os

        torch = require("torch", "torch")
        threads = self.threads or min(4, os.cpu_count() or 1)
        if torch.get_num_threads() > threads:
            torch.set_num_threads(threads)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        return features

    def fit_predict(
        self, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, *, seed: int, n_classes: int
    ) -> np.ndarray:
        from curate.models.cnn import SmallCNN

        net = SmallCNN(n_classes=n_classes, seed=seed, epochs=self.epochs, device=self.device)
        return net.fit(X, y).predict_proba(X_test).argmax(axis=1).astype(np.int64)


#: The models by ``--model`` name.
MODELS = {"probe": LinearProbe, "cnn": PixelCNN}


def make_model(cfg) -> LinearProbe | PixelCNN:
    """The model a :class:`~curate.evaluation.config.EvaluateConfig` asks for."""
    if cfg.model == "probe":
        return LinearProbe(dim=cfg.probe_dim, C=cfg.probe_c)
    return PixelCNN(epochs=cfg.epochs, device=cfg.device, threads=cfg.threads)
