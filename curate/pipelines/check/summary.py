"""What a check found, for people and CI: counts per issue, the worst rows of each, and
whether any issue named by ``--fail-on`` was found."""

from __future__ import annotations

import os

from curate.manifests.io import Manifest, open_manifest
from curate.pipelines.check.config import parse_issues
from curate.pipelines.check.links import FLAGS, UNDECODABLE

#: How each issue's rows are ranked, worst first: (score column, SQL order, link column).
RANKING: dict[str, tuple[str, str, str | None]] = {
    "exact_dup": ("phash_distance", "ASC", "exact_dup_of"),
    "phash_dup": ("phash_distance", "ASC", "phash_dup_of"),
    "near_dup": ("near_dup_sim", "DESC", "near_dup_of"),
    "leak": ("leak_sim", "DESC", "leak_of"),
    "outlier": ("outlier_score", "DESC", None),
    "dark": ("dark_score", "ASC", None),
    "light": ("light_score", "ASC", None),
    "blurry": ("blurry_score", "ASC", None),
    "low_information": ("low_information_score", "ASC", None),
    "odd_size": ("odd_size_score", "ASC", None),
    "odd_aspect_ratio": ("odd_aspect_ratio_score", "ASC", None),
    "grayscale": ("grayscale_score", "ASC", None),
}


def issue_counts(m: Manifest) -> dict[str, int]:
    """Rows flagged per issue (from run.json's counts; the issues this run checked)."""
    counts = (m.run_info or {}).get("counts", {})
    names = [*FLAGS, UNDECODABLE]
    return {k: int(counts[k]) for k in names if k in counts}


def worst(m: Manifest, issue: str, n: int = 3) -> list[dict]:
    """The ``n`` worst flagged rows of ``issue``: id, score and the row it links to."""
    from curate.manifests.catalog import sql

    score, order, link = RANKING[issue]
    cols = set(m.schema.names)
    if FLAGS[issue] not in cols:
        return []
    picks = ["id", f'"{score}" AS score' if score in cols else "NULL AS score"]
    picks.append(f'"{link}" AS of' if link else "NULL AS of")
    if issue == "leak":
        picks.append("leak_by AS by")
    table = sql(
        f'SELECT {", ".join(picks)} FROM m WHERE "{FLAGS[issue]}" '
        f"ORDER BY score {order} NULLS LAST, id LIMIT {int(n)}",
        m=m,
    )
    return table.to_pylist()


def summarize(manifest: str | os.PathLike | Manifest, n_worst: int = 3) -> dict:
    """Counts per issue, the worst rows of each flagged issue, and the plan's notes."""
    m = open_manifest(manifest)
    info = m.run_info or {}
    counts = issue_counts(m)
    return {
        "rows": m.num_rows,
        "counts": counts,
        "worst": {k: worst(m, k, n_worst) for k, v in counts.items() if v and k in RANKING},
        "notes": info.get("plan", {}).get("notes", []),
        "thresholds": info.get("thresholds", {}),
    }


def issues_found(manifest: str | os.PathLike | Manifest, names) -> dict[str, int]:
    """The issues among ``names`` (``"leak,exact_dup"``, a list, or ``"any"``) that flagged at
    least one row, with their counts: what ``--fail-on`` exits non-zero for."""
    counts = issue_counts(open_manifest(manifest))
    return {k: counts[k] for k in parse_issues(names) if counts.get(k, 0) > 0}
