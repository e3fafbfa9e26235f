"""Which rows a label-issues run audits, which it trains on, and their given labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest
from curate.pipelines.label_issues.config import LabelIssuesConfig
from curate.pipelines.label_issues.validate import check_labels, check_multilabels


@dataclass
class Plan:
    """The rows of one run. ``audit`` and ``train`` are manifest row indices."""

    n_rows: int
    ids: list[str]
    multilabel: bool
    labels: np.ndarray | list  # int per row (-1 where null), or a list of lists
    class_names: list[str] | None
    n_classes: int
    audit: np.ndarray
    train: np.ndarray | None
    skipped: dict[str, int]

    def labels_at(self, rows: np.ndarray):
        if self.multilabel:
            return [self.labels[int(r)] for r in rows]
        return self.labels[rows]

    def name(self, k: int) -> str:
        return (
            self.class_names[k] if self.class_names and 0 <= k < len(self.class_names) else str(k)
        )


def _usable(table: pa.Table, label_col: str) -> tuple[np.ndarray, dict[str, int]]:
    has_label = table.column(label_col).is_valid().to_numpy(zero_copy_only=False)
    ok = has_label.copy()
    skipped = {"no_label": int((~has_label).sum())}
    if S.ERROR in table.column_names:
        errored = table.column(S.ERROR).is_valid().to_numpy(zero_copy_only=False)
        skipped["error"] = int((errored & has_label).sum())
        ok &= ~errored
    return ok, skipped


def _split_rows(table: pa.Table, ok: np.ndarray, split: str, role: str, source: str) -> np.ndarray:
    if S.SPLIT not in table.column_names:
        raise InputError(f"{source}: {role} needs a 'split' column; the manifest has none.")
    col = table.column(S.SPLIT)
    rows = np.flatnonzero(ok & pc.fill_null(pc.equal(col, split), False).to_numpy())
    if len(rows) == 0:
        present = sorted(v for v in pc.unique(col).to_pylist() if v is not None)
        raise InputError(
            f"{source}: no labelled rows with split == {split!r} to {role}; splits present: "
            f"{present}. Pick one of them with --{role.replace(' ', '-')}."
        )
    return rows


def _labels(table: pa.Table, multilabel: bool):
    if multilabel:
        return [row or [] for row in table.column(S.LABELS).to_pylist()]
    return pc.fill_null(table.column(S.LABEL), -1).to_numpy().astype(np.int64)


def _n_classes(names, labels, multilabel: bool, width: int | None) -> int:
    if names is not None:
        return len(names)
    if width is not None:
        return width
    if multilabel:
        return 1 + max((max(r) for r in labels if r), default=-1)
    return int(labels.max()) + 1 if len(labels) else 0


def is_multilabel(names: list[str]) -> bool:
    """A manifest is audited as multi-label when it has ``labels`` and no ``label``."""
    return S.LABEL not in names and S.LABELS in names


def make_plan(manifest: Manifest, cfg: LabelIssuesConfig, *, width: int | None = None) -> Plan:
    """Read ids, labels and splits; decide the audited and training rows; check labels."""
    names = manifest.schema.names
    multilabel = is_multilabel(names)
    label_col = S.LABELS if multilabel else S.LABEL
    if label_col not in names:
        raise ManifestError(
            f"{manifest.path}: no 'label' (int) or 'labels' (list<int>) column to audit; "
            f"it has {names}."
        )
    cols = [c for c in (S.ID, label_col, S.SPLIT, S.ERROR) if c in names]
    table = manifest.read(cols)
    source = str(manifest.path)
    ok, skipped = _usable(table, label_col)
    labels = _labels(table, multilabel)
    class_names = manifest.class_names
    n_classes = _n_classes(class_names, labels, multilabel, width)
    ids = table.column(S.ID).to_pylist()
    if multilabel:
        check_multilabels(labels, n_classes=n_classes, source=source, ids=ids)
    else:
        check_labels(np.where(ok, labels, 0), n_classes=n_classes, source=source, ids=ids)
    if cfg.audit_split is None:
        audit, train = np.flatnonzero(ok), None
        if len(audit) == 0:
            raise InputError(f"{source}: no labelled rows to audit.")
    else:
        audit = _split_rows(table, ok, cfg.audit_split, "audit split", source)
        train = _split_rows(table, ok, cfg.train_split, "train split", source)
    return Plan(
        n_rows=table.num_rows,
        ids=ids,
        multilabel=multilabel,
        labels=labels,
        class_names=class_names,
        n_classes=n_classes,
        audit=audit,
        train=train,
        skipped=skipped,
    )
