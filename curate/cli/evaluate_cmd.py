"""``curate evaluate``: parse options, call :func:`curate.evaluation.evaluate`, print the table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from curate.cli.params import PROGRESS_PARAM, argument, command, option
from curate.evaluation.config import EvaluateConfig

_D = EvaluateConfig()  # the library's defaults, shown by --help

EVALUATE_PARAMS = [
    argument("pool", Path, help="The manifest the subsets come from (id, label, embedding)."),
    option("subset", list[str], ..., "--subset", "-s",
           help="NAME=SPEC, repeatable. SPEC: a prune output (its keep column) or manifest "
                "(its ids), or a DuckDB WHERE expression over POOL ('clean=NOT flipped')."),
    option("test", Path | None, None, help="Test manifest with the pool's classes."),
    option("test_split", str | None, None, help="Test on POOL's rows with this split value."),
    option("test_fraction", float | None, None,
           help="Test on a seeded held-out fraction of POOL's usable rows (e.g. 0.2)."),
    option("test_seed", int, _D.test_seed, help="Seed of the --test-fraction hold-out."),
    option("seeds", int, _D.seeds, help="Training seeds (and random draws) per subset."),
    option("model", str, _D.model, help="probe (linear, on the embedding) or cnn (pixels)."),
    option("random", str, _D.random,
           help="Random baseline: uniform, or stratified (the subset's per-class counts)."),
    option("epochs", int, _D.epochs, help="cnn: training epochs."),
    option("device", str, _D.device, help="cnn: auto (CUDA when present), cuda or cpu."),
    option("threads", int | None, _D.threads, help="cnn: CPU torch threads (default: up to 4)."),
    option("embedding_column", str, _D.embedding_column, help="probe: the vector column to use."),
    option("out", Path | None, None, "--out", "-o",
           help="Also write the result as JSON (omitted: only printed)."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing --out."),
    PROGRESS_PARAM,
]  # fmt: skip


def evaluate_cmd(**options: Any) -> None:
    """Train the same model on each subset of POOL and on random rows at equal budget;
    print test accuracy (mean ± std over seeds) and each subset's difference from random."""
    from curate.cli.app import console
    from curate.evaluation import evaluate
    from curate.evaluation.table import exclusion_notes, rich_table

    pool, subsets = options.pop("pool"), options.pop("subset")
    test, out = options.pop("test"), options.pop("out")
    result = evaluate(pool, out, subsets=subsets, test=test, log=console.print, **options)
    console.print(rich_table(result))
    for note in exclusion_notes(result):
        console.print(note, highlight=False)
    console.print(
        "reads: better/worse when |Δ| > 2 std of the per-seed differences, else tie; "
        "per-class accuracy in the JSON (--out)" + (f" -> {out}" if out else "."),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``evaluate`` to the app."""
    app.command("evaluate")(command(evaluate_cmd, EVALUATE_PARAMS))
