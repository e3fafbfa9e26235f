"""``curate relabel`` and ``curate mistakes``: parse options, call the library, print a summary."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from curate.cli.params import ENGINE_PARAMS, argument, command, option, pop_engine
from curate.errors import InputError
from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.relabel.evidence import WeakTeacherWarning
from curate.pipelines.relabel.mistakes import MistakesConfig

_D = RelabelConfig()  # the library's defaults, shown by --help
_M = MistakesConfig()

RELABEL_PARAMS = [
    argument("manifest", Path, help="Input manifest with id, images and label."),
    option("out", Path | None, None, "--out", "-o",
           help="Output manifest: every row plus soft_classes, soft_probs, labels, "
           "label_map_classes, label_map_scores; default: NAME-relabeled beside it."),
    option("teacher", str | None, _D.teacher, "--teacher",
           help="Default (auto): the best out-of-fold accuracy against the labels among cnn "
           "(pixel CNN, small images), efficientnet_lite0 (+ a head) and both. Or one of them, "
           "timm:<name>=<weights> (backbone), classifier:timm:<name>=<weights> (your "
           "classifier); '+' joins an ensemble."),
    option("target", str, _D.target, "--target",
           help="posterior: teacher x the labels' noise channel (cleanlab's confident "
           "joint), so the given label counts as evidence; teacher: ReLabel's teacher alone."),
    option("prior", float, _D.prior, "--prior",
           help="Posterior: pseudo-rows per class whose label is right (trust in the labels)."),
    option("temperature", float, _D.temperature, "--temperature",
           help="Posterior: the teacher's temperature."),
    option("weak_teacher", str, _D.weak_teacher, "--weak-teacher",
           help="A teacher agreeing with fewer labels than are estimated right: warn, error "
           "(stop) or proceed (silently)."),
    option("head", str, _D.head, "--head", help="Head on the backbone: logreg or mlp."),
    option("folds", int, _D.folds, "--folds", help="K of the out-of-fold teachers."),
    option("seed", int, _D.seed, "--seed", help="Seeds the folds and the teachers."),
    option("cnn_epochs", int, _D.cnn_epochs, "--cnn-epochs", help="Epochs of each pixel CNN."),
    option("choice_rows", int, _D.choice_rows, "--choice-rows",
           help="Auto: labelled rows (a seeded sample) the candidates are measured on."),
    option("choice_margin", float, _D.choice_margin, "--choice-margin",
           help="Auto: take the cheapest candidate within this accuracy of the best."),
    option("top_k", int, _D.top_k, "--top-k", help="Classes kept per row and per map cell."),
    option("threshold", float, _D.threshold, "--threshold",
           help="labels = classes with probability >= this (always the top-1)."),
    option("image_size", int | None, _D.image_size, "--image-size",
           help="Teacher input side (whole image); default: from the images (the CNN at their "
           "size; a backbone at their size rounded up to 32, within 128-480)."),
    option("device", str, _D.device, "--device", help="auto, cpu or cuda."),
    option("batch_size", int, _D.batch_size, "--batch-size", help="Images per teacher call."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    *ENGINE_PARAMS,
]  # fmt: skip

MISTAKES_PARAMS = [
    argument("manifest", Path, help="A relabeled test manifest (label and labels columns)."),
    option("pred_probs", str | None, None, "--pred-probs",
           help="The model's probabilities: FILE.npy or PARQUET[:column], rows = manifest rows."),
    option("model", str | None, None, "--model",
           help="Instead: run classifier:timm:<name>=<weights> on the images."),
    option("out", Path | None, None, "--out", "-o",
           help="Output: the manifest with predicted_label, correct, real_correct, "
           "mistake_kind (default: NAME-mistakes beside the input)."),
    option("image_size", int | None, _M.image_size, "--image-size",
           help="Input side for --model."),
    option("device", str, _M.device, "--device", help="For --model: auto, cpu or cuda."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    *ENGINE_PARAMS,
]  # fmt: skip


def relabel_cmd(**options: Any) -> None:
    """Turn single labels into soft, multi- and localized labels with a teacher."""
    from curate.pipelines.relabel import relabel

    console = Console()
    manifest, out, overwrite = options.pop("manifest"), options.pop("out"), options.pop("overwrite")
    engine = pop_engine(options)
    try:
        config = RelabelConfig(**options)
    except ValueError as exc:
        raise InputError(str(exc)) from exc

    def log(msg: str) -> None:
        console.print(msg, highlight=False, soft_wrap=True)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", WeakTeacherWarning)
        m = relabel(manifest, out, config=config, overwrite=overwrite, **engine, log=log)
    for w in caught:
        if issubclass(w.category, WeakTeacherWarning):
            console.print(f"warning: {w.message}", highlight=False, soft_wrap=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    console.print(summary_line(m.run_info, out), highlight=False, soft_wrap=True)


def summary_line(info: dict, out) -> str:
    """The one-line result: rows, teacher, input size, target, changed labels."""
    counts, grid, teacher = info["counts"], info["map"]["grid"], info["teacher"]
    relabeled = counts.get("relabeled", 0)
    differs = counts.get("top1_differs", 0)
    share = f" ({100 * differs / relabeled:.1f}%)" if relabeled else ""
    return (
        f"relabeled {relabeled:,} of {counts['rows']:,} rows with {teacher['name']} "
        f"({teacher['input_size']} px, {grid}x{grid} map; target {info.get('target')}); "
        f"top-1 differs from the given label on {differs:,}{share}, "
        f"{counts.get('multi_label', 0):,} rows have more than one label, "
        f"{counts.get('failed', 0):,} failed (see error) -> {out}"
    )


def mistakes_cmd(**options: Any) -> None:
    """Score a model's predictions against single labels and ReaL-style label sets."""
    from curate.pipelines.relabel.mistakes import KINDS, mistakes

    manifest, out, overwrite = options.pop("manifest"), options.pop("out"), options.pop("overwrite")
    pred_probs, engine = options.pop("pred_probs"), pop_engine(options)
    result = mistakes(manifest, out, overwrite=overwrite, pred_probs=pred_probs, **engine,
                      **options)  # fmt: skip
    s = result.run_info["counts"]
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
    console.print(f"-> {result.path}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``relabel`` and ``mistakes`` to the app."""
    app.command("relabel")(command(relabel_cmd, RELABEL_PARAMS))
    app.command("mistakes")(command(mistakes_cmd, MISTAKES_PARAMS))


__all__ = ["register"]
