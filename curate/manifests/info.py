"""Summarise a manifest: rows, columns, size on disk, label histogram, errors, producing steps."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from curate.manifests import schema as S
from curate.manifests.catalog import connect
from curate.manifests.io import Manifest, open_manifest


@dataclass(frozen=True)
class ManifestInfo:
    """What ``curate info`` prints; every figure is computed by DuckDB over the Parquet files."""

    path: str
    rows: int
    columns: list[tuple[str, str]]
    bytes_on_disk: int
    files: int
    class_names: list[str] | None
    label_counts: list[tuple[int | None, str | None, int]] = field(default_factory=list)
    error_rows: int = 0
    error_kinds: list[tuple[str, int]] = field(default_factory=list)
    steps: list[dict] = field(default_factory=list)


def _label_counts(con, names: list[str] | None) -> list[tuple[int | None, str | None, int]]:
    rows = con.execute("SELECT label, count(*) FROM m GROUP BY label ORDER BY label").fetchall()
    out = []
    for label, n in rows:
        name = names[label] if names and label is not None and 0 <= label < len(names) else None
        out.append((label, name, n))
    return out


def _error_kinds(con) -> tuple[int, list[tuple[str, int]]]:
    total = con.execute("SELECT count(*) FROM m WHERE error IS NOT NULL").fetchone()[0]
    kinds = con.execute(
        "SELECT split_part(error, ':', 1) AS kind, count(*) FROM m WHERE error IS NOT NULL "
        "GROUP BY kind ORDER BY 2 DESC LIMIT 20"
    ).fetchall()
    return total, kinds


def describe(manifest: str | os.PathLike | Manifest) -> ManifestInfo:
    """Collect :class:`ManifestInfo` for a manifest, streaming (nothing loaded into Python)."""
    m = open_manifest(manifest)
    names = m.class_names
    con = connect({"m": m})
    try:
        labels = _label_counts(con, names) if S.LABEL in m.schema.names else []
        errors, kinds = _error_kinds(con) if S.ERROR in m.schema.names else (0, [])
    finally:
        con.close()
    run = m.run_info or {}
    return ManifestInfo(
        path=str(m.path),
        rows=m.num_rows,
        columns=[(f.name, str(f.type)) for f in m.schema],
        bytes_on_disk=m.nbytes_on_disk,
        files=len(m.files),
        class_names=names,
        label_counts=labels,
        error_rows=errors,
        error_kinds=kinds,
        steps=list(run.get("history", [])),
    )
