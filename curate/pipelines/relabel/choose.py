"""The default teacher (``teacher=None``): chosen by measured out-of-fold accuracy.

As label-issues' ``auto`` predictor, but measured rather than ruled: every candidate
available offline is fit out of fold on the same rows (a seeded sample of ``choice_rows``
labelled rows when there are more, so the choice costs minutes, not hours) and scored by its
agreement with the given labels. The cheapest candidate within ``choice_margin`` of the best
wins (cheapest first); the winner is then fit on every labelled row (or kept as it is when the
sample was every row).

Candidates: for small images (up to 64 px) the pixel CNN at their own size, EfficientNet-Lite0
features with a head, and their ensemble; for larger images EfficientNet-Lite0 alone (the CNN
is for small images), which is then the teacher without a contest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.teachers.build import DEFAULT_BACKBONE, build_members, join_members
from curate.pipelines.teachers.sizing import probe_images

PIXEL = "cnn"
#: Candidates for small images, cheapest first; the last is the ensemble of the others.
SMALL_CANDIDATES = (PIXEL, DEFAULT_BACKBONE, f"{PIXEL}+{DEFAULT_BACKBONE}")


@dataclass
class TeacherChoice:
    """How ``auto`` chose: each candidate's out-of-fold accuracy on ``rows`` rows."""

    teacher: str
    accuracies: dict[str, float] = field(default_factory=dict)
    rows: int = 0
    sampled: bool = False

    def describe(self) -> str:
        where = f"a seeded sample of {self.rows:,} labelled rows" if self.sampled else (
            f"{self.rows:,} labelled rows")  # fmt: skip
        scores = ", ".join(f"{k} {100 * v:.1f}%" for k, v in self.accuracies.items())
        return (
            f"teacher auto -> {self.teacher}: out-of-fold accuracy against the given labels "
            f"on {where}: {scores}"
        )

    def record(self) -> dict:
        return {"chosen": self.teacher, "out_of_fold_accuracy": {
            k: round(v, 6) for k, v in self.accuracies.items()}, "rows": self.rows,
            "sampled": self.sampled}  # fmt: skip


def pick(accuracies: dict[str, float], margin: float) -> str:
    """The first (cheapest) candidate within ``margin`` of the best accuracy."""
    best = max(accuracies.values())
    return next(k for k, v in accuracies.items() if v >= best - margin)


def _sample_ids(m: Manifest, rows: int, seed: int) -> set[str] | None:
    """A seeded sample of ``rows`` labelled ids, or None when there are no more than that."""
    t = m.read([S.ID, S.LABEL])
    labelled = np.flatnonzero(np.asarray(t.column(S.LABEL).is_valid()))
    if len(labelled) <= rows:
        return None
    chosen = np.random.default_rng(seed).choice(labelled, rows, replace=False)
    return set(np.asarray(t.column(S.ID).to_pylist(), dtype=object)[chosen].tolist())


def _opts(m: Manifest, cfg: RelabelConfig, log) -> dict:
    return {**cfg.teacher_options(), "split": None, "geometry": probe_images(m), "log": log}


def build_chosen(m: Manifest, cfg: RelabelConfig, *, log: Callable[[str], None] | None = None):
    """The teacher for ``cfg`` (fitted, set up) and, under ``auto``, how it was chosen."""
    log = log or (lambda _msg: None)
    opts = _opts(m, cfg, log)
    if not cfg.auto:
        return join_members(build_members(cfg.teacher, m, opts)).setup(), None
    geometry = opts["geometry"]
    if S.LABEL not in m.schema.names or geometry is None or not geometry.small:
        teacher = join_members(build_members(DEFAULT_BACKBONE, m, opts)).setup()
        oof = getattr(teacher, "oof_", None)
        accuracies = {DEFAULT_BACKBONE: oof.accuracy()} if oof is not None else {}
        rows = len(oof.ids) if oof is not None else 0
        return teacher, TeacherChoice(DEFAULT_BACKBONE, accuracies, rows)
    subset = _sample_ids(m, cfg.choice_rows, cfg.seed)
    screen = {**opts, "subset": subset}
    if subset is not None:
        log(f"teacher auto: measuring {', '.join(SMALL_CANDIDATES)} on {len(subset):,} "
            "sampled labelled rows")  # fmt: skip
    members = dict(zip(SMALL_CANDIDATES[:2], build_members(
        "+".join(SMALL_CANDIDATES[:2]), m, screen), strict=True))  # fmt: skip
    teachers = {**members, SMALL_CANDIDATES[2]: join_members(list(members.values()))}
    accuracies = {k: t.oof_.accuracy() for k, t in teachers.items()}
    chosen = pick(accuracies, cfg.choice_margin)
    rows = len(teachers[chosen].oof_.ids)
    choice = TeacherChoice(chosen, accuracies, rows, sampled=subset is not None)
    log(choice.describe())
    if subset is None:
        return teachers[chosen].setup(), choice
    log(f"fitting {chosen} on every labelled row")
    full = {**opts, "subset": None}
    return join_members(build_members(chosen, m, full)).setup(), choice
