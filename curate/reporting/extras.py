"""Sections for later steps' columns: soft labels, multi-labels, images per class, evaluation."""

from __future__ import annotations

import json
import os
from pathlib import Path

from curate.errors import InputError
from curate.reporting.sections import Limits, sample_per_group
from curate.reporting.source import Source


def _cols(src: Source, *extra: str) -> str:
    return ", ".join(f'"{c}"' for c in [*src.card_columns(), *extra])


def soft_labels(src: Source, lim: Limits) -> dict | None:
    """relabel/reinforce soft labels: rows whose top soft class disagrees with the label first."""
    if not src.has("soft_classes", "soft_probs"):
        return None
    disagree = "soft_classes[1] IS DISTINCT FROM label" if src.has("label") else "false"
    rows = src.rows(
        f"SELECT {_cols(src, 'soft_classes', 'soft_probs')} FROM {{m}} "
        f"WHERE soft_classes IS NOT NULL ORDER BY ({disagree}) DESC, hash(id), id LIMIT ?",
        [lim.soft],
    )
    for r in rows:  # float16 -> float, arrays -> lists (JSON)
        r["soft_classes"] = [int(c) for c in (r["soft_classes"] or [])]
        r["soft_probs"] = [round(float(p), 3) for p in (r["soft_probs"] or [])]
    stats = src.rows(
        f"SELECT count(*) AS n, avg(soft_probs[1]) AS top1_mean, "
        f"count(*) FILTER (WHERE {disagree}) AS disagree FROM {{m}} WHERE soft_classes IS NOT NULL"
    )[0]
    return {"rows": rows, **stats}


def multi_labels(src: Source, lim: Limits) -> dict | None:
    """The label-set sizes, and a sample of rows with more than one label."""
    if not src.has("labels"):
        return None
    sizes = src.rows(
        "SELECT len(labels) AS k, count(*) AS n FROM {m} GROUP BY k ORDER BY k NULLS LAST"
    )
    rows = src.rows(
        f"SELECT {_cols(src, 'labels')} FROM {{m}} WHERE len(labels) > 1 "
        "ORDER BY hash(id), id LIMIT ?",
        [lim.soft],
    )
    for r in rows:
        r["labels"] = [int(c) for c in r["labels"]]
    return {"sizes": sizes, "rows": rows}


def per_class(src: Source, lim: Limits) -> dict | None:
    """A few rows of every class (the synthetic images themselves for a distilled manifest)."""
    if not src.has("label") or not (src.columns & {"image", "path"}):
        return None
    k = src.scalar("SELECT count(DISTINCT label) FROM {m}") or 1
    per = max(1, min(lim.per_class, lim.label_issues // k))  # many classes: fewer rows each
    rows = [row for _, row in sample_per_group(src, "label", per)][: lim.label_issues]
    synthetic = "distill" in str(src.run_info.get("step", ""))
    return {"rows": rows, "synthetic": synthetic}


def read_evaluation(path: str | os.PathLike | None) -> dict | None:
    """``curate evaluate``'s JSON (``{"results": [...]}``), checked for its table's columns."""
    if path is None:
        return None
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(
            f"{p}: not a readable evaluation JSON ({exc}); pass curate evaluate's result.json."
        ) from exc
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise InputError(
            f'{p}: expected {{"results": [{{"subset": ..., "accuracy_mean": ...}}, ...]}} '
            "as curate evaluate writes it."
        )
    return {"results": results, "path": str(p)}
