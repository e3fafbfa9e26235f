"""Phase 1 of a prune: the clusters, fitted on a bounded sample or taken from the manifest."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from curate.engines.workers import Workers
from curate.manifests.io import Manifest
from curate.pipelines import _embeddings as E
from curate.pipelines.cluster import (
    CENTROID_SIM,
    CLUSTER,
    ClusterConfig,
    centroids_path,
    fit_kmeans,
)
from curate.pipelines.prune.base import PruneConfig


@dataclass
class Model:
    """The centroids a prune assigns to, and where they came from."""

    centroids: np.ndarray  # (k, d) unit rows; empty until rebuilt from members (``rebuild``)
    k: int
    fresh: bool  # trained here (else read from the manifest's cluster columns)
    rebuild: bool  # the manifest's clusters have no usable centroids file: sum the members
    timings: dict = field(default_factory=dict)


def _existing_k(m: Manifest) -> int:
    top = -1
    for b in m.iter_batches([CLUSTER]):
        col = b.column(0).drop_null()
        if len(col):
            top = max(top, int(np.max(col.to_numpy())))
    return max(top + 1, 1)


def clustering_model(
    m: Manifest, cfg: PruneConfig, col: E.EmbeddingColumn, scratch: Path, workers: Workers
) -> Model:
    """The prune's clusters (``model.npz`` in the scratch once made): the manifest's own
    ``cluster`` / ``centroid_sim`` when it has them and no ``k`` is given (centroids from the
    file beside it, or rebuilt from the members when it is missing or stale), else k-means
    trained on a bounded seeded sample."""
    path = scratch / "model.npz"
    if path.exists():
        z = np.load(path)
        c = z["centroids"]
        return Model(c, len(c) or int(z["k"]), bool(z["fresh"]), bool(z["rebuild"]))
    if CLUSTER in m.schema.names and CENTROID_SIM in m.schema.names and cfg.k is None:
        k = _existing_k(m)
        saved = centroids_path(m.path)
        c = np.load(saved).astype(np.float32) if saved.exists() else None
        if c is not None and len(c) >= k and c.shape[1] == col.dim:
            model = Model(c, len(c), fresh=False, rebuild=False)
        else:
            model = Model(np.zeros((0, col.dim), np.float32), k, fresh=False, rebuild=True)
    else:
        ccfg = ClusterConfig(k=cfg.k, seed=cfg.seed, embedding_column=cfg.embedding_column)
        km, _, timings = fit_kmeans(m, ccfg, workers)
        model = Model(km.centroids_, km.k, fresh=True, rebuild=False, timings=timings)
    tmp = scratch / ".model.tmp.npz"
    np.savez(tmp, centroids=model.centroids, fresh=model.fresh, rebuild=model.rebuild, k=model.k)
    os.replace(tmp, path)
    return model
