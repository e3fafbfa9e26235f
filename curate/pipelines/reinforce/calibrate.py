"""Record a reinforced manifest's held-out rows: which split, for which teacher, and how
calibrated that teacher is on their views (its temperature there)."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import numpy as np

from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest
from curate.train.calibration import CALIBRATION_JSON, fit_temperature

SOFT_CLASSES, SOFT_PROBS = "soft_classes", "soft_probs"
#: Fewer held-out rows than this fit a temperature with a warning (it is noisy).
MIN_CALIBRATION_ROWS = 50


class CalibrationWarning(UserWarning):
    """The temperature was fit, but on too few rows or on rows the teacher may have seen."""


def teacher_sha256(directory: str | os.PathLike) -> str:
    """A fingerprint of a saved teacher (``teacher/`` beside a reinforced manifest): its
    description files and the values of its fitted arrays (not the ``.npz`` containers, whose
    zip timestamps change from save to save), 16 hex digits."""
    h = hashlib.sha256()
    root = Path(directory)
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(root)).encode() + b"\0")
        if f.suffix == ".npz":
            with np.load(f) as z:
                for name in sorted(z.files):
                    h.update(name.encode() + b"\0" + np.ascontiguousarray(z[name]).tobytes())
        else:
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _held_out_views(m: Manifest, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Stored top-k classes and probabilities of every view of the labelled ``split`` rows,
    with each view's label, flattened to ``(V, k)``; and the number of rows."""
    if S.SPLIT not in m.schema.names:
        raise InputError(f"{m.path}: no 'split' column, so no held-out rows named {split!r}.")
    t = m.read([S.LABEL, S.SPLIT, SOFT_CLASSES, SOFT_PROBS])
    ok = np.asarray(t.column(S.SPLIT).to_pylist(), dtype=object) == split
    ok &= ~np.asarray(t.column(SOFT_PROBS).is_null()) & np.asarray(t.column(S.LABEL).is_valid())
    t = t.filter(ok)
    k = int(m.schema.field(SOFT_CLASSES).metadata[b"curate.top_k"])

    def flat(name: str, dtype) -> np.ndarray:
        values = t.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return values.astype(dtype).reshape(-1, k)

    classes, probs = flat(SOFT_CLASSES, np.int64), flat(SOFT_PROBS, np.float32)
    augs = len(classes) // max(t.num_rows, 1)
    labels = np.repeat(t.column(S.LABEL).to_numpy(zero_copy_only=False), augs)
    return classes, probs, labels, t.num_rows


def calibrate(
    manifest: str | os.PathLike | Manifest, *, split: str = "val", held_out: bool | None = None
) -> dict:
    """Write ``calibration.json`` beside a reinforced manifest: its held-out ``split``, the
    teacher's hash, and the teacher's calibration on those rows' stored views.

    The held-out rows are the ones a student's temperature is later fit on
    (:func:`curate.train.calibration.calibrate_student`); train the student on the others
    (``ReplayDataset(..., split="train")``). No teacher pass is needed: the record is read
    from the stored soft labels.

    Parameters
    ----------
    manifest
        A ``curate reinforce`` output (a directory) whose ``split`` rows are labelled and were
        not used to train the teacher.
    split
        The held-out rows.
    held_out
        Whether the teacher is known not to have seen those rows (recorded; False warns).

    Returns
    -------
    dict
        What ``calibration.json`` holds: the split and its row count, whether it is held
        out, the teacher's hash, and ``teacher_on_views``: the temperature that calibrates the
        teacher on the held-out views (above 1: over-confident there) with the views' NLL,
        ECE, accuracy and mean confidence before and after it.
    """
    m = open_manifest(manifest)
    info = m.run_info or {}
    if SOFT_PROBS not in m.schema.names or "teacher_sha256" not in info:
        raise ManifestError(
            f"{m.path}: not a reinforced manifest with a recorded teacher hash; run "
            "`curate reinforce` on it (again) first."
        )
    classes, probs, labels, rows = _held_out_views(m, split)
    if rows == 0:
        raise InputError(
            f"{m.path}: no labelled, reinforced rows with split == {split!r} to calibrate on; "
            "reinforce held-out rows under that split, or name another."
        )
    if rows < MIN_CALIBRATION_ROWS:
        warnings.warn(
            f"{m.path}: only {rows} held-out rows (split {split!r}) to calibrate on (at least "
            f"{MIN_CALIBRATION_ROWS} advised): temperatures fit on them will be noisy.",
            CalibrationWarning,
            stacklevel=2,
        )
    if held_out is False:
        warnings.warn(
            f"{m.path}: the teacher's head was also fit on the rows of split {split!r}, so "
            "they are not held out from it; fit it on another split (teacher_split='train').",
            CalibrationWarning,
            stacklevel=2,
        )
    num_classes = len(m.class_names or []) or int(max(classes.max(), labels.max())) + 1
    temperature, report = fit_temperature(classes, probs, labels, num_classes)
    cal = {
        "split": split,
        "rows": rows,
        "held_out": held_out,
        "teacher_sha256": info["teacher_sha256"],
        "teacher_on_views": {"temperature": temperature, **report},
    }
    path = m.path / CALIBRATION_JSON
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(cal, indent=2))
    os.replace(tmp, path)
    return cal
