"""The built-in demo: the Fashion-MNIST test set (shipped in the package) through the pipeline."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from curate.errors import InputError

DEMO_DATA = Path(__file__).parent / "data" / "fashion_mnist_test.parquet"

# Each stage reads the previous stage's output under DIR and writes DIR/<name>.
# A stage is (name, function(out_dir: Path, log: Callable[[str], None]) -> Path).
Stage = tuple[str, Callable[[Path, Callable[[str], None]], Path]]


def _ingest(out_dir: Path, log: Callable[[str], None]) -> Path:
    from curate.manifests.ingest import ingest

    if not DEMO_DATA.exists():
        raise InputError(
            f"{DEMO_DATA}: the demo data is missing from this install; reinstall curate-ml."
        )
    return ingest(DEMO_DATA, out_dir / "ingested", overwrite=True).path


#: The demo images are 28x28: at 64 px EfficientNet-Lite0 costs ~12x less than at its native
#: 224 px, for a linear probe about 3 points lower (see BENCHMARKS.md, Embed).
DEMO_IMAGE_SIZE = 64


#: The demo's label-issues predictor, chosen by out-of-sample accuracy against the given labels
#: on the 10,000 demo images (benchmarks/label_issues_predictors.py, BENCHMARKS.md): the pixel
#: CNN 87.7% (621 issues, ~8 min on 2 loaded cores) against logreg on the 64 px embedding 83.2%
#: (1,203 issues, 26 s), mlp 84.4%, logreg+cnn 87.2%; a weaker predictor's own mistakes bury
#: the real label errors.
DEMO_PREDICTOR = "cnn"


def _embed(out_dir: Path, log: Callable[[str], None]) -> Path:
    """EfficientNet-Lite0 ImageNet features, offline (DIR/ingested -> DIR/embedded)."""
    from curate.pipelines.embed import embed, format_summary

    m = embed(
        out_dir / "ingested",
        out_dir / "embedded",
        model="efficientnet_lite0",
        image_size=DEMO_IMAGE_SIZE,
        overwrite=True,
        progress="auto",  # a bar on a terminal, a line at least every 25 s in a log
    )
    info = m.run_info
    log(format_summary(info["counts"]))
    rate = info["timings"].get("images_per_s", 0.0)
    log(f"efficientnet_lite0 at {DEMO_IMAGE_SIZE} px, {rate:,.0f} images/s -> {m.path}")
    return m.path


def _prune(out_dir: Path, log: Callable[[str], None]) -> Path:
    """DBP on the embedded demo set: keep half, 50 concept clusters (DIR/embedded -> DIR/pruned)."""
    from curate.pipelines.prune import prune

    if not (out_dir / "embedded").exists():
        raise InputError(f"{out_dir / 'embedded'}: missing; the embed stage writes it first.")
    m = prune(
        out_dir / "embedded", out_dir / "pruned", keep=0.5, method="dbp", k=50, overwrite=True
    )
    counts = m.run_info["counts"]
    log(f"pruned: kept {counts['kept']} of {counts['rows']} rows (dbp, k=50) -> {m.path}")
    return m.path


def _label_issues(out_dir: Path, log: Callable[[str], None]) -> Path:
    """Audit the demo labels (DIR/embedded, else DIR/ingested pixels); log the worst ten."""
    import warnings

    import numpy as np

    from curate.manifests.schema import class_names
    from curate.pipelines.label_issues import label_issues
    from curate.pipelines.label_issues.summary import WeakPredictorWarning, summary_lines

    source, features = out_dir / "embedded", "auto"
    if not source.exists():
        source, features = out_dir / "ingested", "pixels"
        log(f"no {source.parent / 'embedded'}: auditing {source} with pixel features")
    out = out_dir / "label-issues"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakPredictorWarning)  # logged below, with the count
        result = label_issues(
            source, out, features=features, predictor=DEMO_PREDICTOR, overwrite=True, log=log
        )
    names = class_names(result.schema)
    quality = result.column("label_quality").to_numpy(zero_copy_only=False)
    for line in summary_lines(result):
        log(line)
    log("worst ten:")
    log(f"{'id':<26} {'given':<12} {'suggested':<12} label_quality")
    given_col, suggested_col = result.column("label"), result.column("suggested_label")
    for i in np.argsort(np.nan_to_num(quality, nan=2.0), kind="stable")[:10]:
        given, suggested = (
            names[k] if names else str(k) for k in (given_col[i].as_py(), suggested_col[i].as_py())
        )
        row_id = result.column("id")[i].as_py()
        log(f"{row_id:<26} {given:<12} {suggested:<12} {quality[i]:.3g}")
    return out


def _evaluate(out_dir: Path, log: Callable[[str], None]) -> Path:
    """The pruned set against random at equal budget: a linear probe on the embedding, tested
    on a seeded held-out 20% of the demo rows (DIR/pruned -> DIR/evaluate.json)."""
    from curate.evaluation import evaluate
    from curate.evaluation.table import exclusion_notes, text_lines

    if not (out_dir / "pruned").exists():
        raise InputError(f"{out_dir / 'pruned'}: missing; the prune stage writes it first.")
    out = out_dir / "evaluate.json"
    result = evaluate(
        out_dir / "embedded",
        subsets={"dbp-0.5": out_dir / "pruned"},
        test_fraction=0.2,
        out=out,
        overwrite=True,
    )
    for line in [*text_lines(result), *exclusion_notes(result)]:
        log(line)
    return out


def _report(out_dir: Path, log: Callable[[str], None]) -> Path:
    """One self-contained page of the label issues and the pruning (DIR/report.html)."""
    from curate.reporting import report

    inputs = [out_dir / n for n in ("label-issues", "pruned") if (out_dir / n).exists()]
    if not inputs:
        raise InputError(f"{out_dir}: no label-issues or pruned manifest to report on.")
    evaluation = out_dir / "evaluate.json"
    path = report(
        inputs,
        out_dir / "report.html",
        evaluation=evaluation if evaluation.exists() else None,
        overwrite=True,
    )
    log(f"report ({path.stat().st_size / 1e6:.1f} MB): open file://{path.resolve()}")
    return path


def stages() -> list[Stage]:
    """The demo's stages in order, each writing one output under the demo folder."""
    return [
        ("ingested", _ingest),
        ("embedded", _embed),
        ("pruned", _prune),  # reads DIR/embedded, written by the embed stage before it
        ("label-issues", _label_issues),  # reads DIR/embedded (or DIR/ingested: pixels)
        ("evaluated", _evaluate),  # reads DIR/embedded and DIR/pruned
        ("report", _report),  # reads DIR/label-issues, DIR/pruned (+ evaluate.json)
    ]


def run_demo(out_dir: str | os.PathLike, *, log: Callable[[str], None] = print) -> dict[str, Path]:
    """Run every demo stage into ``out_dir``; returns each stage's output path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name, fn in stages():
        log(f"== {name}")
        results[name] = fn(out, log)
    return results
