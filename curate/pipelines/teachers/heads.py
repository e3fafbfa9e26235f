"""Classifier heads on frozen backbone features: affine layers fit out of fold, applied per cell.

A :class:`Head` is a short stack of affine layers (ReLU between them) held as numpy arrays,
so it pickles small and runs on any device. The logistic head is one affine layer, so
applied to every cell of a feature map it gives cell logits whose mean is exactly the head
of the mean-pooled features (the ReLabel identity for a global-average-pool + linear head);
the MLP head is not linear, so that identity holds only for the logistic head.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: Bias given to a class a fold's training rows never held: softmax puts ~0 mass on it.
ABSENT_CLASS_BIAS = -30.0


@dataclass
class Head:
    """Affine layers ``[(W (d_in, d_out), b (d_out,)), ...]`` with ReLU between them."""

    layers: list[tuple[np.ndarray, np.ndarray]]
    kind: str = "logreg"

    @property
    def num_classes(self) -> int:
        return int(self.layers[-1][1].shape[0])

    def apply(self, x):
        """Logits for features ``x`` (torch, ``(..., d)``) -> ``(..., C)``, on x's device."""
        import torch

        for i, (w, b) in enumerate(self.layers):
            wt = torch.as_tensor(w, device=x.device, dtype=torch.float32)
            bt = torch.as_tensor(b, device=x.device, dtype=torch.float32)
            x = x.float() @ wt + bt
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x

    def apply_cells(self, cells):
        """Cell logits for a feature map ``(N, d, g, g)`` -> ``(N, C, g, g)`` (a 1x1 conv)."""
        return self.apply(cells.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@dataclass
class FoldHeads:
    """Out-of-fold heads: row ``id`` is predicted by ``heads[fold_of[id]]``, which never saw it.

    Rows not in ``fold_of`` (unlabelled, or new) get the mean of the fold heads' logits.
    """

    heads: list[Head]
    fold_of: dict[str, int] = field(default_factory=dict)

    def folds_for(self, ids: list[str]) -> np.ndarray:
        """The fold index per id, -1 for ids no fold holds out."""
        return np.array([self.fold_of.get(i, -1) for i in ids], dtype=np.int64)


@dataclass
class OutOfFold:
    """A teacher's out-of-fold probabilities on the labelled rows it was fit on: row ``i``
    (``ids[i]``, given label ``labels[i]``) predicted by a model that never saw it."""

    ids: list[str]
    labels: np.ndarray
    probs: np.ndarray

    def accuracy(self) -> float:
        """Share of rows whose most likely class is the given label."""
        return float(np.mean(self.probs.argmax(axis=1) == self.labels))

    def select(self, ids: list[str]) -> OutOfFold:
        """These rows, in this order (each must be one of ``self.ids``)."""
        where = {k: i for i, k in enumerate(self.ids)}
        rows = np.fromiter((where[k] for k in ids), np.int64, len(ids))
        return OutOfFold(list(ids), self.labels[rows], self.probs[rows])


def head_probs(heads: FoldHeads, X: np.ndarray, ids: list[str], y: np.ndarray) -> OutOfFold:
    """The out-of-fold probabilities of fold heads on their own training features ``X``."""
    import torch

    folds = heads.folds_for(ids)
    probs = np.zeros((len(y), heads.heads[0].num_classes), np.float32)
    for k, head in enumerate(heads.heads):
        rows = np.flatnonzero(folds == k)
        if len(rows):
            probs[rows] = head.apply(torch.from_numpy(X[rows])).softmax(dim=1).numpy()
    return OutOfFold(list(ids), np.asarray(y), probs)


def _fold_scaler(w: np.ndarray, b: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    """Fold a StandardScaler into the first affine layer: ``((x - m) / s) W + b``."""
    w2 = w / scale[:, None]
    return w2.astype(np.float32), (b - mean @ w2).astype(np.float32)


def _fit_logreg(X: np.ndarray, y: np.ndarray, n_classes: int, seed: int):
    """Multinomial logistic regression, L2 as scikit-learn's ``C=0.1``, full-batch L-BFGS."""
    import torch

    g = torch.Generator().manual_seed(seed)
    Xt, yt = torch.from_numpy(X).float(), torch.from_numpy(y).long()
    w = (torch.randn(X.shape[1], n_classes, generator=g) * 1e-3).requires_grad_()
    b = torch.zeros(n_classes, requires_grad=True)
    l2 = 1.0 / (0.1 * len(y))  # sklearn: C * sum(loss) + |W|^2 / 2  ==  n C (mean + l2/2 |W|^2)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(Xt @ w + b, yt) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return [(w.detach().numpy(), b.detach().numpy())]


def _fit_mlp(X: np.ndarray, y: np.ndarray, n_classes: int, seed: int, *, epochs: int = 30):
    """One hidden layer of 256 (ReLU), Adam, weight decay, fixed epochs, seeded."""
    import torch

    g = torch.Generator().manual_seed(seed)
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    net = torch.nn.Sequential(
        torch.nn.Linear(X.shape[1], 256), torch.nn.ReLU(), torch.nn.Linear(256, n_classes)
    )
    torch.random.set_rng_state(torch_state)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    Xt, yt = torch.from_numpy(X).float(), torch.from_numpy(y).long()
    for _ in range(epochs):
        for idx in torch.randperm(len(yt), generator=g).split(256):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    lin = [net[0], net[2]]
    return [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy()) for m in lin]


#: Head kinds: each fits ``(X standardised, y, n_classes, seed) -> layers`` (torch, CPU).
HEADS: dict[str, Callable] = {"logreg": _fit_logreg, "mlp": _fit_mlp}


def fit_one_head(
    X: np.ndarray, y: np.ndarray, n_classes: int, *, kind: str = "logreg", seed: int = 0
) -> Head:
    """Fit one head on features ``X`` ``(n, d)`` and labels ``y`` (ints in ``[0, n_classes)``)."""
    if kind not in HEADS:
        raise ValueError(f"head={kind!r}: valid heads are {', '.join(HEADS)}.")
    if len(np.unique(y)) < 2:
        raise ValueError("the training rows hold a single class; a head needs two or more.")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-8] = 1.0
    layers = HEADS[kind](((X - mean) / scale).astype(np.float32), y, n_classes, seed)
    layers[0] = _fold_scaler(*layers[0], mean, scale)
    absent = np.setdiff1d(np.arange(n_classes), y)
    layers[-1][1][absent] = ABSENT_CLASS_BIAS  # a class no training row held gets no mass
    return Head(layers=layers, kind=kind)


def fit_head(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    n_classes: int,
    kind: str = "logreg",
    folds: int = 5,
    seed: int = 0,
    ids: list[str] | None = None,
    log: Callable[[str], None] | None = None,
) -> FoldHeads:
    """Out-of-fold heads: stratified, seeded K-fold; head ``k`` never saw fold ``k``'s rows.

    ``ids`` (one per row; default the row numbers as strings) key the fold assignment. With
    ``folds=1`` one head is fit on every row and ``fold_of`` is empty (for a teacher that
    labels other rows, e.g. reinforce's augmented views of a train split).
    """
    from curate.models.predictors import fold_indices

    y = np.asarray(labels, dtype=np.int64)
    ids = [str(i) for i in range(len(y))] if ids is None else list(ids)
    if folds == 1:
        return FoldHeads([fit_one_head(features, y, n_classes, kind=kind, seed=seed)])
    heads, fold_of = [], {}
    for k, (train, held) in enumerate(fold_indices(y, folds, seed)):
        if log:
            log(f"  head {kind}: fold {k + 1}/{folds} ({len(train)} train, {len(held)} held out)")
        heads.append(fit_one_head(features[train], y[train], n_classes, kind=kind, seed=seed + k))
        fold_of.update((ids[i], k) for i in held)
    return FoldHeads(heads, fold_of)
