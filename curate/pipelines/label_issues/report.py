"""Label-issue outputs: the per-row columns, the given->suggested class pairs, the issues file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.manifests.io import Manifest, write_manifest
from curate.pipelines.label_issues.plan import Plan
from curate.pipelines.label_issues.ranking import Ranking

QUALITY, ISSUE, SUGGESTED, CONFIDENCE = (
    "label_quality",
    "is_label_issue",
    "suggested_label",
    "suggested_confidence",
)
SUGGESTED_MULTI = "suggested_labels"
PAIRS_KEY = b"curate.label_pairs"


def _scatter(values, rows: np.ndarray, n: int, type_: pa.DataType) -> pa.Array:
    """A length-``n`` array holding ``values`` at ``rows`` and nulls elsewhere."""
    if isinstance(values, list):
        full = [None] * n
        for r, v in zip(rows.tolist(), values, strict=True):
            full[r] = v
        return pa.array(full, type=type_)
    data = np.zeros(n, dtype=type_.to_pandas_dtype())
    data[rows] = values
    mask = np.ones(n, dtype=bool)
    mask[rows] = False
    return pa.array(data, type=type_, mask=mask)


def result_columns(plan: Plan, ranking: Ranking) -> dict[str, pa.Array]:
    """The new columns over all manifest rows (null where a row was not audited)."""
    n, rows = plan.n_rows, plan.audit
    suggested_name = SUGGESTED_MULTI if plan.multilabel else SUGGESTED
    suggested_type = pa.list_(pa.int64()) if plan.multilabel else pa.int64()
    return {
        QUALITY: _scatter(ranking.label_quality, rows, n, pa.float32()),
        ISSUE: _scatter(ranking.is_label_issue, rows, n, pa.bool_()),
        suggested_name: _scatter(ranking.suggested_label, rows, n, suggested_type),
        CONFIDENCE: _scatter(ranking.suggested_confidence, rows, n, pa.float32()),
    }


def pair_table(plan: Plan, ranking: Ranking) -> list[dict]:
    """How often each given class was flagged with each suggested class, most frequent first."""
    flagged = np.flatnonzero(ranking.is_label_issue)
    given = plan.labels_at(plan.audit[flagged])
    if plan.multilabel:
        keys = [
            (tuple(g), tuple(ranking.suggested_label[i]))
            for g, i in zip(given, flagged, strict=True)
        ]
        counts = Counter(keys)
        return [
            {
                "given": list(g),
                "given_name": [plan.name(k) for k in g],
                "suggested": list(s),
                "suggested_name": [plan.name(k) for k in s],
                "count": c,
            }
            for (g, s), c in counts.most_common()
        ]
    suggested = ranking.suggested_label[flagged].tolist()
    counts = Counter(zip(np.asarray(given).tolist(), suggested, strict=True))
    return [
        {
            "given": g,
            "given_name": plan.name(g),
            "suggested": s,
            "suggested_name": plan.name(s),
            "count": c,
        }
        for (g, s), c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def format_pairs(pairs: list[dict], top: int = 15) -> str:
    """A plain-text table of the most frequent given -> suggested pairs."""
    if not pairs:
        return "no label issues flagged"
    lines = ["count  given -> suggested"]
    for p in pairs[:top]:
        lines.append(f"{p['count']:>5}  {p['given_name']} -> {p['suggested_name']}")
    if len(pairs) > top:
        lines.append(f"  ... {len(pairs) - top} more pairs (all in run.json)")
    return "\n".join(lines)


def write_annotated(
    base: Manifest,
    columns: dict[str, pa.Array],
    out: str | Path,
    *,
    run_info,
    metadata: dict[bytes, bytes] | None = None,
    **run_options,
) -> Manifest:
    """Write the base manifest to ``out`` with the new columns (an engine run); ``metadata``
    joins the output's schema metadata; ``run_options`` go to :func:`curate.engines.run`
    (``engine``, ``ray_address``, ``overwrite``, ``progress``)."""
    from curate.engines import run
    from curate.engines.columns import AttachColumns

    step = AttachColumns("label-issues", columns, metadata=metadata)
    return run(step, base, out, resume=False, run_info=run_info, **run_options)


def write_issues(annotated: Manifest, out: str | Path, *, overwrite: bool, run_info) -> Path:
    """Write only the flagged rows of the annotated output, worst (lowest ``label_quality``)
    first."""
    parts = [
        batch.filter(pc.fill_null(batch.column(ISSUE), False)) for batch in annotated.iter_batches()
    ]
    issues = pa.Table.from_batches(parts, schema=annotated.schema)
    return write_manifest(
        issues.sort_by([(QUALITY, "ascending")]), out, overwrite=overwrite, run_info=run_info
    )
