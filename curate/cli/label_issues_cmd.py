"""``curate label-issues``: flag likely label errors, with suggested labels, in a manifest."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer

from curate.errors import InputError
from curate.pipelines.label_issues.config import METHODS, PREDICTORS, LabelIssuesConfig

_D = LabelIssuesConfig()  # the library's defaults, shown by --help


def _param(name: str, annotation: Any, default: Any, *decls: str, help: str) -> inspect.Parameter:
    if not decls:
        info = typer.Argument(help=help)
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Parameter(name, kind, annotation=Annotated[annotation, info])
    info = typer.Option(*decls, help=help)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, annotation=Annotated[annotation, info], default=default)


#: The command's options (typer reads them from the function signature).
PARAMS = [
    _param("manifest", Path, ..., help="Input manifest with id and label (or labels)."),
    _param("out", Path, ..., "--out", "-o",
           help="Output manifest: the input plus label_quality, is_label_issue, "
           "suggested_label, suggested_confidence."),
    _param("pred_probs", str | None, None, "--pred-probs",
           help="Your model's out-of-sample probabilities: FILE.npy, or PARQUET[:column]."),
    _param("predictor", str, _D.predictor, "--predictor",
           help=f"Built-in predictor(s), '+' for an ensemble: {', '.join(PREDICTORS)}."),
    _param("method", str, _D.method, "--method",
           help=f"cleanlab filter_by: {', '.join(METHODS)}."),
    _param("rank_by", str, _D.rank_by, "--rank-by",
           help="cleanlab label quality score: self_confidence, normalized_margin, "
           "confidence_weighted_entropy."),
    _param("folds", int, _D.folds, "--folds", help="K of the stratified K-fold CV."),
    _param("seed", int, _D.seed, "--seed", help="Seeds the folds and the predictors."),
    _param("audit_split", str | None, None, "--audit-split",
           help="Audit only rows of this split (e.g. test), with models fit on --train-split."),
    _param("train_split", str, _D.train_split, "--train-split",
           help="The split the audit models are fit on."),
    _param("audit_cv", bool, False, "--audit-cv",
           help="In an audit, also cross-validate inside the audit split and average."),
    _param("zero_shot", bool, False, "--zero-shot",
           help="Add open_clip zero-shot predictions from class-name prompts (needs weights)."),
    _param("model", str, _D.model, "--model",
           help="Encoder to embed with first when there is no embedding (as curate embed); "
           "for --zero-shot an open_clip model."),
    _param("pretrained", str | None, None, "--pretrained",
           help="open_clip pretrained tag or checkpoint path for --zero-shot."),
    _param("features", str, _D.features, "--features",
           help="auto (embedding, else embed first), embedding or pixels (small images)."),
    _param("issues_out", Path | None, None, "--issues-out",
           help="Also write the flagged rows alone, worst first."),
    _param("overwrite", bool, False, "--overwrite", help="Replace existing outputs."),
]  # fmt: skip


def label_issues_cmd(**options: Any) -> None:
    """Flag likely label errors with cleanlab on out-of-sample predictions."""
    from rich.console import Console

    from curate.pipelines.label_issues import label_issues

    console = Console()
    io_options = {k: options.pop(k) for k in ("pred_probs", "issues_out", "overwrite")}
    manifest, out = options.pop("manifest"), options.pop("out")
    try:
        config = LabelIssuesConfig(**options)
    except ValueError as exc:
        raise InputError(str(exc)) from exc
    result = label_issues(
        manifest,
        out,
        config=config,
        log=lambda msg: console.print(msg, highlight=False, soft_wrap=True),
        **io_options,
    )
    flagged = result.column("is_label_issue").fill_null(False)
    audited = result.num_rows - result.column("is_label_issue").null_count
    console.print(
        f"{sum(flagged.to_pylist()):,} label issues among {audited:,} audited rows",
        highlight=False,
    )


label_issues_cmd.__signature__ = inspect.Signature(PARAMS)


def register(app: typer.Typer) -> None:
    """Add ``label-issues`` to the app."""
    app.command("label-issues")(label_issues_cmd)


__all__ = ["register"]
