"""MkDocs hook: BENCHMARKS.md stays one file at the repository root; the site shows it as
``benchmarks.md``, read at build time (so it is never copied by hand and never stale)."""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File, Files

SOURCE = "BENCHMARKS.md"
PAGE = "benchmarks.md"


def _site_markdown(text: str) -> str:
    """Links written relative to the repository root (``docs/x.png``) made relative to docs/."""
    return re.sub(r"\]\(docs/", "](", text)


def on_files(files: Files, config) -> Files:
    root = Path(config["config_file_path"]).parent
    text = (root / SOURCE).read_text(encoding="utf-8")
    files.append(File.generated(config, PAGE, content=_site_markdown(text)))
    return files
