"""One path writes a manifest's rows: the engines. A ratchet: the modules that still write rows
themselves are listed here by name, each with the reason or the issue that moves it; a new
module that writes rows fails this test."""

from __future__ import annotations

import re
from pathlib import Path

import curate

ROOT = Path(curate.__file__).parent
WRITES = re.compile(r"\b(ManifestWriter\(|write_manifest\(|pq\.write_table\(|write_shard\b)")

#: Outside curate/engines and curate/manifests (the writer itself), who writes rows, and why.
ALLOWED = {
    # makes new rows from no input manifest, as ingest does (curate/manifests/ingest)
    "pipelines/distill/output.py": "distill: the synthetic images are new rows",
    "evaluation/distill_eval.py": "distill-eval: a results table and the random draws' ids",
    "pipelines/export/formats.py": "export: a copy of the kept rows in another format",
    "pipelines/export/images.py": "export: the index of the files it wrote",
    # a filtered copy of a step's output: fewer rows than the input, so no step (steps keep
    # every row); written from the engine's output by the manifest writer
    "pipelines/label_issues/report.py": "label-issues --issues-out: the flagged rows, worst first",
    "pipelines/prune/__init__.py": "prune --kept-out: the kept rows",
}


def test_only_the_engines_and_the_listed_modules_write_rows():
    writers = set()
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(("engines/", "manifests/")):
            continue
        if WRITES.search(path.read_text()):
            writers.add(rel)
    assert writers - set(ALLOWED) == set(), "write rows through curate.engines.run"
    assert set(ALLOWED) - writers == set(), "moved onto the engine: take it off the list"
