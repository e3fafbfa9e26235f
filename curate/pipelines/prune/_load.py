"""Gather what a pruning method needs: validity, clusters, centroids, vectors or CLIP scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from curate.errors import ManifestError
from curate.manifests.io import Manifest
from curate.pipelines import _embeddings as E
from curate.pipelines.cluster import (
    CENTROID_SIM,
    CLUSTER,
    ClusterConfig,
    centroids_path,
    fit_clusters,
)
from curate.pipelines.prune.base import (
    CLIP_SCORE,
    KEPT,
    NO_CLIP_SCORE,
    PruneConfig,
    PruneData,
    PruneMethod,
    invalid_code,
    target_count,
)


@dataclass
class Loaded:
    """PruneData plus what the writer needs: per-row invalid reasons and fresh clusters."""

    data: PruneData
    invalid_reason: np.ndarray  # int8 prune_reason code for invalid rows, KEPT for valid
    embedding_codes: np.ndarray | None  # validity codes of the embedding column
    computed_clusters: bool
    timings: dict


def _clip_scores(m: Manifest) -> tuple[np.ndarray, np.ndarray]:
    if CLIP_SCORE not in m.schema.names:
        raise ManifestError(
            f"{m.path}: --method clip-score needs a {CLIP_SCORE!r} column (image-text cosine), "
            f"which it lacks (it has {m.schema.names}). Run `curate embed` with a CLIP model "
            "on a manifest with a text column to add it."
        )
    scores = np.concatenate(
        [
            pc.fill_null(b.column(0).cast("float64"), np.nan).to_numpy(zero_copy_only=False)
            for b in m.iter_batches([CLIP_SCORE])
        ]
        or [np.zeros(0)]
    )
    valid = np.isfinite(scores)
    return scores, np.where(valid, KEPT, NO_CLIP_SCORE).astype(np.int8)


def _existing_clusters(m: Manifest, col: E.EmbeddingColumn, keep_vectors: bool):
    """Read cluster/centroid_sim from the manifest; centroids from the file beside it (or
    recomputed as normalised member means when that file is missing)."""
    n = m.num_rows
    cluster = np.full(n, -1, np.int32)
    sims = np.full(n, np.nan, np.float32)
    codes = np.zeros(n, np.int8)
    vectors = np.zeros((n, col.dim), np.float16) if keep_vectors else None
    path = centroids_path(m.path)
    saved = np.load(path).astype(np.float32) if path.exists() else None
    sums = np.zeros((0, col.dim))
    for off, mat, c, batch in E.scan(m, col, extra=[CLUSTER, CENTROID_SIM]):
        sl = slice(off, off + len(c))
        codes[sl] = c
        cluster[sl] = pc.fill_null(batch.column(1).cast("int32"), -1).to_numpy()
        sims[sl] = pc.fill_null(batch.column(2).cast("float32"), np.nan).to_numpy()
        if vectors is not None:
            vectors[sl] = mat
        if saved is None:
            sums = _add_member_sums(sums, cluster[sl], mat, c == E.VALID)
    codes[(codes == E.VALID) & ((cluster < 0) | ~np.isfinite(sims))] = E.NO_CLUSTER
    k = int(cluster.max()) + 1 if n else 1
    if saved is not None and len(saved) >= k and saved.shape[1] == col.dim:
        return cluster, sims, codes, saved, vectors
    if saved is not None:  # a stale file: recompute from the members
        return _existing_clusters_recomputed(m, col, cluster, sims, codes, vectors)
    norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return cluster, sims, codes, (sums / norms).astype(np.float32), vectors


def _add_member_sums(sums: np.ndarray, lab: np.ndarray, mat: np.ndarray, ok: np.ndarray):
    ok = ok & (lab >= 0)
    k = max(len(sums), int(lab[ok].max()) + 1 if ok.any() else 0)
    if k > len(sums):
        sums = np.vstack([sums, np.zeros((k - len(sums), sums.shape[1]))])
    order = np.argsort(lab[ok], kind="stable")
    lab_s, mat_s = lab[ok][order], mat[ok][order]
    if len(lab_s):
        starts = np.r_[0, np.flatnonzero(np.diff(lab_s)) + 1]
        sums[lab_s[starts]] += np.add.reduceat(mat_s, starts, axis=0)
    return sums


def _existing_clusters_recomputed(m, col, cluster, sims, codes, vectors):
    sums = np.zeros((0, col.dim))
    for off, mat, c, _ in E.scan(m, col):
        sums = _add_member_sums(sums, cluster[off : off + len(c)], mat, c == E.VALID)
    norms = np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return cluster, sims, codes, (sums / norms).astype(np.float32), vectors


def _embedding_codes(m: Manifest, col: E.EmbeddingColumn) -> np.ndarray:
    codes = np.zeros(m.num_rows, np.int8)
    for off, _, c, _ in E.scan(m, col):
        codes[off : off + len(c)] = c
    return codes


def load(m: Manifest, method: PruneMethod, cfg: PruneConfig) -> Loaded:
    """Build the method's :class:`PruneData` in one or two streaming passes."""
    n = m.num_rows
    data = PruneData(n_rows=n, valid=np.ones(n, bool))
    codes, computed, timings = None, False, {}
    if method.needs_clusters:
        col = E.check_embedding_column(m, cfg.embedding_column)
        keep_vectors = method.needs_vectors_for(cfg)
        have = CLUSTER in m.schema.names and CENTROID_SIM in m.schema.names
        if have and cfg.k is None:
            cluster, sims, codes, centroids, vectors = _existing_clusters(m, col, keep_vectors)
        else:
            ccfg = ClusterConfig(k=cfg.k, seed=cfg.seed, embedding_column=cfg.embedding_column)
            res = fit_clusters(m, ccfg, keep_vectors=keep_vectors)
            cluster, sims, codes = res.cluster, res.centroid_sim, res.codes
            centroids, vectors, computed = res.model.centroids_, res.vectors, True
            timings = res.timings
        data.cluster, data.centroid_sim, data.centroids = cluster, sims, centroids
        data.vectors = vectors
    elif method.needs_embeddings and cfg.embedding_column in m.schema.names:
        codes = _embedding_codes(m, E.check_embedding_column(m, cfg.embedding_column))
    if method.name == "clip-score":
        data.clip_score, reason = _clip_scores(m)
    elif codes is not None:
        reason = np.where(codes == E.VALID, KEPT, invalid_code(codes)).astype(np.int8)
    else:
        reason = np.zeros(n, np.int8)
    data.valid = reason == KEPT
    data.target = target_count(cfg.keep, data.n_valid) if cfg.keep is not None else None
    return Loaded(data, reason, codes, computed, timings)
