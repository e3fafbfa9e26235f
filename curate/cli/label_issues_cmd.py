"""``curate label-issues``: flag likely label errors, with suggested labels, in a manifest."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import typer

from curate.cli.params import ENGINE_PARAMS, argument, command, option, pop_engine
from curate.errors import InputError
from curate.pipelines.label_issues.config import METHODS, PREDICTORS, LabelIssuesConfig
from curate.pipelines.label_issues.summary import WeakPredictorWarning, summary_lines

_D = LabelIssuesConfig()  # the library's defaults, shown by --help


#: The command's options (typer reads them from the function signature).
PARAMS = [
    argument("manifest", Path, help="Input manifest with id and label (or labels)."),
    option("out", Path | None, None, "--out", "-o",
           help="Output manifest: the input plus label_quality, is_label_issue, "
           "suggested_label, suggested_confidence; default: NAME-label-issues beside it."),
    option("pred_probs", str | None, None, "--pred-probs",
           help="Your model's out-of-sample probabilities: FILE.npy, or PARQUET[:column]."),
    option("predictor", str, _D.predictor, "--predictor",
           help=f"Built-in predictor(s), '+' for an ensemble: {', '.join(PREDICTORS)}; "
                "auto: cnn for small images without an embedding, else logreg."),
    option("method", str, _D.method, "--method",
           help=f"cleanlab filter_by: {', '.join(METHODS)}."),
    option("rank_by", str, _D.rank_by, "--rank-by",
           help="cleanlab label quality score: self_confidence, normalized_margin, "
           "confidence_weighted_entropy."),
    option("folds", int, _D.folds, "--folds", help="K of the stratified K-fold CV."),
    option("seed", int, _D.seed, "--seed", help="Seeds the folds and the predictors."),
    option("audit_split", str | None, None, "--audit-split",
           help="Audit only rows of this split (e.g. test), with models fit on --train-split."),
    option("train_split", str, _D.train_split, "--train-split",
           help="The split the audit models are fit on."),
    option("audit_cv", bool, False, "--audit-cv",
           help="In an audit, also cross-validate inside the audit split and average."),
    option("zero_shot", bool, False, "--zero-shot",
           help="Add open_clip zero-shot predictions from class-name prompts (needs weights)."),
    option("model", str, _D.model, "--model",
           help="Encoder to embed with first when there is no embedding (as curate embed); "
           "for --zero-shot an open_clip model."),
    option("pretrained", str | None, None, "--pretrained",
           help="open_clip pretrained tag or checkpoint path for --zero-shot."),
    option("features", str, _D.features, "--features",
           help="auto (embedding, else embed first), embedding or pixels (small images)."),
    option("issues_out", Path | None, None, "--issues-out",
           help="Also write the flagged rows alone, worst first."),
    option("overwrite", bool, False, "--overwrite", help="Replace existing outputs."),
    *ENGINE_PARAMS,
]  # fmt: skip


def label_issues_cmd(**options: Any) -> None:
    """Flag likely label errors with cleanlab on out-of-sample predictions."""
    from rich.console import Console

    from curate.pipelines.label_issues import label_issues

    console = Console()
    io_options = {k: options.pop(k) for k in ("pred_probs", "issues_out", "overwrite")}
    io_options.update(pop_engine(options))
    manifest, out = options.pop("manifest"), options.pop("out")
    try:
        config = LabelIssuesConfig(**options)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakPredictorWarning)  # printed below, with the count
        result = label_issues(
            manifest,
            out,
            config=config,
            log=lambda msg: console.print(msg, highlight=False, soft_wrap=True),
            **io_options,
        )
    for line in summary_lines(result):
        console.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``label-issues`` to the app."""
    app.command("label-issues")(command(label_issues_cmd, PARAMS))


__all__ = ["register"]
