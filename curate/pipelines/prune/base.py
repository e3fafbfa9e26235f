"""The pruning-method interface: config, the data a method sees, its selection, shared helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass

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


#: DBP softmax temperature and per-cluster floor: the reference implementation's defaults
#: (amro-kamal/effective_pruning, prune.py: ``--temperature 0.5``, ``--cls-bal-ratio 0.5``).
DBP_TEMPERATURE = 0.5
DBP_CLUSTER_BALANCE = 0.5
#: Bytes of one cluster's vectors (float32) held at once; a larger cluster is read from the
#: scratch directory in blocks instead of all at once.
GROUP_MEMORY = 512 << 20


@dataclass(frozen=True)
class PruneConfig:
    """What to keep and how; validated on creation. See :func:`curate.pipelines.prune.prune`.

    Defaults and why: ``temperature`` 0.5 and ``cluster_balance`` 0.5 are what the DBP
    authors run (their ``prune.py``); ``n_neighbors`` 20 is their d_inter neighbourhood;
    ``seed`` 0 makes every run reproducible; ``group_memory`` bounds the memory of the
    per-cluster work (512 MiB of float32 vectors, ~260k rows at d=512).
    """

    keep: float | None = None
    method: str = "dbp"
    eps: float | None = None
    k: int | None = None
    seed: int = 0
    keep_easy: bool = False
    dedup_eps: float | None = None
    temperature: float = DBP_TEMPERATURE
    cluster_balance: float = DBP_CLUSTER_BALANCE
    embedding_column: str = S.EMBEDDING
    n_neighbors: int = 20
    group_memory: int = GROUP_MEMORY

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
        if not 0 <= self.cluster_balance <= 1:
            raise InputError(
                f"cluster_balance must be in [0, 1] (--cluster-balance; 0 switches the "
                f"per-cluster floor off), got {self.cluster_balance!r}"
            )
        if self.n_neighbors < 1:
            raise InputError(f"n_neighbors must be >= 1, got {self.n_neighbors!r}")
        if not isinstance(self.group_memory, int) or self.group_memory < 1 << 12:
            raise InputError(
                f"group_memory must be a number of bytes of at least 4096, got "
                f"{self.group_memory!r}"
            )
        self._check_method()

    def _check_method(self) -> None:
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


class PruneMethod:
    """A pruning method: what it needs from the scan, its global decision, and its rule.

    ``decide(plan, cfg)`` runs the per-cluster work it needs through ``plan`` (see
    :class:`~curate.pipelines.prune.plan.Plan`) and returns a JSON-able ``state`` (quotas,
    cut-offs) and the ``explain`` table for run.json; ``rule(fields, state, cfg)`` turns one
    run's per-row fields into ``(keep, reason code)`` for its valid rows. Neither ever holds
    the pool's vectors.
    """

    name: str = ""
    needs_clusters: bool = True
    needs_embeddings: bool = True
    key_column: str | None = None

    def needs_vectors(self, cfg: PruneConfig) -> bool:
        """Whether the float16 vectors are spilled (SemDeDup compares them)."""
        return False

    def decide(self, plan, cfg: PruneConfig) -> tuple[dict, dict]:
        raise NotImplementedError

    def rule(self, f: dict[str, np.ndarray], state: dict, cfg: PruneConfig):
        raise NotImplementedError


def target_count(keep: float, n_valid: int) -> int:
    """round(keep * n_valid), half up, at least 1 when there is any valid row."""
    if n_valid == 0:
        return 0
    return int(min(n_valid, max(1, math.floor(keep * n_valid + 0.5))))


def quota_rule(f: dict[str, np.ndarray], quotas) -> tuple[np.ndarray, np.ndarray]:
    """Keep a cluster's ``quota`` best-ranked remaining rows; duplicates stay duplicates."""
    q = np.asarray(quotas, np.int64)
    keep = ~f["dup"] & (f["rank"] < q[f["cluster"]])
    reason = np.where(keep, KEPT, np.where(f["dup"], DUP, OVER_QUOTA)).astype(np.int8)
    return keep, reason
