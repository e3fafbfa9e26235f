"""The demo's last stage: its pruned manifest against random, on a held-out 20% of the rows."""

from __future__ import annotations

import json

from curate.demo import stages
from tests.evaluate._data import write_digits


def test_demo_evaluates_against_random_before_its_report(tmp_path):
    write_digits(tmp_path / "embedded")  # stands in for the demo's efficientnet_lite0 features
    fns = dict(stages())
    names = list(fns)
    assert names[-2:] == ["evaluated", "report"]  # the evaluate table, then the page showing it
    lines: list[str] = []
    fns["pruned"](tmp_path, lines.append)
    out = fns["evaluated"](tmp_path, lines.append)
    text = "\n".join(lines)
    assert "vs uniform random rows at equal budget" in text and "dbp-0.5" in text
    result = json.loads(out.read_text())["results"][0]
    assert result["rows"] == result["random_rows"]
    # the held-out test rows the prune kept are counted, not trained on
    assert result["rows"] + result["excluded"]["test"] == result["selected"]
    assert result["subset"] == "dbp-0.5"
