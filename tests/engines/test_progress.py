"""Progress in logs: a line at least every INTERVAL seconds, whatever the shard size."""

from __future__ import annotations

import io
import time

from curate.engines.progress import Progress


def test_a_log_gets_a_line_every_interval_even_inside_one_long_shard(monkeypatch):
    monkeypatch.setattr(Progress, "INTERVAL", 0.2)
    out = io.StringIO()
    with Progress("embed", 1000, mode="lines", stream=out) as bar:
        time.sleep(0.5)  # a model loading: no rows yet
        bar.advance(10)
        time.sleep(0.5)  # one slow shard: rows advance, no shard finishes
    lines = out.getvalue().splitlines()
    assert lines[0] == "embed: 1,000 rows to process"
    assert any("working, elapsed" in line for line in lines)
    assert any("10/1,000 rows" in line and "ETA" in line for line in lines)
    assert len(lines) >= 4


def test_a_terminal_bar_and_off_print_no_status_lines(monkeypatch):
    monkeypatch.setattr(Progress, "INTERVAL", 0.1)
    out = io.StringIO()
    with Progress("x", 10, mode="off", stream=out):
        time.sleep(0.3)
    assert out.getvalue() == ""
