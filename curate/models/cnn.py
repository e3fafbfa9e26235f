"""A small convolutional network on the pixels of small images (torch; GPU when present)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from curate._malloc import reuse_heap
from curate.engines.progress import Heartbeat
from curate.errors import require


def _device(name: str = "auto") -> str:
    torch = require("torch", "torch")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def _build(in_channels: int, n_classes: int, side: int):
    from torch import nn

    feat = side // 4
    return nn.Sequential(
        nn.Conv2d(in_channels, 32, 3, padding=1),
        nn.BatchNorm2d(32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(64 * feat * feat, 128),
        nn.ReLU(),
        nn.Linear(128, n_classes),
    )


class SmallCNN:
    """Two conv blocks and a linear head, trained with Adam and light augmentation.

    scikit-learn style: the constructor stores parameters; ``fit`` learns ``model_`` and
    ``classes_``. Input is ``(n, channels, height, width)`` float32 in [0, 1]. ``log``, if
    given, gets a line per epoch.
    """

    def __init__(
        self,
        *,
        n_classes: int,
        seed: int = 0,
        epochs: int = 8,
        batch_size: int = 128,
        lr: float = 2e-3,
        device: str = "auto",
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.n_classes, self.seed, self.epochs = n_classes, seed, epochs
        self.batch_size, self.lr, self.device = batch_size, lr, device
        self.log = log

    def _network(self, in_channels: int, side: int):
        """The torch module trained by ``fit`` (a subclass may give another architecture)."""
        return _build(in_channels, self.n_classes, side)

    @reuse_heap()  # every step's activations reuse the last step's memory
    def fit(self, X: np.ndarray, y: np.ndarray) -> SmallCNN:
        torch = require("torch", "torch")
        torch.manual_seed(self.seed)
        dev = _device(self.device)
        self.device_ = dev
        model = self._network(X.shape[1], X.shape[2]).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=self.lr)
        steps = self.epochs * ((len(X) + self.batch_size - 1) // self.batch_size)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=steps)
        xt = torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32))
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        gen = torch.Generator().manual_seed(self.seed)
        model.train()
        beat = Heartbeat(self.log)
        for epoch in range(self.epochs):
            if self.log:
                self.log(f"    epoch {epoch + 1}/{self.epochs} ({len(xt)} rows)")
            order = torch.randperm(len(xt), generator=gen)
            for start in range(0, len(xt), self.batch_size):
                beat(f"    epoch {epoch + 1}/{self.epochs}: {start}/{len(xt)} rows")
                idx = order[start : start + self.batch_size]
                xb, yb = _augment(xt[idx], gen).to(dev), yt[idx].to(dev)
                loss = torch.nn.functional.cross_entropy(model(xb), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        self.model_ = model.eval()
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        torch = require("torch", "torch")
        out = []
        with torch.no_grad():
            for start in range(0, len(X), 1024):
                xb = torch.from_numpy(np.ascontiguousarray(X[start : start + 1024], np.float32))
                logits = self.model_(xb.to(self.device_))
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.n_classes), np.float32)


def _augment(xb, gen):
    """Random shifts of up to 2 pixels (padding, then a random crop)."""
    import torch

    pad = torch.nn.functional.pad(xb, (2, 2, 2, 2))
    dx, dy = torch.randint(0, 5, (2,), generator=gen).tolist()
    h, w = xb.shape[2], xb.shape[3]
    return pad[:, :, dy : dy + h, dx : dx + w]
