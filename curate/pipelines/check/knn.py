"""Nearest neighbours of embedding rows with FAISS, vectors read in batches.

Up to ``exact_max_rows`` indexed rows the index is exact (``IndexFlatIP``, float32: 4 d
bytes per row); above it, an IVF index (``IndexIVFScalarQuantizer`` with float16 storage,
the values as stored: 2 d bytes per row) over ~4 sqrt(n) lists trained on a seeded sample,
``nprobe`` lists visited per query. Queries stream from the manifest in batches, so memory is
the index plus one batch of queries and their neighbours. Index ids are manifest row numbers,
and a search can be restricted to some of them (the reference split) by a FAISS ID selector.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from curate.errors import require
from curate.manifests.io import Manifest
from curate.pipelines import _embeddings as E

#: IVF training points per list (FAISS k-means on that sample, ``niter`` rounds).
TRAIN_PER_LIST = 32
TRAIN_NITER = 10


@dataclass
class VectorSource:
    """One manifest's embedding column, and which of its rows hold a usable vector."""

    manifest: Manifest
    column: E.EmbeddingColumn
    valid: np.ndarray | None = None  # set by the first full pass

    def batches(
        self, batch_size: int, rows: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(row numbers, unit float32 vectors)`` of the valid rows (of ``rows``, a mask)."""
        first = self.valid is None
        if first:
            self.valid = np.zeros(self.manifest.num_rows, bool)
        for off, mat, codes, _ in E.scan(self.manifest, self.column, batch_size=batch_size):
            ok = codes == E.VALID
            if first:
                self.valid[off : off + len(ok)] = ok
            if rows is not None:
                ok &= rows[off : off + len(ok)]
            if ok.any():
                yield off + np.flatnonzero(ok), mat[ok]


def _faiss():
    return require("faiss", "check", package="faiss-cpu")


@dataclass
class Index:
    """A FAISS index over some rows' vectors; ``kind`` is ``exact`` or ``ivf``."""

    faiss_index: object
    kind: str
    rows: int
    nlist: int = 0
    nprobe: int = 0

    def search(self, x: np.ndarray, k: int, among: np.ndarray | None = None):
        """Similarities and row numbers of the ``k`` nearest indexed rows (-1: none);
        ``among`` (a bool mask over row numbers) restricts the search to those rows."""
        faiss = _faiss()
        kw = {}
        if among is not None or self.kind == "ivf":
            params = faiss.SearchParametersIVF() if self.kind == "ivf" else faiss.SearchParameters()
            if self.kind == "ivf":
                params.nprobe = self.nprobe
            if among is not None:
                bits = np.packbits(among, bitorder="little")
                params.sel = faiss.IDSelectorBitmap(len(among), faiss.swig_ptr(bits))
            kw["params"] = params
        sims, ids = self.faiss_index.search(np.ascontiguousarray(x, np.float32), k, **kw)
        return sims, ids


def build_index(
    src: VectorSource,
    *,
    rows: np.ndarray | None = None,
    exact_max_rows: int,
    nprobe: int,
    seed: int,
    batch_size: int = 65_536,
    on_add: Callable[[int], None] | None = None,
) -> Index:
    """Index the valid vectors of ``src`` (of ``rows``, a mask, when given).

    The kind is chosen from the number of candidate rows (before validity is known): exact
    up to ``exact_max_rows``, IVF above. ``on_add(rows)`` is called after each batch added
    (a progress bar's ``advance``).
    """
    faiss = _faiss()
    d = src.column.dim
    n = int(rows.sum()) if rows is not None else src.manifest.num_rows
    if n <= exact_max_rows:
        index = Index(faiss.IndexIDMap(faiss.IndexFlatIP(d)), "exact", 0)
    else:
        nlist = int(min(65_536, max(16, 4 * np.sqrt(n))))
        ivf = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(d), d, nlist, faiss.ScalarQuantizer.QT_fp16,
            faiss.METRIC_INNER_PRODUCT,
        )  # fmt: skip
        ivf.cp.niter = TRAIN_NITER
        ivf.cp.min_points_per_centroid = 1  # the sample is sized below; no warning
        ivf.cp.seed = seed
        ivf.train(_sample(src, rows, nlist * TRAIN_PER_LIST, seed, batch_size))
        index = Index(ivf, "ivf", 0, nlist=nlist, nprobe=min(nprobe, nlist))
    for row, x in src.batches(batch_size, rows):
        index.faiss_index.add_with_ids(x, row.astype(np.int64))
        index.rows += len(row)
        if on_add is not None:
            on_add(len(row))
    return index


def _sample(src: VectorSource, rows, size: int, seed: int, batch_size: int) -> np.ndarray:
    """A seeded sample of about ``size`` valid vectors (float32), in row order."""
    n = src.manifest.num_rows
    candidates = np.flatnonzero(rows) if rows is not None else np.arange(n)
    rng = np.random.default_rng(seed)
    pick = np.zeros(n, bool)
    pick[rng.choice(candidates, min(size, len(candidates)), replace=False)] = True
    parts = [x for _, x in src.batches(batch_size, pick)]
    src.valid = None  # the sample pass saw only some rows' validity
    return np.concatenate(parts) if parts else np.zeros((0, src.column.dim), np.float32)


@dataclass
class Neighbours:
    """What the within-manifest search keeps per row (row order), -1 / NaN where none."""

    nearest_sim: np.ndarray  # float32: cosine to the most similar other row
    dup_of: np.ndarray  # int64: the most similar earlier row with cosine >= threshold
    dup_sim: np.ndarray  # float32: its cosine
    outlier: np.ndarray  # float32: mean cosine distance to the k nearest other rows

    @classmethod
    def empty(cls, n: int) -> Neighbours:
        return cls(
            np.full(n, np.nan, np.float32),
            np.full(n, -1, np.int64),
            np.full(n, np.nan, np.float32),
            np.full(n, np.nan, np.float32),
        )

    def update(
        self, rows: np.ndarray, sims: np.ndarray, ids: np.ndarray, threshold: float, k: int
    ) -> None:
        """Fold one query batch's search results (self matches dropped) into the arrays:
        the outlier score over the first ``k`` other neighbours, links over all of them."""
        other = (ids >= 0) & (ids != rows[:, None])
        use = other & (np.cumsum(other, axis=1) <= k)  # the first k others, by similarity
        count = use.sum(axis=1)
        dist = np.where(use, 1.0 - sims, 0.0).sum(axis=1)
        self.outlier[rows] = np.where(count > 0, dist / np.maximum(count, 1), np.nan)
        first = other.argmax(axis=1)
        has = other.any(axis=1)
        self.nearest_sim[rows] = np.where(has, sims[np.arange(len(rows)), first], np.nan)
        dup = other & (ids < rows[:, None]) & (sims >= threshold)
        pick = dup.argmax(axis=1)  # the most similar earlier one (results are sorted)
        found = dup.any(axis=1)
        at = np.arange(len(rows))
        self.dup_of[rows] = np.where(found, ids[at, pick], -1)
        self.dup_sim[rows] = np.where(found, sims[at, pick], np.nan)


def nearest_one(index: Index, x: np.ndarray, among: np.ndarray | None = None):
    """The most similar indexed row to each of ``x`` (row -1, NaN where none)."""
    if index.rows == 0:
        return np.full(len(x), -1, np.int64), np.full(len(x), np.nan, np.float32)
    sims, ids = index.search(x, 1, among)
    sim = np.where(ids[:, 0] >= 0, sims[:, 0], np.nan).astype(np.float32)
    return ids[:, 0].astype(np.int64), sim
