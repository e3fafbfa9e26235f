"""The report's sections as DuckDB queries: summary, label issues and pruning, each a dict or None.

Every section reads only the columns it needs and returns at most a bounded number of rows
(``LIMIT``/``QUALIFY`` in SQL), so a 10M-row manifest costs scans, not memory. A section whose
columns the manifest lacks returns None and the page leaves it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from curate.reporting.source import Source

#: prune_reason without its row-specific tail (``semdedup:dup_of=<id>`` -> ``semdedup:dup_of``).
REASON_SQL = "regexp_replace(coalesce(prune_reason, 'removed'), '=.*$', '')"


@dataclass(frozen=True)
class Limits:
    """How many rows each gallery shows (the page's thumbnail budget is their sum)."""

    label_issues: int = 240
    pairs: int = 20
    duplicate_groups: int = 24
    per_group: int = 5
    removed_per_reason: int = 24
    clusters: int = 24
    per_cluster: int = 8
    per_class: int = 8
    soft: int = 48
    map_rows: int = 50_000
    map_thumbs: int = 600
    check_pairs: int = 24
    check_worst: int = 24


def cards(src: Source, ids: list[str], extra: tuple[str, ...] = ()) -> dict[str, dict]:
    """The card columns (and ``extra`` ones) of the rows ``ids`` (one scan), by id."""
    if not ids:
        return {}
    cols = ", ".join(f'"{c}"' for c in [*src.card_columns(), *extra])
    rows = src.rows(f"SELECT {cols} FROM {{m}} WHERE id IN (SELECT unnest(?))", [list(ids)])
    return {r["id"]: r for r in rows}


def summary(src: Source) -> dict:
    """Rows, columns, errors by kind, steps from run.json and class counts."""
    info = src.run_info
    out: dict = {
        "rows": src.num_rows,
        "columns": [f.name for f in src.manifest.schema],
        "step": info.get("step"),
        "history": info.get("history", []),
        "counts": info.get("counts", {}),
        "timings": info.get("timings", {}),
    }
    if src.has("error"):
        out["errors"] = src.rows(
            "SELECT split_part(error, ':', 1) AS kind, count(*) AS n FROM {m} "
            "WHERE error IS NOT NULL GROUP BY kind ORDER BY n DESC, kind LIMIT 30"
        )
    if src.has("label"):
        out["classes"] = src.rows(
            "SELECT label, count(*) AS n FROM {m} GROUP BY label ORDER BY label NULLS LAST"
        )
    return out


def label_issues(src: Source, lim: Limits) -> dict | None:
    """The worst-ranked rows, the given->suggested pairs and the flagged rate per class."""
    if not src.has("label_quality"):
        return None
    cols = ", ".join(f'"{c}"' for c in src.card_columns())
    worst = src.rows(
        f"SELECT {cols} FROM {{m}} WHERE label_quality IS NOT NULL AND NOT isnan(label_quality) "
        "ORDER BY label_quality ASC, id LIMIT ?",
        [lim.label_issues],
    )
    out: dict = {
        "worst": worst,
        "audited": src.scalar("SELECT count(*) FROM {m} WHERE label_quality IS NOT NULL"),
    }
    if src.has("is_label_issue"):
        out["flagged"] = src.scalar("SELECT count(*) FROM {m} WHERE is_label_issue")
        if src.has("label"):
            out["per_class"] = src.rows(
                "SELECT label, count(*) AS n, count(*) FILTER (WHERE is_label_issue) AS flagged "
                "FROM {m} WHERE label_quality IS NOT NULL GROUP BY label ORDER BY label"
            )
        if src.has("label", "suggested_label"):
            out["pairs"] = src.rows(
                "SELECT label, suggested_label, count(*) AS n FROM {m} WHERE is_label_issue "
                "GROUP BY label, suggested_label ORDER BY n DESC, label, suggested_label LIMIT ?",
                [lim.pairs],
            )
    return out


def pruning(src: Source, lim: Limits) -> dict | None:
    """Kept vs removed by reason, the per-cluster table, duplicate groups, removed samples."""
    if not src.has("keep"):
        return None
    reason = REASON_SQL if src.has("prune_reason") else "'removed'"
    out: dict = {
        "method": src.run_info.get("config", {}).get("method"),
        "reasons": src.rows(
            f"SELECT CASE WHEN keep THEN 'kept' ELSE {reason} END AS reason, count(*) AS n "
            "FROM {m} GROUP BY ALL ORDER BY n DESC, reason"
        ),
        "per_cluster": _per_cluster(src),
        "groups": _duplicate_groups(src, lim) if src.has("prune_reason") else [],
    }
    out["removed"] = [
        {**row, "reason_kind": kind}
        for kind, row in sample_per_group(src, reason, lim.removed_per_reason, where="NOT keep")
    ]
    return out


def sample_per_group(
    src: Source, group: str, n: int, *, where: str = "true", by: str = "hash(id)", top=False
) -> list[tuple[object, dict]]:
    """Up to ``n`` card rows per value of the SQL expression ``group``: the lowest ``by``
    (highest with ``top``), as ``(group value, card)`` in group order.

    ``min_by(id, by, n)`` keeps an n-row heap per group, so memory does not grow with rows.
    """
    agg = "max_by" if top else "min_by"
    picks = src.rows(
        f"SELECT {group} AS g, {agg}(id, {by}, ?) AS ids FROM {{m}} WHERE {where} "
        "GROUP BY g ORDER BY g NULLS LAST",
        [n],
    )
    extra = ("centroid_sim",) if "centroid_sim" in by else ()
    info = cards(src, [i for p in picks for i in p["ids"]], extra)
    return [(p["g"], info[i]) for p in picks for i in p["ids"] if i in info]


def _per_cluster(src: Source) -> dict | None:
    """size / kept / quota per cluster: run.json's explain.per_cluster, else counted in SQL."""
    per = src.run_info.get("explain", {}).get("per_cluster")
    if per and "size" in per:
        keys = [k for k in ("cluster", "size", "kept", "quota", "complexity") if k in per]
        return {k: per[k] for k in keys}
    if not src.has("cluster"):
        return None
    rows = src.rows(
        "SELECT cluster, count(*) AS size, count(*) FILTER (WHERE keep) AS kept FROM {m} "
        "WHERE cluster IS NOT NULL GROUP BY cluster ORDER BY cluster"
    )
    return {k: [r[k] for r in rows] for k in ("cluster", "size", "kept")}


def _duplicate_groups(src: Source, lim: Limits) -> list[dict]:
    """The largest SemDeDup groups: the kept row, then its removed rows with their cosine."""
    cos = (
        "array_cosine_similarity(d.embedding, k.embedding)"
        if src.has("embedding")
        else "NULL::DOUBLE"
    )
    rows = src.rows(
        "WITH d AS (SELECT id, regexp_extract(prune_reason, 'dup_of=(.*)$', 1) AS rep"
        + (", embedding" if src.has("embedding") else "")
        + " FROM {m} WHERE prune_reason LIKE 'semdedup:dup_of=%'), "
        "g AS (SELECT rep, count(*) AS n FROM d GROUP BY rep ORDER BY n DESC, rep LIMIT ?), "
        f"r AS (SELECT d.rep, d.id, g.n, {cos} AS cos FROM d JOIN g USING (rep) "
        "LEFT JOIN {m} k ON k.id = d.rep) "
        "SELECT * FROM r QUALIFY row_number() OVER (PARTITION BY rep ORDER BY cos DESC, id) <= ? "
        "ORDER BY n DESC, rep, cos DESC, id",
        [lim.duplicate_groups, lim.per_group],
    )
    info = cards(src, sorted({r["rep"] for r in rows} | {r["id"] for r in rows}))
    groups: dict[str, dict] = {}
    for r in rows:
        g = groups.setdefault(r["rep"], {"kept": info.get(r["rep"]), "n": r["n"], "removed": []})
        card = dict(info.get(r["id"], {"id": r["id"]}))
        card["cos"] = r["cos"]
        g["removed"].append(card)
    return [g for g in groups.values() if g["kept"] is not None]
