"""What the fit learns about the labels: the teacher's out-of-sample probabilities on the
labelled rows, the noise channel estimated from them, and whether the teacher is weaker than
the labels it would correct.

Which is more often right, the teacher or the given labels? Neither is the truth, but the
posterior weighs both: the mean posterior probability of the teacher's top-1 estimates the
teacher's accuracy, that of the given label the labels' accuracy. On the 5,000-row Fashion-MNIST
validation split they came within 5 points of the true figures at 0% and 20% noise, but at
symmetric 40% the teacher's estimate was 22 points low (0.54 against a true 0.76), so the
check can warn about a teacher that is in fact stronger (BENCHMARKS.md, Relabel). The
teacher's raw agreement with noisy labels and cleanlab's trace of the joint fall further below
the truth. A teacher estimated right less often than the labels is weaker than
the labels on this data: its soft labels should lean on the given label, and ReLabel's
pure-teacher target would rewrite labels that were right. That is reported as a
:class:`WeakTeacherWarning` naming the figures (``weak_teacher="warn"``, the default), an
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
from curate.pipelines.relabel.posterior import NoiseChannel, estimate_channel, posterior_probs
from curate.pipelines.teachers.heads import OutOfFold

#: Rows scored by a teacher not fit here (a user classifier) to estimate the channel.
CHANNEL_ROWS = 20_000


class WeakTeacherWarning(UserWarning):
    """The teacher is estimated right on fewer rows than the given labels are."""


class WeakTeacherError(InputError):
    """``weak_teacher="error"`` and the teacher is weaker than the labels."""


@dataclass
class Evidence:
    """What the fit measured and estimated about the teacher and the labels.

    Attributes
    ----------
    teacher_accuracy
        The teacher's agreement with the given labels (out of fold, or scored).
    channel
        The noise channel; its ``label_accuracy`` is cleanlab's estimate (the joint's trace).
    teacher_estimated, labels_estimated
        The share of rows whose true class is the teacher's top-1, and the given label, as
        the posterior estimates them (the mean posterior probability of each): the two
        accuracies the weak-teacher check compares.
    """

    teacher_accuracy: float
    channel: NoiseChannel
    rows: int
    out_of_fold: bool
    teacher_estimated: float
    labels_estimated: float

    @property
    def label_accuracy(self) -> float:
        return self.channel.label_accuracy

    @property
    def weak(self) -> bool:
        """The teacher is estimated right on fewer rows than the given labels are."""
        return self.teacher_estimated < self.labels_estimated

    def describe(self, teacher: str) -> str:
        """One line: the teacher's agreement and both estimated accuracies."""
        how = "out of fold" if self.out_of_fold else "scored"
        return (
            f"teacher {teacher}: {100 * self.teacher_accuracy:.1f}% agreement with the given "
            f"labels ({how}, {self.rows:,} rows); estimated right: teacher "
            f"{100 * self.teacher_estimated:.1f}%, labels {100 * self.labels_estimated:.1f}% "
            f"(cleanlab's joint: labels {100 * self.label_accuracy:.1f}%)"
        )

    def record(self) -> dict[str, Any]:
        return {
            "teacher_accuracy": round(self.teacher_accuracy, 6),
            "teacher_estimated_accuracy": round(self.teacher_estimated, 6),
            "labels_estimated_accuracy": round(self.labels_estimated, 6),
            "rows": self.rows,
            "out_of_fold": self.out_of_fold,
            "weak_teacher": self.weak,
            **self.channel.summary(),
        }


def weak_teacher_message(evidence: Evidence, teacher: str, target: str) -> str:
    """The warning: the figures, what it means for ``target``, how to proceed."""
    ev = evidence
    where = "out of fold" if ev.out_of_fold else "on the labelled rows"
    effect = (
        "the posterior soft labels will mostly keep the given labels"
        if target == "posterior"
        else "target='teacher' will replace labels that are likely right with its guesses"
    )
    return (
        f"teacher {teacher} agrees with {100 * ev.teacher_accuracy:.1f}% of the given labels "
        f"({where}) and is estimated right on {100 * ev.teacher_estimated:.1f}% of the rows, "
        f"less than the {100 * ev.labels_estimated:.1f}% estimated for the labels (posterior "
        f"of the teacher and cleanlab's noise channel): it is weaker than the labels, so "
        f"{effect}. A stronger teacher (--teacher classifier:timm:<name>=<weights> trained on "
        "more or cleaner data) is the fix; --weak-teacher proceed goes on without this "
        "warning, --weak-teacher error stops."
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


def gather_evidence(teacher, m: Manifest, *, prior: float, temperature: float, batch_size: int,
                    seed: int, log: Callable[[str], None]) -> Evidence | None:  # fmt: skip
    """The teacher's out-of-fold probabilities (or, for a teacher not fit here, its
    probabilities on a sample of labelled rows), the channel they estimate, and the accuracies
    the posterior estimates; None for a manifest without labels."""
    if S.LABEL not in m.schema.names:
        return None
    oof = getattr(teacher, "oof_", None)
    fit_here = oof is not None
    if oof is None:
        log(f"scoring the labelled rows with {teacher.name} to estimate the noise channel")
        oof = scored_rows(teacher, m, batch_size=batch_size, seed=seed, log=log)
    channel = estimate_channel(oof.labels, oof.probs, prior=prior)
    q = posterior_probs(oof.probs, oof.labels, channel, temperature=temperature)
    rows = np.arange(len(q))
    return Evidence(
        teacher_accuracy=oof.accuracy(), channel=channel, rows=len(oof.ids),
        out_of_fold=fit_here, teacher_estimated=float(q[rows, oof.probs.argmax(axis=1)].mean()),
        labels_estimated=float(q[rows, oof.labels].mean()),
    )  # fmt: skip


def given_labels(table: pa.Table) -> np.ndarray:
    """The batch's given labels, -1 where null or absent."""
    if S.LABEL not in table.column_names:
        return np.full(table.num_rows, -1, np.int64)
    return table.column(S.LABEL).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
