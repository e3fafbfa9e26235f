"""One manifest as the report sees it: a DuckDB view, its columns, class names and run.json."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from curate.manifests import catalog
from curate.manifests.io import Manifest, open_manifest

#: Columns a gallery card shows when the manifest has them (image bytes are fetched apart).
CARD_COLUMNS = (
    "id",
    "label",
    "suggested_label",
    "label_quality",
    "is_label_issue",
    "keep",
    "prune_reason",
    "cluster",
    "error",
)


def view_name(path: Path, taken: set[str]) -> str:
    """A SQL identifier for a manifest from its file or folder name, unique among ``taken``."""
    stem = path.name.removesuffix(".parquet") or "manifest"
    name = re.sub(r"[^A-Za-z0-9_]", "_", stem)
    name = name if re.match(r"[A-Za-z_]", name) else "m_" + name
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


@dataclass
class Source:
    """A registered manifest: ``name`` is its view in ``con``; ``columns`` what it has."""

    name: str
    manifest: Manifest
    con: duckdb.DuckDBPyConnection
    columns: set[str] = field(default_factory=set)

    @property
    def num_rows(self) -> int:
        return self.manifest.num_rows

    @property
    def class_names(self) -> list[str] | None:
        return self.manifest.class_names

    @property
    def run_info(self) -> dict:
        return self.manifest.run_info or {}

    def has(self, *cols: str) -> bool:
        return all(c in self.columns for c in cols)

    def card_columns(self) -> list[str]:
        return [c for c in CARD_COLUMNS if c in self.columns]

    def rows(self, query: str, params: list | None = None) -> list[dict]:
        """Run ``query`` (``{m}`` stands for this manifest's view) and return dict rows."""
        cur = self.con.cursor()
        try:
            res = cur.execute(query.format(m=f'"{self.name}"'), params or [])
            cols = [d[0] for d in res.description]
            return [dict(zip(cols, r, strict=True)) for r in res.fetchall()]
        finally:
            cur.close()

    def scalar(self, query: str, params: list | None = None):
        rows = self.rows(query, params)
        return next(iter(rows[0].values())) if rows else None


def open_sources(
    manifests: list[str | os.PathLike | Manifest], con: duckdb.DuckDBPyConnection | None = None
) -> list[Source]:
    """Open each manifest and register it as a view in one DuckDB connection."""
    con = con or duckdb.connect()
    out, taken = [], set()
    for path in manifests:
        m = open_manifest(path)
        name = view_name(m.path, taken)
        taken.add(name)
        catalog.register(con, name, m)
        out.append(Source(name=name, manifest=m, con=con, columns=set(m.schema.names)))
    return out
