"""Near-duplicate structure inside one cluster, in row blocks: duplicate groups and the
near-neighbour forest that picks eps for a ``--keep`` target.

Nothing here is n x n: similarities are computed one block of rows at a time (at most
``block_elems`` values), and a cluster too large for memory is read block by block through a
:class:`Rows` accessor. For high thresholds an exact filter skips most of the work: two unit
vectors with ``cos > t`` are within ``sqrt(2 - 2t)`` of each other, and so are their
projections on any orthonormal directions; pairs whose projections on ``m`` directions (the
main directions of within-cluster spread) are farther apart cannot be duplicates, and only the
few left are compared in full. The groups are those of the full comparison up to float32
rounding at the threshold itself.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from curate.errors import require
from curate.pipelines import _embeddings as E

#: Similarity-block budget in matrix elements (float32): 4M elements = 16 MB per block.
BLOCK_ELEMS = 1 << 22
#: Similarity-block budget on a GPU: 64M float32 elements = 256 MB per block.
GPU_BLOCK_ELEMS = 1 << 26
#: Neighbours per row used to estimate the duplicate structure when --keep picks eps.
KNN = 16
#: Clusters at least this large use the projection filter (smaller ones: one product is cheap).
FILTER_MIN_ROWS = 1024
#: Slack on the projected squared distance: float32 rounding never drops a true pair.
FILTER_SLACK = 1e-4
#: Directions the filter projects on (the main ones of within-cluster spread).
FILTER_DIMS = 32
#: Past this fraction of a block's pairs kept by the filter, the full products are cheaper.
FILTER_MAX_PASS = 0.01

#: ``rows(i0, i1)``: members i0..i1-1 of a cluster as unit float32 rows.
Rows = Callable[[int, int], np.ndarray]


def unit(x: np.ndarray) -> np.ndarray:
    """``x`` as float32 rows of unit length (a copy; zero rows stay zero)."""
    x = x.astype(np.float32)
    E.unit_rows(x)
    return x


def _blocks(n: int, block_elems: int, *, min_blocks: int = 1):
    step = max(1, min(block_elems // max(n, 1), -(-n // min_blocks)))
    for i0 in range(0, n, step):
        yield i0, min(n, i0 + step)


def _merge(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Union the groups of ``a`` and ``b`` (edge lists) into ``labels`` (component ids)."""
    sparse = require("scipy.sparse", "prune", package="scipy")
    csgraph = require("scipy.sparse.csgraph", "prune", package="scipy")
    n = len(labels)
    g = sparse.coo_matrix((np.ones(len(a), np.int8), (labels[a], labels[b])), shape=(n, n))
    _, comp = csgraph.connected_components(g.tocsr(), directed=False)
    return comp[labels]


class _Edges:
    """Pending duplicate edges, merged into component labels whenever they pass a budget."""

    def __init__(self, n: int, budget: int) -> None:
        self.labels = np.arange(n)
        self.budget = budget
        self._a: list[np.ndarray] = []
        self._b: list[np.ndarray] = []
        self._n = 0

    def add(self, a: np.ndarray, b: np.ndarray) -> None:
        if len(a):
            self._a.append(a)
            self._b.append(b)
            self._n += len(a)
        if self._n >= self.budget:  # bound the edge memory on very dense groups
            self.flush()

    def flush(self) -> np.ndarray:
        if self._n:
            self.labels = _merge(self.labels, np.concatenate(self._a), np.concatenate(self._b))
            self._a, self._b, self._n = [], [], 0
        return self.labels


def duplicate_groups(
    x: np.ndarray,
    threshold: float,
    *,
    block_elems: int = BLOCK_ELEMS,
    device: str | None = None,
    projection: np.ndarray | None = None,
) -> np.ndarray:
    """Connected components of the graph ``cos(x_i, x_j) > threshold``, in row blocks.

    Memory is one block of similarities (``block_elems``) plus at most ``block_elems`` pending
    edges, never n x n. Returns a component id per row. ``device`` (``"cuda"``, ``"cpu"``)
    computes the blocks with torch there; ``projection`` (d x m orthonormal columns) enables
    the exact projection filter on the CPU for clusters of :data:`FILTER_MIN_ROWS` or more.
    """
    n = len(x)
    if device is not None:
        return _groups_in_blocks(n, _torch_blocks(x, threshold, device), block_elems)
    xu = unit(x)
    if projection is not None and n >= FILTER_MIN_ROWS and projection.shape[1] * 2 < x.shape[1]:
        return _filtered_groups(xu, threshold, projection, block_elems)
    return _groups_in_blocks(n, _numpy_blocks(xu, threshold), block_elems)


def _groups_in_blocks(n: int, block, block_elems: int) -> np.ndarray:
    edges = _Edges(n, block_elems)
    # rows i0:i1 against rows i0: only (the upper triangle); 8 blocks save ~40% of the work
    for i0, i1 in _blocks(n, block_elems, min_blocks=8 if n >= 1024 else 1):
        r, c = np.divmod(block(i0, i1), n - i0)  # flat indices of the block's hits
        upper = c > r  # each pair once (j > i), and not the diagonal
        edges.add(r[upper] + i0, c[upper] + i0)
    return edges.flush()


def _numpy_blocks(x: np.ndarray, threshold: float):
    """``block(i0, i1)``: flat indices of ``x[i0:i1] @ x[i0:].T > threshold`` (x unit)."""

    def block(i0: int, i1: int) -> np.ndarray:
        # flatnonzero on the raveled mask is ~10x faster than a 2-D nonzero
        return np.flatnonzero((x[i0:i1] @ x[i0:].T).ravel() > threshold)

    return block


def _torch_blocks(x: np.ndarray, threshold: float, device: str):
    """:func:`_numpy_blocks` with torch on ``device``: the vectors go there once (as stored,
    float16 or float32) and are normalised there; only hit indices come back."""
    torch = require("torch", "torch")
    xt = torch.from_numpy(np.ascontiguousarray(x)).to(device).float()
    xt = xt / xt.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def block(i0: int, i1: int) -> np.ndarray:
        hits = ((xt[i0:i1] @ xt[i0:].T) > threshold).flatten().nonzero().flatten()
        return hits.cpu().numpy()

    return block


def _filtered_groups(x: np.ndarray, threshold: float, p: np.ndarray, block_elems: int):
    """Duplicate groups through the projection filter: candidates whose projected squared
    distance is within ``2 - 2 * threshold`` (+ slack), then the full cosine of those only.

    The projected distance is one product of augmented rows, ``[z, |z|², 1] . [-2z, 1, |z|²]``,
    so a block costs one BLAS call with ``m + 2`` columns and a comparison. A cluster where the
    filter keeps more than :data:`FILTER_MAX_PASS` of a block's pairs (a loose threshold, a
    very tight cluster) is finished with the full products instead.
    """
    n = len(x)
    z = x @ p
    zz = np.einsum("ij,ij->i", z, z)[:, None]
    ones = np.ones((n, 1), np.float32)
    left = np.hstack([z, zz, ones])
    right = np.hstack([-2.0 * z, ones, zz])
    limit = np.float32(2.0 - 2.0 * threshold + FILTER_SLACK)
    edges = _Edges(n, block_elems)
    full = _numpy_blocks(x, threshold)
    filtering = True
    for i0, i1 in _blocks(n, block_elems, min_blocks=8):
        if not filtering:
            r, c = np.divmod(full(i0, i1), n - i0)
            upper = c > r
            edges.add(r[upper] + i0, c[upper] + i0)
            continue
        hits = np.flatnonzero((left[i0:i1] @ right[i0:].T).ravel() <= limit)
        filtering = len(hits) <= FILTER_MAX_PASS * (i1 - i0) * (n - i0)
        r, c = np.divmod(hits, n - i0)
        upper = c > r
        a, b = r[upper] + i0, c[upper] + i0
        if len(a):
            cos = np.einsum("ij,ij->i", x[a], x[b])
            hit = cos > threshold
            edges.add(a[hit], b[hit])
    return edges.flush()


def residual_projection(
    x: np.ndarray, centroids: np.ndarray, assign: np.ndarray, m: int = FILTER_DIMS
):
    """``d x m`` orthonormal main directions of the rows' offsets from their centroids: the
    directions in which near-duplicates are told apart best by the projection filter."""
    d = x.shape[1]
    m = min(m, d)
    r = unit(x) - centroids[assign].astype(np.float32)
    cov = (r.T @ r).astype(np.float64)
    # a few rounds of subspace iteration from a seeded start: any orthonormal directions keep
    # the filter exact, the main ones only make it sharper (a full eigh of d x d is slower)
    q = np.random.default_rng(0).normal(size=(d, m))
    for _ in range(4):
        q, _ = np.linalg.qr(cov @ q)
    return np.ascontiguousarray(q, dtype=np.float32)


def blocked_duplicate_groups(
    rows: Rows, n: int, threshold: float, *, block_rows: int
) -> np.ndarray:
    """:func:`duplicate_groups` for a cluster too large for memory: members are read
    ``block_rows`` at a time through ``rows`` and every pair of blocks is compared once."""
    edges = _Edges(n, BLOCK_ELEMS)
    for i0 in range(0, n, block_rows):
        i1 = min(n, i0 + block_rows)
        a = rows(i0, i1)
        for j0 in range(i0, n, block_rows):
            j1 = min(n, j0 + block_rows)
            b = a if j0 == i0 else rows(j0, j1)
            for s0 in range(0, i1 - i0, max(1, BLOCK_ELEMS // (j1 - j0))):
                s1 = min(i1 - i0, s0 + max(1, BLOCK_ELEMS // (j1 - j0)))
                r, c = np.divmod(np.flatnonzero((a[s0:s1] @ b.T).ravel() > threshold), j1 - j0)
                r, c = r + i0 + s0, c + j0
                keep = c > r
                edges.add(r[keep], c[keep])
    return edges.flush()


def forest_similarities(
    x: np.ndarray | None,
    *,
    n_neighbors: int = KNN,
    block_elems: int = BLOCK_ELEMS,
    rows: Rows | None = None,
    n: int | None = None,
) -> np.ndarray:
    """Merge similarities of single-linkage on the ``n_neighbors``-NN graph of the rows.

    Removing every forest edge with similarity > t leaves as many groups as the duplicate
    graph at threshold t restricted to near neighbours; used to pick eps for a --keep target.
    Give ``x`` (rows in memory), or ``rows`` and ``n`` to read a large cluster in blocks.
    """
    sparse = require("scipy.sparse", "prune", package="scipy")
    csgraph = require("scipy.sparse.csgraph", "prune", package="scipy")
    xu = unit(x) if x is not None else None
    if xu is not None:
        n = len(xu)
    assert n is not None and (xu is not None or rows is not None)
    m = min(n_neighbors, n - 1)
    if m < 1:
        return np.zeros(0, np.float32)
    src, dst, sims = [], [], []
    step = max(1, min(block_elems // n, n))
    for i0 in range(0, n, step):
        i1 = min(n, i0 + step)
        s = xu[i0:i1] @ xu.T if xu is not None else _against_all(rows, rows(i0, i1), n, step)
        s[np.arange(i1 - i0), np.arange(i0, i1)] = -np.inf
        idx = np.argpartition(-s, m - 1, axis=1)[:, :m]
        src.append(np.repeat(np.arange(i0, i1), m))
        dst.append(idx.ravel())
        sims.append(np.take_along_axis(s, idx, axis=1).ravel())
    w = 2.0 - np.concatenate(sims).astype(np.float64)  # > 0: scipy drops zero-weight edges
    g = sparse.coo_matrix((w, (np.concatenate(src), np.concatenate(dst))), shape=(n, n))
    tree = csgraph.minimum_spanning_tree(g.tocsr())
    return (2.0 - tree.data).astype(np.float32)


def _against_all(rows: Rows, a: np.ndarray, n: int, step: int) -> np.ndarray:
    """``a @ x.T`` for all ``n`` members of the cluster, reading them block by block."""
    return np.concatenate([a @ rows(j0, min(n, j0 + step)).T for j0 in range(0, n, step)], 1)
