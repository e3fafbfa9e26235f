"""Check predicted probabilities and given labels before any issue finding (errors name rows)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from curate.errors import InputError

#: Rows whose probabilities sum further than this from 1 are renormalised (with a warning).
SUM_TOLERANCE = 1e-4
_SHOW = 5  # rows named in an error message


class RenormalisedWarning(UserWarning):
    """Some rows of ``pred_probs`` did not sum to 1 and were divided by their sum."""


def _name_rows(rows: np.ndarray, ids: Sequence[str] | None, offset: int = 0) -> str:
    shown = rows[:_SHOW]
    if ids is not None:
        names = ", ".join(f"{int(r) + offset} (id {ids[int(r)]!r})" for r in shown)
    else:
        names = ", ".join(str(int(r) + offset) for r in shown)
    more = f" and {len(rows) - _SHOW} more" if len(rows) > _SHOW else ""
    return f"row(s) {names}{more}"


def check_shape(shape: tuple[int, ...], *, n_rows: int, n_classes: int | None, source: str) -> None:
    """Raise :class:`InputError` if ``pred_probs`` is not ``(n_rows, n_classes)``."""
    if len(shape) != 2:
        raise InputError(f"{source}: pred_probs must be 2-D (rows, classes), got shape {shape}.")
    if shape[0] != n_rows:
        raise InputError(
            f"{source}: pred_probs has {shape[0]} rows but the manifest has {n_rows}; "
            "they must be in the manifest's row order, one row per sample."
        )
    if n_classes is not None and shape[1] != n_classes:
        raise InputError(
            f"{source}: pred_probs has {shape[1]} columns but the manifest has {n_classes} "
            "classes; one column per class, in the order of the manifest's class names."
        )


def check_chunk(
    chunk: np.ndarray,
    *,
    offset: int = 0,
    source: str = "pred_probs",
    ids: Sequence[str] | None = None,
    multilabel: bool = False,
) -> tuple[np.ndarray, int]:
    """Validate one chunk of rows; return it (renormalised if needed) and how many rows changed.

    NaN, infinite or negative entries raise :class:`InputError` naming the rows. Rows that do
    not sum to 1 (multi-class only) are divided by their sum; the caller warns once.
    """
    if not np.issubdtype(chunk.dtype, np.floating):
        chunk = chunk.astype(np.float32)
    bad = ~np.isfinite(chunk).all(axis=1) | (chunk < 0).any(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InputError(
            f"{source}: {_name_rows(rows, ids, offset)} hold NaN, infinite or negative "
            "probabilities; fix the model output (e.g. apply softmax) before auditing labels."
        )
    if multilabel:
        over = (chunk > 1 + SUM_TOLERANCE).any(axis=1)
        if over.any():
            raise InputError(
                f"{source}: {_name_rows(np.flatnonzero(over), ids, offset)} hold probabilities "
                "above 1; multi-label pred_probs are per-class sigmoid outputs in [0, 1]."
            )
        return chunk, 0
    sums = chunk.sum(axis=1, dtype=np.float64)
    off = np.abs(sums - 1.0) > SUM_TOLERANCE
    if not off.any():
        return chunk, 0
    if (sums[off] <= 0).any():
        rows = np.flatnonzero(off & (sums <= 0))
        raise InputError(f"{source}: {_name_rows(rows, ids, offset)} are all zeros.")
    chunk = np.array(chunk, copy=True)
    chunk[off] = (chunk[off] / sums[off, None]).astype(chunk.dtype)
    return chunk, int(off.sum())


def warn_renormalised(count: int, total: int, source: str) -> None:
    if count:
        warnings.warn(
            f"{source}: {count} of {total} rows of pred_probs did not sum to 1 (within "
            f"{SUM_TOLERANCE}) and were renormalised.",
            RenormalisedWarning,
            stacklevel=3,
        )


def check_pred_probs(
    pred_probs: np.ndarray,
    *,
    n_rows: int,
    n_classes: int | None,
    source: str = "pred_probs",
    ids: Sequence[str] | None = None,
    multilabel: bool = False,
) -> np.ndarray:
    """Validate an in-memory ``pred_probs`` array; return it, renormalised where needed."""
    pred_probs = np.asarray(pred_probs)
    check_shape(pred_probs.shape, n_rows=n_rows, n_classes=n_classes, source=source)
    out, count = check_chunk(pred_probs, source=source, ids=ids, multilabel=multilabel)
    warn_renormalised(count, n_rows, source)
    return out


def check_labels(
    labels: np.ndarray, *, n_classes: int, source: str, ids: Sequence[str] | None = None
) -> None:
    """Raise :class:`InputError` if a given label is outside ``0..n_classes-1``."""
    bad = (labels < 0) | (labels >= n_classes)
    if bad.any():
        rows = np.flatnonzero(bad)
        vals = sorted({int(v) for v in labels[rows[:_SHOW]]})
        raise InputError(
            f"{source}: {_name_rows(rows, ids)} have label(s) {vals} outside the "
            f"{n_classes} classes (0..{n_classes - 1}); fix the labels or the class names "
            "in the schema metadata (curate.class_names)."
        )


def check_multilabels(
    labels: list[list[int]], *, n_classes: int, source: str, ids: Sequence[str] | None = None
) -> None:
    """Like :func:`check_labels` for a ``labels`` list column."""
    bad = [i for i, row in enumerate(labels) if any(v < 0 or v >= n_classes for v in row)]
    if bad:
        raise InputError(
            f"{source}: {_name_rows(np.asarray(bad), ids)} have labels outside the "
            f"{n_classes} classes (0..{n_classes - 1}); fix the labels or the class names."
        )
