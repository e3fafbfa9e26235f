"""What the fit learns about the labels: the teacher's out-of-sample probabilities on the
labelled rows, the noise channel estimated from them, and whether the teacher is weaker than
the labels it would correct.

A teacher that agrees with the given labels less often than the labels are estimated to be
right (cleanlab's estimated label accuracy, the trace of the joint) is weaker than the labels
on this data: its soft labels should lean on the given label, and ReLabel's pure-teacher
target would rewrite labels that were right. That is reported as a
:class:`WeakTeacherWarning` naming both figures (``weak_teacher="warn"``, the default), an
error before any row is written (``"error"``), or only in run.json (``"proceed"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from curate.engines.progress import Heartbeat
from curate.errors import InputError
from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.pipelines.relabel.posterior import NoiseChannel, estimate_channel
from curate.pipelines.teachers.heads import OutOfFold

#: Rows scored by a teacher not fit here (a user classifier) to estimate the channel.
CHANNEL_ROWS = 20_000


class WeakTeacherWarning(UserWarning):
    """The teacher agrees with fewer given labels than the labels are estimated to be right."""


class WeakTeacherError(InputError):
    """``weak_teacher="error"`` and the teacher is weaker than the labels."""


@dataclass
class Evidence:
    """The teacher's accuracy against the given labels and the estimated noise channel."""

    teacher_accuracy: float
    channel: NoiseChannel
    rows: int
    out_of_fold: bool

    @property
    def label_accuracy(self) -> float:
        return self.channel.label_accuracy

    @property
    def weak(self) -> bool:
        return self.teacher_accuracy < self.label_accuracy

    def describe(self, teacher: str) -> str:
        """One line: the teacher's agreement and the labels' estimated accuracy."""
        how = "out of fold" if self.out_of_fold else "scored"
        return (
            f"teacher {teacher}: {100 * self.teacher_accuracy:.1f}% agreement with the given "
            f"labels ({how}, {self.rows:,} rows); labels estimated "
            f"{100 * self.label_accuracy:.1f}% right"
        )

    def record(self) -> dict[str, Any]:
        return {
            "teacher_accuracy": round(self.teacher_accuracy, 6),
            "rows": self.rows,
            "out_of_fold": self.out_of_fold,
            "weak_teacher": self.weak,
            **self.channel.summary(),
        }


def weak_teacher_message(evidence: Evidence, teacher: str, target: str) -> str:
    """The warning: both figures, what it means for ``target``, how to proceed."""
    acc, lab = 100 * evidence.teacher_accuracy, 100 * evidence.label_accuracy
    where = "out of fold" if evidence.out_of_fold else "on the labelled rows"
    effect = (
        "the posterior soft labels will mostly keep the given labels"
        if target == "posterior"
        else "target='teacher' will replace labels that are likely right with its guesses"
    )
    return (
        f"teacher {teacher} agrees with {acc:.1f}% of the given labels ({where}), less than "
        f"the {lab:.1f}% of labels estimated to be right (cleanlab's confident joint): it is "
        f"weaker than the labels, so {effect}. A stronger teacher (--teacher "
        "classifier:timm:<name>=<weights> trained on more or cleaner data) is the fix; "
        "--weak-teacher proceed goes on without this warning, --weak-teacher error stops."
    )


def check_teacher(evidence: Evidence, teacher: str, target: str, policy: str) -> str | None:
    """Apply the ``weak_teacher`` policy; returns the message when the teacher is weak."""
    if not evidence.weak:
        return None
    message = weak_teacher_message(evidence, teacher, target)
    if policy == "error":
        raise WeakTeacherError(message.replace("--weak-teacher error stops.", "").rstrip())
    if policy == "warn":
        warnings.warn(message, WeakTeacherWarning, stacklevel=4)
    return message


def scored_rows(teacher, m: Manifest, *, batch_size: int, rows: int = CHANNEL_ROWS,
                seed: int = 0, log: Callable[[str], None] | None = None) -> OutOfFold:  # fmt: skip
    """A teacher's probabilities on (a seeded sample of ``rows``) labelled rows, for a teacher
    not fit on them (a user classifier)."""
    from curate.pipelines.teachers import decode_table
    from curate.pipelines.teachers.build import labelled_batches

    t = m.read([S.ID, S.LABEL])
    labelled = np.flatnonzero(np.asarray(t.column(S.LABEL).is_valid()))
    if len(labelled) > rows:
        labelled = np.random.default_rng(seed).choice(labelled, rows, replace=False)
    subset = set(np.asarray(t.column(S.ID).to_pylist(), dtype=object)[labelled].tolist())
    base = str(m.path.parent if m.path.is_file() else m.path)
    ids, labels, probs = [], [], []
    beat = Heartbeat(log)
    for b in labelled_batches(m, batch_size, None, subset):
        beat(f"  scored {len(ids):,} of {len(subset):,} labelled rows")
        x, errors = decode_table(b, teacher.image_size, base_dir=base)
        ok = np.array([e is None for e in errors])
        if ok.any():
            p = teacher.logits(x[ok]).softmax(dim=1).cpu().numpy()
            probs.append(p)
            ids += np.asarray(b.column(S.ID).to_pylist(), dtype=object)[ok].tolist()
            labels.append(b.column(S.LABEL).to_numpy()[ok])
    if not ids:
        raise InputError(f"{m.path}: no labelled row with a decodable image to score.")
    return OutOfFold(ids, np.concatenate(labels).astype(np.int64), np.concatenate(probs))


def gather_evidence(teacher, m: Manifest, *, prior: float, batch_size: int, seed: int,
                    log: Callable[[str], None]) -> Evidence | None:  # fmt: skip
    """The teacher's out-of-fold probabilities (or, for a teacher not fit here, its
    probabilities on a sample of labelled rows) and the channel they estimate; None for a
    manifest without labels."""
    if S.LABEL not in m.schema.names:
        return None
    oof = getattr(teacher, "oof_", None)
    if oof is None:
        log(f"scoring the labelled rows with {teacher.name} to estimate the noise channel")
        oof = scored_rows(teacher, m, batch_size=batch_size, seed=seed, log=log)
    channel = estimate_channel(oof.labels, oof.probs, prior=prior)
    return Evidence(
        oof.accuracy(), channel, len(oof.ids), getattr(teacher, "oof_", None) is not None
    )


def given_labels(table: pa.Table) -> np.ndarray:
    """The batch's given labels, -1 where null or absent."""
    if S.LABEL not in table.column_names:
        return np.full(table.num_rows, -1, np.int64)
    return table.column(S.LABEL).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
