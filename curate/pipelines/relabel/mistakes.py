"""``mistakes``: a model's test predictions scored against single labels and ReaL-style label sets.

ReaL ("Are we done with ImageNet?") counts a prediction correct when it is in the image's
label set, and skips images whose set is empty. Each row's outcome is one ``mistake_kind``:

- ``correct``: the prediction is the given label;
- ``in_label_set``: not the given label but in the relabeled set ``labels``: not a mistake;
- ``label_error``: outside the set, and label-issues flagged the given label
  (``is_label_issue``): the label is the likely error;
- ``mistake``: everything else, the model's true mistakes.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from curate.config import resolve_config
from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest
from curate.manifests.runinfo import make_run_info
from curate.manifests.writer import default_out, prepare_output

KINDS = ("correct", "in_label_set", "label_error", "mistake")
ISSUE = "is_label_issue"


@dataclass(frozen=True)
class MistakesConfig:
    """Options of :func:`mistakes` besides the predictions themselves.

    Attributes
    ----------
    model
        Instead of ``pred_probs``: a teacher spec (``classifier:timm:<name>=<weights>``) run
        on the manifest's images.
    image_size
        The input side for ``model`` (default: the teacher's own choice from the images).
    device
        For ``model``: ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
    """

    model: str | None = None
    image_size: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.image_size is not None and self.image_size < 8:
            raise ValueError(f"image_size={self.image_size}: must be at least 8 pixels")


def _model_pred_probs(m: Manifest, spec: str, *, image_size: int | None, device: str):
    """Predicted probabilities of a teacher spec (your classifier) on every row's image."""
    from curate.pipelines.teachers import build_teacher, decode_table

    teacher = build_teacher(spec, m, image_size=image_size, device=device)
    base = str(m.path.parent if m.path.is_file() else m.path)
    cols = [c for c in (S.ID, S.IMAGE, S.PATH, S.URL) if c in m.schema.names]
    parts = []
    for batch in m.iter_batches(cols, batch_size=64):
        t = pa.Table.from_batches([batch])
        x, errors = decode_table(t, teacher.image_size, base_dir=base)
        folds = teacher.folds_for(t.column(S.ID).to_pylist())
        p = teacher.logits(x, folds=folds).softmax(dim=1).cpu().numpy()
        p[[e is not None for e in errors]] = np.nan
        parts.append(p)
    return np.concatenate(parts)


def _label_sets(m: Manifest) -> list[list[int] | None]:
    if S.LABELS not in m.schema.names:
        raise ManifestError(
            f"{m.path}: no 'labels' column (the multi-label sets); run `curate relabel` on this "
            "manifest first, or pass one that has label sets (e.g. ReaL's)."
        )
    return m.read([S.LABELS]).column(0).to_pylist()


def classify(pred, label, labels, issue) -> str | None:
    """The ``mistake_kind`` of one row (None when it has no label or no prediction)."""
    if pred is None or label is None:
        return None
    if pred == label:
        return "correct"
    if labels and pred in labels:
        return "in_label_set"
    return "label_error" if issue else "mistake"


def _summary(kinds: list, real: list, has_issues: bool) -> dict[str, Any]:
    counts = Counter(k for k in kinds if k is not None)
    n = sum(counts.values())
    scored = [r for r in real if r is not None]
    errors = n - counts["correct"]
    return {
        "rows_scored": n,
        "accuracy": counts["correct"] / n if n else None,
        "real_rows": len(scored),
        "real_accuracy": sum(scored) / len(scored) if scored else None,
        "counts": {k: counts.get(k, 0) for k in KINDS},
        "errors": errors,
        "errors_not_mistakes": counts["in_label_set"] / errors if errors else None,
        "label_issues_used": has_issues,
    }


def mistakes(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: MistakesConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
    pred_probs: np.ndarray | str | os.PathLike | None = None,
    **options: Any,
) -> Manifest:
    """Score a model's predictions on ``manifest`` (a relabeled test manifest).

    Parameters
    ----------
    manifest
        Needs ``label`` and ``labels`` (from ``curate relabel``); ``is_label_issue`` (from
        ``curate label-issues``) splits label errors out of the model's mistakes.
    out
        Where the manifest is written with ``predicted_label``, ``correct``, ``real_correct``
        and ``mistake_kind`` added; default ``NAME-mistakes`` beside the input.
    pred_probs
        ``(rows, classes)`` probabilities: an array, ``.npy``, or ``PARQUET[:column]``; or
        pass ``model=`` instead.
    config, **options
        A :class:`MistakesConfig`, or its fields as keywords (``model``, ``image_size``,
        ``device``).
    engine, ray_address, progress, overwrite
        As in every step: the engine that writes ``out``, a progress mode, replace ``out``.

    Returns
    -------
    Manifest
        The output; ``run_info["counts"]`` is the summary: ``accuracy`` (single label),
        ``real_accuracy`` over ``real_rows`` rows with a label set, ``counts`` by kind.
    """
    from curate.engines import check_engine, run
    from curate.engines.columns import AttachColumns
    from curate.engines.options import progress_mode
    from curate.pipelines.label_issues.sources import PredProbsSource

    cfg = resolve_config(MistakesConfig, config, options, step="mistakes")
    check_engine(engine)
    progress = progress_mode(progress)
    m = open_manifest(manifest).validate(required=(S.ID, S.LABEL))
    out = default_out(m.path, "mistakes") if out is None else out
    if (pred_probs is None) == (cfg.model is None):
        raise InputError("mistakes: pass exactly one of --pred-probs and --model.")
    sets = _label_sets(m)
    if Path(out).exists() and not overwrite:
        prepare_output(out)  # raises before any model runs
    if cfg.model is not None:
        pp = _model_pred_probs(m, cfg.model, image_size=cfg.image_size, device=cfg.device)
    else:
        pp = np.asarray(PredProbsSource(pred_probs).load(), dtype=np.float32)
    if pp.ndim != 2 or len(pp) != m.num_rows:
        raise InputError(
            f"pred_probs has shape {pp.shape}; {m.path} has {m.num_rows} rows: one row of "
            "class probabilities per manifest row, in manifest order."
        )
    columns, summary = _score(m, pp, sets)
    given = pred_probs if isinstance(pred_probs, str | os.PathLike) else "array"
    record = {**asdict(cfg), "pred_probs": None if pred_probs is None else str(given)}
    info = make_run_info("mistakes", config=record, inputs={"manifest": m.path}, counts=summary)
    step = AttachColumns("mistakes", columns)
    return run(step, m, out, engine=engine, ray_address=ray_address, overwrite=overwrite,
               resume=False, progress=progress, run_info=info)  # fmt: skip


def _score(m: Manifest, pp: np.ndarray, sets: list) -> tuple[dict[str, pa.Array], dict]:
    """The per-row columns and the summary of predictions ``pp`` against ``m``'s labels."""
    cols = m.read([S.LABEL] + ([ISSUE] if ISSUE in m.schema.names else []))
    labels = cols.column(S.LABEL).to_pylist()
    issues = cols.column(ISSUE).to_pylist() if ISSUE in cols.column_names else [None] * len(sets)
    valid = np.isfinite(pp).all(axis=1)
    pred = [int(p) if v else None for p, v in zip(pp.argmax(axis=1), valid, strict=True)]
    kinds = [classify(*row) for row in zip(pred, labels, sets, issues, strict=True)]
    real = [None if p is None or not s else p in s for p, s in zip(pred, sets, strict=True)]
    columns = {
        "predicted_label": pa.array(pred, pa.int32()),
        "correct": pa.array([None if k is None else k == "correct" for k in kinds], pa.bool_()),
        "real_correct": pa.array(real, pa.bool_()),
        "mistake_kind": pa.array(kinds, pa.string()),
    }
    return columns, _summary(kinds, real, ISSUE in cols.column_names)
