"""SemDeDup: near-duplicates inside each cluster, one representative kept per duplicate group."""

from __future__ import annotations

import numpy as np

from curate.engines.groups import map_groups
from curate.errors import require
from curate.pipelines import _embeddings as E
from curate.pipelines._kmeans import _torch_cuda
from curate.pipelines.prune.base import (
    DUP,
    KEPT,
    OVER_QUOTA,
    PruneConfig,
    PruneData,
    PruneMethod,
    Selection,
)

#: Similarity-block budget in matrix elements (float32): 4M elements = 16 MB per block.
BLOCK_ELEMS = 1 << 22
#: Neighbours per row used to estimate the duplicate structure when --keep picks eps.
KNN = 16


def _unit(x: np.ndarray) -> np.ndarray:
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


def duplicate_groups(
    x: np.ndarray, threshold: float, *, block_elems: int = BLOCK_ELEMS, device: str | None = None
) -> np.ndarray:
    """Connected components of the graph ``cos(x_i, x_j) > threshold``, in row blocks.

    Memory is one block of similarities (``block_elems``) plus at most ``block_elems``
    pending edges, never n x n. Returns a component id per row. ``device`` (``"cuda"``,
    ``"cpu"``) computes the similarity blocks with torch there instead of numpy; only the
    edges come back to the host, so the groups are the same up to float32 rounding at the
    threshold itself.
    """
    n = len(x)
    block = _numpy_blocks(x, threshold) if device is None else _torch_blocks(x, threshold, device)
    labels = np.arange(n)
    pending_a: list[np.ndarray] = []
    pending_b: list[np.ndarray] = []
    n_pending = 0
    # rows i0:i1 against rows i0: only (the upper triangle); 8 blocks save ~40% of the work
    for i0, i1 in _blocks(n, block_elems, min_blocks=8 if n >= 1024 else 1):
        r, c = np.divmod(block(i0, i1), n - i0)  # flat indices of the block's hits
        upper = c > r  # each pair once (j > i), and not the diagonal
        if upper.any():
            pending_a.append(r[upper] + i0)
            pending_b.append(c[upper] + i0)
            n_pending += int(upper.sum())
        if n_pending >= block_elems:  # bound the edge memory on very dense groups
            labels = _merge(labels, np.concatenate(pending_a), np.concatenate(pending_b))
            pending_a, pending_b, n_pending = [], [], 0
    if n_pending:
        labels = _merge(labels, np.concatenate(pending_a), np.concatenate(pending_b))
    return labels


def _numpy_blocks(x: np.ndarray, threshold: float):
    """``block(i0, i1)``: flat indices of ``x[i0:i1] @ x[i0:].T > threshold``."""
    x = _unit(x)

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


def forest_similarities(
    x: np.ndarray, *, n_neighbors: int = KNN, block_elems: int = BLOCK_ELEMS
) -> np.ndarray:
    """Merge similarities of single-linkage on the ``n_neighbors``-NN graph of ``x``.

    Removing every forest edge with similarity > t leaves as many groups as the duplicate
    graph at threshold t restricted to near neighbours; used to pick eps for a --keep target.
    """
    sparse = require("scipy.sparse", "prune", package="scipy")
    csgraph = require("scipy.sparse.csgraph", "prune", package="scipy")
    n = len(x)
    m = min(n_neighbors, n - 1)
    if m < 1:
        return np.zeros(0, np.float32)
    x = _unit(x)
    rows, cols, sims = [], [], []
    for i0, i1 in _blocks(n, block_elems):
        s = x[i0:i1] @ x.T
        s[np.arange(i1 - i0), np.arange(i0, i1)] = -np.inf
        idx = np.argpartition(-s, m - 1, axis=1)[:, :m]
        rows.append(np.repeat(np.arange(i0, i1), m))
        cols.append(idx.ravel())
        sims.append(np.take_along_axis(s, idx, axis=1).ravel())
    w = 2.0 - np.concatenate(sims).astype(np.float64)  # > 0: scipy drops zero-weight edges
    g = sparse.coo_matrix((w, (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    tree = csgraph.minimum_spanning_tree(g.tocsr())
    return (2.0 - tree.data).astype(np.float32)


def _by_cluster(cluster: np.ndarray, rows: np.ndarray):
    order = rows[np.argsort(cluster[rows], kind="stable")]
    c = cluster[order]
    bounds = np.r_[0, np.flatnonzero(np.diff(c)) + 1, len(order)]
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if hi > lo:
            yield int(c[lo]), order[lo:hi]


#: Similarity-block budget on a GPU: 64M float32 elements = 256 MB per block.
GPU_BLOCK_ELEMS = 1 << 26


def _per_cluster(fn, data: PruneData, rows: np.ndarray) -> list[tuple[int, np.ndarray, object]]:
    """``[(cluster, members, fn(vectors of members))]`` in cluster order: on worker threads
    locally, as a groupby on the cluster under the Ray engine (:mod:`curate.engines.groups`)."""
    clusters = list(_by_cluster(data.cluster, rows))
    results = map_groups(fn, clusters, data.vectors)
    return [(c, m, r) for (c, m), r in zip(clusters, results, strict=True)]


def _groups_per_cluster(data: PruneData, rows: np.ndarray, threshold: float):
    """Duplicate groups of every cluster: on the GPU with torch where CUDA is available (one
    cluster after another, the GPU is the parallelism), else numpy on worker threads."""
    if _torch_cuda():
        return [
            (c, m, duplicate_groups(data.vectors[m], threshold, block_elems=GPU_BLOCK_ELEMS,
                                    device="cuda"))
            for c, m in _by_cluster(data.cluster, rows)
        ]  # fmt: skip
    return _per_cluster(lambda x: duplicate_groups(x, threshold), data, rows)


def mark_duplicates(
    data: PruneData, rows: np.ndarray, threshold: float, sel: Selection
) -> dict[int, tuple[int, int]]:
    """Keep one representative per duplicate group in each cluster; mark the rest ``DUP``.

    The representative is the member least similar to its centroid (the hardest, as in the
    SemDeDup paper); ties go to the lower row index. Returns {cluster: (size, groups)}.
    """
    stats = {}
    groups = _groups_per_cluster(data, rows, threshold)
    for c, members, labels in groups:
        order = np.lexsort((members, data.centroid_sim[members]))
        _, first = np.unique(labels[order], return_index=True)
        rep_of = np.empty(labels.max() + 1, np.int64)
        rep_of[labels[order][first]] = members[order][first]
        reps = rep_of[labels]
        dup = reps != members
        sel.mark_kept(members[~dup])
        sel.keep[members[dup]] = False
        sel.reason[members[dup]] = DUP
        sel.dup_of[members[dup]] = reps[dup]
        stats[c] = (len(members), len(first))
    return stats


def _eps_for_target(data: PruneData, rows: np.ndarray, target: int) -> float:
    """The threshold whose near-neighbour duplicate structure leaves ``target`` groups."""
    w = np.concatenate(
        [np.zeros(0, np.float32)] + [f for _, _, f in _per_cluster(forest_similarities, data, rows)]
    )
    w = np.sort(w)[::-1]
    remove = len(rows) - target
    if remove <= 0 or not len(w):
        return 1.0 + 1e-3  # nothing above it: no duplicates
    if remove >= len(w):
        return float(w[-1]) - 1e-6
    # the tightest threshold that still links ``remove`` forest edges
    return float(w[remove - 1] - min(1e-6, (w[remove - 1] - w[remove]) / 2))


def _fill_or_trim(data: PruneData, rows: np.ndarray, target: int, sel: Selection) -> None:
    """Make the kept count exactly ``target``: re-admit the least similar duplicates, or drop
    the easiest representatives (highest centroid_sim) as ``over_quota``."""
    kept = rows[sel.keep[rows]]
    if len(kept) < target:
        dups = rows[sel.reason[rows] == DUP]
        v = data.vectors
        sim = np.einsum("ij,ij->i", _unit(v[dups]), _unit(v[sel.dup_of[dups]]))
        sel.mark_kept(dups[np.lexsort((dups, sim))][: target - len(kept)])
    elif len(kept) > target:
        drop = kept[np.lexsort((kept, -data.centroid_sim[kept]))][: len(kept) - target]
        sel.keep[drop] = False
        sel.reason[drop] = OVER_QUOTA


class SemDeDup(PruneMethod):
    """Near-duplicate removal inside k-means clusters (Abbas et al., SemDeDup).

    With ``eps``, rows with cosine similarity > 1 - eps are linked; each connected group
    keeps one row. With ``keep``, eps is chosen from the near-neighbour single-linkage
    structure so that the groups number ``target``; the exact pass at that eps is then
    filled (least similar duplicates re-admitted) or trimmed to the exact count.
    """

    name = "semdedup"
    needs_vectors = True

    def select(self, data: PruneData, cfg: PruneConfig) -> Selection:
        rows = np.flatnonzero(data.valid)
        sel = Selection.empty(data.n_rows, KEPT)
        if cfg.eps is not None:
            threshold = 1.0 - cfg.eps
        else:
            threshold = _eps_for_target(data, rows, data.target)
        stats = mark_duplicates(data, rows, threshold, sel)
        groups = int(sel.keep[rows].sum())
        if cfg.keep is not None:
            _fill_or_trim(data, rows, data.target, sel)
        sel.explain = {
            "eps": round(1.0 - threshold, 6),
            "duplicate_groups": groups,
            "per_cluster": {
                "cluster": list(stats),
                "size": [s for s, _ in stats.values()],
                "groups": [g for _, g in stats.values()],
            },
        }
        return sel
