"""The report's Check section (``curate check``'s columns): counts per issue, leak and
duplicate pairs side by side, and the worst rows of each image issue and of the outliers.

Every part is a bounded DuckDB query, like the other sections; the other manifest of an
``--against`` run (named in ``leak_source``) is opened for its side of the leak pairs.
"""

from __future__ import annotations

from curate.reporting.sections import Limits, cards, sample_per_group
from curate.reporting.source import Source
from curate.reporting.thumbs import thumb_from_row

#: Image issues shown as galleries, worst first: (flag, score, SQL order).
GALLERIES = {
    "dark": ("is_dark", "dark_score", "ASC"),
    "light": ("is_light", "light_score", "ASC"),
    "blurry": ("is_blurry", "blurry_score", "ASC"),
    "low_information": ("is_low_information", "low_information_score", "ASC"),
    "odd_size": ("is_odd_size", "odd_size_score", "ASC"),
    "odd_aspect_ratio": ("is_odd_aspect_ratio", "odd_aspect_ratio_score", "ASC"),
    "grayscale": ("is_grayscale", "grayscale_score", "ASC"),
    "outlier": ("is_outlier", "outlier_score", "DESC"),
}
#: Duplicate pairs: (flag, where, score, SQL order, link column).
PAIRS = {
    "exact_dup": ("is_exact_dup", "true", "phash_distance", "ASC", "exact_dup_of"),
    "phash_dup": ("is_phash_dup", "NOT coalesce(is_exact_dup, false)", "phash_distance", "ASC",
                  "phash_dup_of"),
    "near_dup": ("is_near_dup", "NOT coalesce(is_exact_dup, false)", "near_dup_sim", "DESC",
                 "near_dup_of"),
}  # fmt: skip
ISSUES = (
    "exact_dup", "phash_dup", "near_dup", "leak", "outlier", "dark", "light", "blurry",
    "low_information", "odd_size", "odd_aspect_ratio", "grayscale",
)  # fmt: skip


def _counts(src: Source) -> list[dict]:
    flags = [(k, f"is_{k}") for k in ISSUES if src.has(f"is_{k}")]
    parts = [f'count(*) FILTER (WHERE "{col}") AS "{k}"' for k, col in flags]
    parts.append(
        "count(*) FILTER (WHERE list_contains(check_issues, 'undecodable')) AS undecodable"
    )
    row = src.rows(f"SELECT {', '.join(parts)} FROM {{m}}")[0]
    return [{"issue": k, "n": v} for k, v in row.items()]


def _pairs(src: Source, flag: str, where: str, score: str, order: str, link: str, n: int):
    if not src.has(flag, link):
        return None
    key = f'"{score}"' if src.has(score) else "hash(id)"
    rows = src.rows(
        f'SELECT id, "{link}" AS other, {key} AS score FROM {{m}} WHERE "{flag}" AND {where} '
        f"ORDER BY score {order} NULLS LAST, id LIMIT ?",
        [n],
    )
    info = cards(src, sorted({r["id"] for r in rows} | {r["other"] for r in rows}))
    return [
        {"a": info[r["id"]], "b": info.get(r["other"], {"id": r["other"]}), "score": r["score"]}
        for r in rows
        if r["id"] in info
    ]


def _against_side(src: Source, paths: list[str], ids: list[str]) -> dict:
    """Labels and thumbnails of the other manifest's rows in the leak pairs, by id (not as
    cards of this manifest: their ids may collide with its own)."""
    from curate.reporting.source import open_sources

    out: dict = {}
    for path in paths:
        try:
            (other,) = open_sources([path])
        except Exception as exc:  # moved or deleted since the check: say so on the page
            return {"error": f"{path}: {exc}"}
        cols = [c for c in ("id", "label", "image", "path", "url", "error") if other.has(c)]
        rows = other.rows(
            f"SELECT {', '.join(cols)} FROM {{m}} WHERE id IN (SELECT unnest(?))", [ids]
        )
        for r in rows:
            thumb = thumb_from_row(r).as_json()
            out[r["id"]] = {"label": r.get("label"), "error": r.get("error"), "thumb": thumb}
        other.con.close()
    return out


def _leaks(src: Source, n: int) -> dict | None:
    if not src.has("is_leak", "leak_of"):
        return None
    picks = sample_per_group(src, "leak_by", n, where="is_leak", by="leak_sim", top=True)
    extra = cards(src, [p["id"] for _, p in picks], ("leak_of", "leak_sim", "leak_source"))
    pairs, against, other_ids = [], set(), []
    for by, card in picks:
        row = extra[card["id"]]
        source = row["leak_source"] or ""
        pair = {"a": card, "by": by, "sim": row["leak_sim"], "source": source, "of": row["leak_of"]}
        if source.startswith("against:"):
            against.add(source.removeprefix("against:"))
            other_ids.append(row["leak_of"])
        pairs.append(pair)
    mine = cards(src, [p["of"] for p in pairs if not p["source"].startswith("against:")])
    for p in pairs:
        p["b"] = mine.get(p["of"])
    other = _against_side(src, sorted(against), other_ids) if against else {}
    by = src.rows(
        "SELECT leak_by AS signal, leak_source AS source, count(*) AS n FROM {m} WHERE is_leak "
        "GROUP BY ALL ORDER BY n DESC, signal, source"
    )
    checked = src.scalar("SELECT count(*) FROM {m} WHERE is_leak IS NOT NULL")
    return {"pairs": pairs, "other": other, "by": by, "checked": checked}


def check_section(src: Source, lim: Limits) -> dict | None:
    """The Check section, or None for a manifest ``curate check`` did not write."""
    if not src.has("check_issues"):
        return None
    out: dict = {
        "counts": _counts(src),
        "notes": src.run_info.get("plan", {}).get("notes", []),
        "thresholds": src.run_info.get("thresholds", {}),
        "leaks": _leaks(src, lim.check_pairs),
        "pairs": {},
        "worst": {},
    }
    for name, spec in PAIRS.items():
        found = _pairs(src, *spec, lim.check_pairs)
        if found:
            out["pairs"][name] = found
    for name, (flag, score, order) in GALLERIES.items():
        if src.has(flag, score):
            rows = src.rows(
                f'SELECT id FROM {{m}} WHERE "{flag}" ORDER BY "{score}" {order}, id LIMIT ?',
                [lim.check_worst],
            )
            info = cards(src, [r["id"] for r in rows], (score,))
            found = [info[r["id"]] for r in rows if r["id"] in info]
            if found:
                out["worst"][name] = {"score": score, "rows": found}
    return out
