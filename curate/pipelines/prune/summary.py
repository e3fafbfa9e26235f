"""run.json's view of a prune: removals counted by reason, and the per-cluster table."""

from __future__ import annotations

import numpy as np

from curate.pipelines.prune.base import reason_text


def counts(final: list[dict], *, method: str, rows: int, valid: int, target: int) -> dict:
    """Rows, valid, target, kept and removed (by reason) from the per-range counts."""
    by_code: dict[int, int] = {}
    kept = 0
    for f in final:
        kept += f["kept"]
        for code, n in f["reasons"].items():
            by_code[int(code)] = by_code.get(int(code), 0) + n
    reasons = {}
    for code in sorted(by_code):
        text = reason_text(code, method) or "unknown"
        reasons[text.removesuffix("=")] = by_code[code]
    return {
        "rows": rows,
        "valid": valid,
        "invalid": rows - valid,
        "target": target,
        "kept": kept,
        "removed": rows - kept,
        "removed_by_reason": reasons,
    }


def explain(method_explain: dict, final: list[dict], sizes: np.ndarray, k: int) -> dict:
    """The method's explain table spread onto every cluster, with sizes and kept counts."""
    out = dict(method_explain)
    kept = np.zeros(k, np.int64)
    for f in final:
        kept += np.asarray(f["kept_per_cluster"], np.int64)
    per = {"cluster": list(range(k)), "size": np.asarray(sizes).tolist(), "kept": kept.tolist()}
    extra = out.pop("per_cluster", {})
    if "cluster" in extra:  # sparse table (semdedup): spread onto all clusters
        groups = np.zeros(k, np.int64)
        groups[extra["cluster"]] = extra["groups"]
        extra = {"duplicate_groups": groups.tolist()}
    out["per_cluster"] = {**per, **extra}
    out["k"] = k
    return out
