"""The check's links from embeddings, in one streaming pass of queries over a FAISS index:
near-duplicates inside the manifest, the outlier score, and the embedding signal of leakage
(test rows against the reference split, every row against ``--against``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from curate.engines.progress import Progress
from curate.manifests.io import Manifest, open_manifest
from curate.pipelines import _embeddings as E
from curate.pipelines.check.config import CheckConfig
from curate.pipelines.check.knn import Index, Neighbours, VectorSource, build_index, nearest_one
from curate.pipelines.check.pixel_links import Found


@dataclass
class EmbeddingLinks:
    """Per-row results of the embedding pass (row order; -1 / NaN where none)."""

    neighbours: Neighbours
    valid: np.ndarray  # bool: the row has a usable embedding
    is_outlier: np.ndarray  # bool
    outlier_threshold: float
    found: list[Found]  # leak candidates (sim >= threshold)
    nearest_leak_sim: np.ndarray  # float32: cosine to the nearest reference / other row
    pair_sims: dict[tuple[int, int, str], float] = field(default_factory=dict)
    index: dict = field(default_factory=dict)  # kind, rows, nlist, nprobe (run.json)


def _index_record(index: Index) -> dict:
    rec = {"kind": index.kind, "rows": index.rows}
    if index.kind == "ivf":
        rec.update(nlist=index.nlist, nprobe=index.nprobe)
    return rec


def _rows(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


class _Capture:
    """Vectors of a few rows (the two sides of pixel-found leak pairs), kept as they pass."""

    def __init__(self, n: int, rows: np.ndarray) -> None:
        self.want = np.zeros(n, bool)
        self.want[rows] = True
        self.vectors: dict[int, np.ndarray] = {}

    def take(self, rows: np.ndarray, x: np.ndarray) -> None:
        hit = self.want[rows]
        for r, v in zip(rows[hit], x[hit], strict=True):
            self.vectors[int(r)] = v.copy()


def _pair_sims(
    pairs: list[Found], mine: _Capture, theirs: _Capture | None
) -> dict[tuple[int, int, str], float]:
    out = {}
    for f in pairs:
        side = theirs if f.source == "against" else mine
        for r, p in zip(f.rows.tolist(), f.partners.tolist(), strict=True):
            a, b = mine.vectors.get(r), side.vectors.get(p) if side else None
            if a is not None and b is not None:
                out[(r, p, f.source)] = float(a @ b)
    return out


def embedding_links(
    m: Manifest,
    cfg: CheckConfig,
    *,
    test: np.ndarray | None,
    ref: np.ndarray | None,
    against: str | None,
    pixel_found: list[Found],
    progress: str = "auto",
) -> EmbeddingLinks:
    """Search every valid row's neighbours once and fold the results into per-row arrays.

    ``test``/``ref`` are row masks for split leakage (None: not checked); ``against`` is
    the other manifest's path when its embeddings are comparable; ``pixel_found`` are leak
    pairs found by pixels, whose cosines are computed on the way.
    """
    n = m.num_rows
    src = VectorSource(m, E.check_embedding_column(m, cfg.embedding_column))
    opts = {"exact_max_rows": cfg.exact_max_rows, "nprobe": cfg.nprobe, "seed": cfg.seed}
    index = _build(src, "check: index", progress, opts)
    valid = src.valid
    ev_index = ev_capture = None
    if against is not None:
        ev = open_manifest(against)
        ev_src = VectorSource(ev, E.check_embedding_column(ev, cfg.embedding_column))
        ev_index = _build(ev_src, "check: index --against", progress, opts)
        wanted = [f.partners for f in pixel_found if f.source == "against"]
        ev_capture = _Capture(ev.num_rows, _rows(wanted))
        for rows, x in ev_src.batches(cfg.batch_size, ev_capture.want):
            ev_capture.take(rows, x)
    ref_valid = ref & valid if ref is not None else None
    ref_index = index
    if ref_valid is not None and index.kind == "exact":
        # FAISS's flat search leaves BLAS for a slow scalar loop under an ID selector: an exact
        # index of the reference rows alone instead (memory: theirs, 4 d bytes each)
        ref_index = _build(src, "check: index the reference split", progress, opts, ref_valid)
    want = [f.rows for f in pixel_found] + [f.partners for f in pixel_found if f.source == "split"]
    mine = _Capture(n, _rows(want))
    nb = Neighbours.empty(n)
    leak_sim = np.full(n, np.nan, np.float32)
    found: list[Found] = []
    k = min(max(cfg.outlier_k, cfg.dup_k) + 1, max(index.rows, 1))
    with Progress("check: neighbour search", int(valid.sum()), mode=progress) as bar:
        for rows, x in src.batches(cfg.batch_size):
            sims, ids = index.search(x, k)
            nb.update(rows, sims, ids, cfg.near_dup_threshold, cfg.outlier_k)
            mine.take(rows, x)
            if ref_valid is not None and test[rows].any():
                t = test[rows]
                among = ref_valid if ref_index is index else None
                near = nearest_one(ref_index, x[t], among)
                found.append(_leak(rows[t], *near, "split", cfg, leak_sim))
            if ev_index is not None:
                found.append(_leak(rows, *nearest_one(ev_index, x), "against", cfg, leak_sim))
            bar.advance(len(rows))
    scores = nb.outlier[valid & np.isfinite(nb.outlier)]
    threshold = float(np.percentile(scores, cfg.outlier_percentile)) if len(scores) else np.inf
    records = {"manifest": _index_record(index)}
    if ev_index is not None:
        records["against"] = _index_record(ev_index)
    return EmbeddingLinks(
        neighbours=nb, valid=valid, is_outlier=nb.outlier > threshold,
        outlier_threshold=threshold, found=found, nearest_leak_sim=leak_sim,
        pair_sims=_pair_sims(pixel_found, mine, ev_capture), index=records,
    )  # fmt: skip


def _build(
    src: VectorSource, label: str, progress: str, opts: dict, rows: np.ndarray | None = None
) -> Index:
    """``build_index`` with progress lines (an IVF index trains for minutes before adding)."""
    n = int(rows.sum()) if rows is not None else src.manifest.num_rows
    with Progress(label, n, mode=progress) as bar:
        return build_index(src, rows=rows, on_add=bar.advance, **opts)


def _leak(
    rows: np.ndarray,
    partner: np.ndarray,
    sim: np.ndarray,
    source: str,
    cfg: CheckConfig,
    leak_sim: np.ndarray,
) -> Found:
    """Record each row's nearest cosine (the leak score) and keep those at the threshold."""
    have = np.isfinite(sim)
    prev = leak_sim[rows]
    leak_sim[rows] = np.where(have & ~(prev >= sim), sim, prev)
    hit = have & (sim >= cfg.near_dup_threshold)
    return Found(rows[hit], partner[hit], "embedding", source, sims=sim[hit])
