"""The pruning-method interface: config, the data a method sees, its selection, shared helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from curate.errors import InputError
from curate.manifests import schema as S
from curate.pipelines import _embeddings as E

# prune_reason codes; a kept row has code KEPT and a null prune_reason.
KEPT, DUP, OVER_QUOTA, NOT_SAMPLED, BELOW_CUTOFF, NO_CLIP_SCORE = 0, 1, 2, 3, 4, 5
_INVALID_BASE = 10  # 10 + embedding validity code (see _embeddings.INVALID_REASONS)

CLIP_SCORE = "clip_score"
KEEP = "keep"
PRUNE_REASON = "prune_reason"


class UnknownMethodError(InputError, ValueError):
    """``method=`` names no registered pruning method."""


def invalid_code(embedding_code: np.ndarray) -> np.ndarray:
    """prune_reason codes for rows with an unusable embedding."""
    return (_INVALID_BASE + embedding_code).astype(np.int8)


def reason_text(code: int, method: str) -> str | None:
    """The prune_reason string of a code (``dup_of`` ids are filled in by the writer)."""
    if code == KEPT:
        return None
    if code >= _INVALID_BASE:
        return E.reason_text(code - _INVALID_BASE)
    return {
        DUP: "semdedup:dup_of=",
        OVER_QUOTA: f"{method.replace('-', '_')}:over_quota",
        NOT_SAMPLED: "random:not_sampled",
        BELOW_CUTOFF: "clip_score:below_cutoff",
        NO_CLIP_SCORE: "invalid_clip_score:missing",
    }[code]


@dataclass(frozen=True)
class PruneConfig:
    """What to keep and how; validated on creation. See :func:`curate.pipelines.prune.prune`."""

    keep: float | None = None
    method: str = "dbp"
    eps: float | None = None
    k: int | None = None
    seed: int = 0
    keep_easy: bool = False
    dedup_eps: float | None = None
    temperature: float = 0.1
    embedding_column: str = S.EMBEDDING
    n_neighbors: int = 20

    def __post_init__(self) -> None:
        if self.keep is not None and not (
            isinstance(self.keep, int | float) and 0 < self.keep <= 1 and math.isfinite(self.keep)
        ):
            raise InputError(
                f"keep must be a fraction in (0, 1] (--keep), got {self.keep!r}; "
                "e.g. --keep 0.27 keeps 27% of the rows."
            )
        for name in ("eps", "dedup_eps"):
            v = getattr(self, name)
            if v is not None and not 0 < v < 2:
                raise InputError(
                    f"{name} must be in (0, 2) (duplicates have cosine > 1 - eps), got {v!r}"
                )
        if self.k is not None and (not isinstance(self.k, int) or self.k < 1):
            raise InputError(f"k must be a positive integer (--k), got {self.k!r}")
        if not self.temperature > 0:
            raise InputError(f"temperature must be > 0, got {self.temperature!r}")
        if self.n_neighbors < 1:
            raise InputError(f"n_neighbors must be >= 1, got {self.n_neighbors!r}")
        if self.method == "semdedup":
            if (self.keep is None) == (self.eps is None):
                raise InputError(
                    "semdedup needs exactly one of --eps (a similarity threshold) or --keep "
                    "(a fraction; eps is then chosen to reach it)."
                )
        elif self.keep is None:
            raise InputError(f"method {self.method!r} needs --keep (a fraction in (0, 1]).")
        elif self.eps is not None:
            raise InputError(
                f"--eps applies to semdedup only; with {self.method!r} use --dedup-eps."
            )


@dataclass
class PruneData:
    """Everything a method may read, one entry per row of the manifest."""

    n_rows: int
    valid: np.ndarray  # bool: usable for this method
    target: int | None = None  # rows to keep, round(keep * n_valid)
    cluster: np.ndarray | None = None  # int32, -1 for invalid rows
    centroid_sim: np.ndarray | None = None  # float32
    centroids: np.ndarray | None = None  # (k, d) unit vectors
    # float16 (n_rows, d) row directions, not always unit length: normalise before use
    vectors: np.ndarray | None = None
    clip_score: np.ndarray | None = None

    @property
    def n_valid(self) -> int:
        return int(self.valid.sum())

    @property
    def k(self) -> int:
        return 0 if self.centroids is None else len(self.centroids)


@dataclass
class Selection:
    """A method's decision per row: keep flag, reason code, duplicate target, and why."""

    keep: np.ndarray
    reason: np.ndarray
    dup_of: np.ndarray
    explain: dict = field(default_factory=dict)

    @classmethod
    def empty(cls, n: int, reason: int) -> Selection:
        """Nothing kept yet; every row marked with ``reason`` until a method keeps it."""
        return cls(
            np.zeros(n, dtype=bool), np.full(n, reason, dtype=np.int8), np.full(n, -1, np.int64)
        )

    def mark_kept(self, rows: np.ndarray) -> None:
        self.keep[rows] = True
        self.reason[rows] = KEPT
        self.dup_of[rows] = -1


class PruneMethod:
    """A pruning method: a name, what data it needs, and one ``select`` method."""

    name: str = ""
    needs_clusters: bool = True
    needs_vectors: bool = False
    needs_embeddings: bool = True

    def needs_vectors_for(self, cfg: PruneConfig) -> bool:
        """Whether the float16 vectors must be held in memory for this config."""
        return self.needs_vectors or cfg.dedup_eps is not None

    def select(self, data: PruneData, cfg: PruneConfig) -> Selection:
        """Decide which valid rows to keep; invalid rows are handled by the caller."""
        raise NotImplementedError


def target_count(keep: float, n_valid: int) -> int:
    """round(keep * n_valid), half up, at least 1 when there is any valid row."""
    if n_valid == 0:
        return 0
    return int(min(n_valid, max(1, math.floor(keep * n_valid + 0.5))))


def rank_in_cluster(cluster: np.ndarray, key: np.ndarray, rows: np.ndarray):
    """Sort ``rows`` by (cluster, key, row) and return (rows, their cluster, rank in cluster)."""
    order = rows[np.lexsort((rows, key[rows], cluster[rows]))]
    c = cluster[order]
    if not len(order):
        return order, c, order
    starts = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
    lengths = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, lengths)
    return order, c, rank


def keep_by_quota(
    data: PruneData, rows: np.ndarray, quotas: np.ndarray, *, easy: bool, sel: Selection
) -> None:
    """Keep the ``quotas[c]`` hardest rows (lowest centroid_sim) of each cluster among ``rows``.

    ``easy`` keeps the highest centroid_sim instead. Ties go to the lower row index.
    """
    key = -data.centroid_sim if easy else data.centroid_sim
    order, c, rank = rank_in_cluster(data.cluster, key, rows)
    sel.mark_kept(order[rank < quotas[c]])


def cluster_sizes(data: PruneData, rows: np.ndarray) -> np.ndarray:
    return np.bincount(data.cluster[rows], minlength=data.k)
