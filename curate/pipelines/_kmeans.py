"""Spherical k-means on unit vectors: FAISS on GPU or CPU, or torch where a GPU lacks faiss-gpu."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from curate.errors import InputError, MissingExtraError, require

BACKENDS = ("auto", "faiss", "faiss-gpu", "torch")
_ASSIGN_ROWS = 65_536


def _faiss_or_none():
    try:
        import faiss
    except ImportError:
        return None
    return faiss


def _faiss_has_gpu(faiss) -> bool:
    return faiss is not None and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _nvidia_device_present() -> bool:
    """A cheap look for an NVIDIA GPU, so CPU-only runs never pay torch's import time."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return Path("/dev/nvidia0").exists() or (gpus.is_dir() and any(gpus.iterdir()))


def _torch_cuda() -> bool:
    if "torch" not in sys.modules and not _nvidia_device_present():
        return False
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def resolve_backend(backend: str) -> str:
    """Pick the concrete backend: faiss-gpu, else torch on a GPU, else faiss (CPU), else torch."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    faiss = _faiss_or_none()
    if _faiss_has_gpu(faiss):
        return "faiss-gpu"
    if _torch_cuda():
        return "torch"
    if faiss is not None:
        return "faiss"
    try:
        import torch  # noqa: F401
    except ImportError:
        raise MissingExtraError(
            "k-means needs faiss (pip install 'curate-ml[prune]') or torch "
            "(pip install 'curate-ml[torch]')."
        ) from None
    return "torch"


def normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to contiguous float32 (zero rows stay zero)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def normalize_inplace(x: np.ndarray) -> np.ndarray:
    """:func:`normalize` without a copy, for a contiguous float32 ``x`` (same values)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    x /= np.maximum(norms, 1e-12)
    return x


# -- assignment -------------------------------------------------------------------------------
def assign_faiss(x: np.ndarray, centroids: np.ndarray, *, gpu: bool = False):
    """Nearest centroid by inner product with a FAISS flat index: (cluster int32, sim float32)."""
    faiss = require("faiss", "prune", package="faiss-cpu")
    index = faiss.IndexFlatIP(centroids.shape[1])
    if gpu:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(np.ascontiguousarray(centroids, dtype=np.float32))
    sims, idx = index.search(np.ascontiguousarray(x, dtype=np.float32), 1)
    return idx[:, 0].astype(np.int32), sims[:, 0].astype(np.float32)


def assign_blas(x: np.ndarray, centroids: np.ndarray, *, block: int = 4096):
    """Nearest centroid by inner product on the CPU: one BLAS product and an argmax per block
    of rows (numpy's OpenBLAS, built for this CPU; FAISS's CPU wheel bundles a generic one that
    measured 1.4-5x slower for the same search, most under load)."""
    c = np.ascontiguousarray(centroids, dtype=np.float32)
    labels = np.empty(len(x), dtype=np.int32)
    for i in range(0, len(x), block):
        labels[i : i + block] = (x[i : i + block] @ c.T).argmax(axis=1)
    return labels


def _torch_device(device: str | None) -> str:
    return device or ("cuda" if _torch_cuda() else "cpu")


def assign_torch(x: np.ndarray, centroids: np.ndarray, *, device: str | None = None):
    """Nearest centroid by inner product in torch (float32 matmul, argmax), in row chunks."""
    torch = require("torch", "torch")
    dev = _torch_device(device)
    c = torch.from_numpy(np.ascontiguousarray(centroids, dtype=np.float32)).to(dev)
    labels = np.empty(len(x), dtype=np.int32)
    sims = np.empty(len(x), dtype=np.float32)
    for i in range(0, len(x), _ASSIGN_ROWS):
        xb = torch.from_numpy(np.ascontiguousarray(x[i : i + _ASSIGN_ROWS], dtype=np.float32))
        s, j = (xb.to(dev) @ c.T).max(dim=1)
        labels[i : i + len(j)] = j.cpu().numpy()
        sims[i : i + len(s)] = s.cpu().numpy()
    return labels, sims


# -- training ---------------------------------------------------------------------------------
def _train_faiss(x: np.ndarray, k: int, *, seed: int, niter: int, mppc: int, gpu: bool):
    faiss = require("faiss", "prune", package="faiss-cpu")
    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=niter,
        seed=seed,
        spherical=True,
        gpu=gpu,
        max_points_per_centroid=mppc,
        min_points_per_centroid=1,
        verbose=False,
    )
    km.train(x)
    return np.asarray(km.centroids, dtype=np.float32)


def _train_torch(x: np.ndarray, k: int, *, seed: int, niter: int, device: str | None):
    """Lloyd iterations on the sphere; empty clusters restart at seeded random points."""
    torch = require("torch", "torch")
    dev = _torch_device(device)
    gen = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x).to(dev)
    c = xt[torch.randperm(len(x), generator=gen)[:k].to(dev)].clone()
    for _ in range(niter):
        lab = torch.cat(
            [(xt[i : i + _ASSIGN_ROWS] @ c.T).argmax(dim=1) for i in range(0, len(x), _ASSIGN_ROWS)]
        )
        sums = torch.zeros_like(c).index_add_(0, lab, xt)
        counts = torch.bincount(lab, minlength=k)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            pick = torch.randint(0, len(x), (len(empty),), generator=gen).to(dev)
            sums[empty] = xt[pick]
        c = torch.nn.functional.normalize(sums, dim=1)
    return c.cpu().numpy().astype(np.float32)


class SphericalKMeans:
    """Spherical k-means (cosine) with a scikit-learn interface.

    Parameters
    ----------
    k
        Number of clusters.
    seed
        Seed for initialisation and for FAISS's own subsampling: same seed, same centroids.
    niter
        Lloyd iterations.
    max_points_per_centroid
        Training uses at most ``k * max_points_per_centroid`` points (FAISS's limit).
    backend
        ``"auto"`` (faiss-gpu if present with a GPU, else torch on a GPU, else faiss on CPU,
        else torch on CPU), ``"faiss"``, ``"faiss-gpu"`` or ``"torch"``.

    Attributes
    ----------
    centroids_ : ndarray of shape (k, d)
        Unit-norm centroids.
    backend_ : str
        The backend that was used.
    """

    def __init__(
        self,
        k: int,
        *,
        seed: int = 0,
        niter: int = 20,
        max_points_per_centroid: int = 256,
        backend: str = "auto",
    ) -> None:
        self.k = k
        self.seed = seed
        self.niter = niter
        self.max_points_per_centroid = max_points_per_centroid
        self.backend = backend

    @classmethod
    def from_centroids(
        cls, centroids: np.ndarray, *, backend: str = "auto", unit: bool = False
    ) -> SphericalKMeans:
        """A fitted model from saved centroids (e.g. ``OUT/centroids.npy``); ``unit=True``
        takes them as they are (a fitted model's own, already normalised)."""
        km = cls(len(centroids), backend=backend)
        km.centroids_ = (
            np.ascontiguousarray(centroids, np.float32) if unit else normalize(centroids)
        )
        km.backend_ = resolve_backend(backend)
        return km

    def fit(self, x: np.ndarray) -> SphericalKMeans:
        """Train on ``x`` (n, d); rows are L2-normalised first. Returns self."""
        x = np.asarray(x)
        if x.ndim != 2 or not np.isfinite(x).all():
            raise InputError("SphericalKMeans.fit needs a finite 2-D array (n, d).")
        return self.fit_unit(np.array(x, dtype=np.float32))

    def fit_unit(self, x: np.ndarray) -> SphericalKMeans:
        """:meth:`fit` on a contiguous float32 array that it may normalise in place (no copy
        of a large sample)."""
        if not isinstance(self.k, int | np.integer) or self.k < 1:
            raise InputError(f"k must be a positive integer, got {self.k!r}")
        if len(x) < self.k:
            raise InputError(
                f"k={self.k} is larger than the {len(x)} training vectors; pass a smaller k."
            )
        x = normalize_inplace(np.ascontiguousarray(x, dtype=np.float32))
        cap = self.k * self.max_points_per_centroid
        if len(x) > cap:  # the same seeded subsample on every backend
            rng = np.random.default_rng(self.seed)
            x = x[np.sort(rng.choice(len(x), cap, replace=False))]
        self.backend_ = resolve_backend(self.backend)
        if self.backend_ == "torch":
            c = _train_torch(x, self.k, seed=self.seed, niter=self.niter, device=None)
        else:
            c = _train_faiss(
                x,
                self.k,
                seed=self.seed,
                niter=self.niter,
                mppc=self.max_points_per_centroid,
                gpu=self.backend_ == "faiss-gpu",
            )
        self.centroids_ = normalize(c)
        return self

    def transform(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Assign rows of ``x``: (cluster int32, cosine similarity to that centroid float32)."""
        if not hasattr(self, "centroids_"):
            raise InputError("SphericalKMeans is not fitted; call fit() first.")
        return self.assign_unit(normalize(x))

    def assign_unit(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transform` for rows already unit-norm float32 (no copy, no renormalising).

        The nearest centroid comes from the backend's search (on the CPU, one BLAS product per
        block: :func:`assign_blas`); the similarity to it is then
        one exact dot product per row (no BLAS), so it is the same value on every backend,
        thread count and engine (FAISS's own distances move in the last bit with its
        OpenMP thread count, enough to reorder rows ranked by centroid_sim).
        """
        x = np.asarray(x, dtype=np.float32)
        if self.backend_ == "torch":
            labels, _ = assign_torch(x, self.centroids_)
        elif self.backend_ == "faiss-gpu":
            labels, _ = assign_faiss(x, self.centroids_, gpu=True)
        else:
            labels = assign_blas(x, self.centroids_)
        sims = np.empty(len(x), np.float32)
        for i in range(0, len(x), 8192):  # pieces: the gathered centroids stay small
            j = labels[i : i + 8192]
            sims[i : i + len(j)] = np.einsum("ij,ij->i", x[i : i + len(j)], self.centroids_[j])
        return labels, sims

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The cluster of each row of ``x``."""
        return self.transform(x)[0]
