"""``curate check``: parse options, call the library, print what it found, exit 1 on --fail-on."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from curate.cli.params import ENGINE_PARAMS, argument, command, option, pop_engine
from curate.errors import InputError
from curate.pipelines.check.config import ISSUE_NAMES, CheckConfig, parse_issues

_D = CheckConfig()  # the library's defaults, shown by --help

CHECK_PARAMS = [
    argument("manifest", Path, help="Input manifest (images and/or an embedding column)."),
    option("out", Path | None, None, "--out", "-o",
           help="Output manifest: every row plus the checks' columns. Omitted: only the "
           "summary is printed (curate.check() writes NAME-checked beside the input)."),
    option("test_split", str | None, _D.test_split, "--test-split",
           help="Split checked for leakage (default: 'test' when present)."),
    option("train_split", str | None, _D.train_split, "--train-split",
           help="Reference split for leakage (default: every other row)."),
    option("against", Path | None, None, "--against",
           help="Another manifest (a benchmark's test set): rows of MANIFEST that "
           "near-duplicate one of its rows are leaks."),
    option("fail_on", str | None, None, "--fail-on",
           help=f"Exit 1 when any of these issues is found (comma list, or any): "
           f"{', '.join(ISSUE_NAMES)}."),
    option("near_dup_threshold", float, _D.near_dup_threshold, "--near-dup-threshold",
           help="Embedding cosine at or above which rows are near-duplicates (and leaks)."),
    option("phash_max_distance", int, _D.phash_max_distance, "--phash-max-distance",
           help="Hamming distance of 64-bit perceptual hashes at or below which images are "
           "near-duplicates."),
    option("phash_leak", bool, _D.phash_leak, "--phash-leak/--no-phash-leak",
           help="Let a perceptual-hash match alone mark a leak."),
    option("outlier_k", int, _D.outlier_k, "--outlier-k",
           help="Neighbours in outlier_score (mean cosine distance)."),
    option("outlier_percentile", float, _D.outlier_percentile, "--outlier-percentile",
           help="Flag outlier_score above this percentile."),
    option("exact_max_rows", int, _D.exact_max_rows, "--exact-max-rows",
           help="Exact neighbour search up to this many rows, an IVF index above."),
    option("nprobe", int, _D.nprobe, "--nprobe", help="IVF lists visited per query."),
    option("dark_threshold", float, _D.dark_threshold, "--dark-threshold",
           help="Flag dark_score below this (cleanvision's default)."),
    option("light_threshold", float, _D.light_threshold, "--light-threshold",
           help="Flag light_score below this."),
    option("blurry_threshold", float, _D.blurry_threshold, "--blurry-threshold",
           help="Flag blurry_score below this."),
    option("low_information_threshold", float, _D.low_information_threshold,
           "--low-information-threshold", help="Flag low_information_score below this."),
    option("odd_aspect_ratio_threshold", float, _D.odd_aspect_ratio_threshold,
           "--odd-aspect-ratio-threshold", help="Flag odd_aspect_ratio_score below this."),
    option("embedding_column", str, _D.embedding_column, "--embedding-column",
           help="The vector column of the embedding checks."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    *ENGINE_PARAMS,
]  # fmt: skip


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def print_summary(summary: dict, out: Path | None) -> None:
    """Counts per issue and the worst examples of each, then the notes."""
    from curate.cli.app import console

    rows = summary["rows"]
    table = Table("issue", "rows", "share", "worst examples (id score -> of)", title="check")
    for name, n in summary["counts"].items():
        worst = "; ".join(
            f"{w['id']} {_fmt(w['score'])}" + (f" -> {w['of']}" if w.get("of") else "")
            for w in summary["worst"].get(name, [])
        )
        table.add_row(name, f"{n:,}", f"{100 * n / max(rows, 1):.1f}%", worst)
    console.print(table)
    for note in summary["notes"]:
        console.print(f"note: {note}", highlight=False)
    where = f"-> {out}" if out is not None else "(no --out: the annotated manifest was not kept)"
    console.print(f"{rows:,} rows checked {where}", highlight=False)


def check_cmd(**options: Any) -> None:
    """Health pass: exact and near-duplicates, train/test leakage, outliers, unusable images;
    every row kept with a score and a flag per check."""
    from curate.cli.app import console, err_console
    from curate.pipelines.check import check, issues_found, summarize

    manifest, out = options.pop("manifest"), options.pop("out")
    overwrite = options.pop("overwrite")
    engine = pop_engine(options)
    try:
        fail_on = parse_issues(options.pop("fail_on"))
        if options["against"] is not None:
            options["against"] = str(options["against"])
        config = CheckConfig(**options)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    scratch = Path(tempfile.mkdtemp(prefix="curate-check-")) if out is None else None
    try:
        target = out if scratch is None else scratch / "checked"
        result = check(manifest, target, config=config, overwrite=overwrite, **engine)
        print_summary(summarize(result), out)
        found = issues_found(result, fail_on) if fail_on else {}
    finally:
        if scratch is not None:  # no --out: a summary only, like a linter in CI
            shutil.rmtree(scratch, ignore_errors=True)
    if found:
        listed = ", ".join(f"{k} ({v:,} rows)" for k, v in found.items())
        err_console.print(f"[bold red]check failed:[/] --fail-on found {listed}", highlight=False)
        console.file.flush()
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``check`` to the app."""
    app.command("check")(command(check_cmd, CHECK_PARAMS))


__all__ = ["register"]
