"""``curate relabel`` and ``curate mistakes``: parse options, call the library, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from curate.cli.params import argument, command, option
from curate.errors import InputError
from curate.pipelines.relabel.config import RelabelConfig

_D = RelabelConfig()  # the library's defaults, shown by --help

RELABEL_PARAMS = [
    argument("manifest", Path, help="Input manifest with id, images and label."),
    option("out", Path, ..., "--out", "-o",
           help="Output manifest: every row plus soft_classes, soft_probs, labels, "
           "label_map_classes, label_map_scores."),
    option("teacher", str | None, None, "--teacher",
           help="Default: efficientnet_lite0 + a head fit out of fold on the labels. Or "
           "timm:<name>=<weights> (backbone), classifier:timm:<name>=<weights> (your "
           "classifier); '+' joins an ensemble."),
    option("head", str, _D.head, "--head", help="Head on the backbone: logreg or mlp."),
    option("folds", int, _D.folds, "--folds", help="K of the out-of-fold heads."),
    option("seed", int, _D.seed, "--seed", help="Seeds the folds and the heads."),
    option("top_k", int, _D.top_k, "--top-k", help="Classes kept per row and per map cell."),
    option("threshold", float, _D.threshold, "--threshold",
           help="labels = classes with probability >= this (always the top-1)."),
    option("image_size", int | None, None, "--image-size",
           help="Teacher input side (whole image); default 480 = a 15x15 map (stride 32)."),
    option("device", str, _D.device, "--device", help="auto, cpu or cuda."),
    option("batch_size", int, _D.batch_size, "--batch-size", help="Images per teacher call."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
]  # fmt: skip

MISTAKES_PARAMS = [
    argument("manifest", Path, help="A relabeled test manifest (label and labels columns)."),
    option("pred_probs", str | None, None, "--pred-probs",
           help="The model's probabilities: FILE.npy or PARQUET[:column], rows = manifest rows."),
    option("model", str | None, None, "--model",
           help="Instead: run classifier:timm:<name>=<weights> on the images."),
    option("out", Path | None, None, "--out", "-o",
           help="Also write the manifest with predicted_label, correct, real_correct, "
           "mistake_kind."),
    option("image_size", int | None, None, "--image-size", help="Input side for --model."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
]  # fmt: skip


def relabel_cmd(**options: Any) -> None:
    """Turn single labels into soft, multi- and localized labels with a teacher."""
    from curate.pipelines.relabel import relabel

    console = Console()
    manifest, out, overwrite = options.pop("manifest"), options.pop("out"), options.pop("overwrite")
    try:
        config = RelabelConfig(**options)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    m = relabel(manifest, out, config=config, overwrite=overwrite,
                log=lambda msg: console.print(msg, highlight=False))  # fmt: skip
    info = m.run_info
    counts, grid = info["counts"], info["map"]["grid"]
    console.print(
        f"relabeled {counts.get('relabeled', 0):,} of {counts['rows']:,} rows with "
        f"{info['teacher']['name']} ({info['teacher']['input_size']} px, {grid}x{grid} map); "
        f"top-1 differs from the given label on {counts.get('top1_differs', 0):,}, "
        f"{counts.get('multi_label', 0):,} rows have more than one label, "
        f"{counts.get('failed', 0):,} failed (see error) -> {out}",
        highlight=False,
    )


def mistakes_cmd(**options: Any) -> None:
    """Score a model's predictions against single labels and ReaL-style label sets."""
    from curate.pipelines.relabel.mistakes import KINDS, mistakes

    result = mistakes(options.pop("manifest"), **options)
    s = result.summary
    console = Console()

    def pct(v):
        return "-" if v is None else f"{100 * v:.2f}%"

    console.print(
        f"{s['rows_scored']:,} rows: single-label accuracy {pct(s['accuracy'])}, "
        f"multi-label (ReaL) accuracy {pct(s['real_accuracy'])} over {s['real_rows']:,} rows "
        "with a label set",
        highlight=False,
    )
    table = Table("outcome", "rows", "share of errors")
    meaning = {"correct": "correct (= given label)", "in_label_set": "in the label set: not a "
               "mistake", "label_error": "given label flagged: a label error",
               "mistake": "true mistake"}  # fmt: skip
    for kind in KINDS:
        n = s["counts"][kind]
        share = "" if kind == "correct" or not s["errors"] else pct(n / s["errors"])
        table.add_row(meaning[kind], f"{n:,}", share)
    console.print(table)
    if not s["label_issues_used"]:
        console.print("no is_label_issue column: run `curate label-issues` to split label "
                      "errors out of the mistakes.", highlight=False)  # fmt: skip


def register(app: typer.Typer) -> None:
    """Add ``relabel`` and ``mistakes`` to the app."""
    app.command("relabel")(command(relabel_cmd, RELABEL_PARAMS))
    app.command("mistakes")(command(mistakes_cmd, MISTAKES_PARAMS))


__all__ = ["register"]
