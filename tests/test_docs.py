"""The documentation site builds in strict mode: a broken link, a missing anchor or a docstring
mkdocstrings cannot read fails the suite, as it fails CI."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _mkdocs_or_skip() -> None:
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the [docs] extra is not installed (scripts/install.sh installs it)")


def test_site_builds_strict(tmp_path):
    _mkdocs_or_skip()
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(site)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    # the two how-tos a new user must find, BENCHMARKS.md as a page, the API from docstrings
    for page in ("how-to/prune-laion-shard", "how-to/audit-test-split", "benchmarks"):
        assert (site / page / "index.html").is_file(), page
    api = (site / "api" / "steps" / "index.html").read_text(encoding="utf-8")
    assert "curate.pipelines.prune.prune" in api and "PruneConfig" in api
    home = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="how-to/audit-test-split/"' in home


def test_benchmarks_page_is_the_root_file():
    """The site's Benchmarks page is BENCHMARKS.md itself, read at build time, not a copy."""
    spec = importlib.util.spec_from_file_location("docs_hook", ROOT / "docs/hooks/benchmarks.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    text = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    assert hook._site_markdown(text).splitlines()[0] == text.splitlines()[0]
    assert "](docs/" not in hook._site_markdown(text)
    assert not (ROOT / "docs" / "benchmarks.md").exists()
