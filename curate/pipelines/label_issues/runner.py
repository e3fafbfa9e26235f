"""``label_issues``: out-of-sample predictions, cleanlab's confident learning, annotated output."""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from curate.config import resolve_config
from curate.engines import check_engine
from curate.engines.options import progress_mode
from curate.errors import MissingExtraError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, default_out, open_manifest, prepare_output
from curate.manifests.runinfo import Timer, make_run_info
from curate.models.features import load_features
from curate.models.predictors import PREDICTOR_INPUT
from curate.pipelines.label_issues.audit import ensemble, member_pred_probs, warn_small_classes
from curate.pipelines.label_issues.choose import choose_predictor
from curate.pipelines.label_issues.config import (
    CHUNKED_METHODS,
    CHUNKED_RANK_BY,
    LabelIssuesConfig,
)
from curate.pipelines.label_issues.multilabel import (
    cross_val_pred_probs_multilabel,
    fit_predict_multilabel,
    rank_multilabel,
)
from curate.pipelines.label_issues.plan import Plan, make_plan
from curate.pipelines.label_issues.ranking import (
    Chunks,
    Ranking,
    array_chunks,
    chunk_rows,
    rank_chunked,
    rank_in_memory,
)
from curate.pipelines.label_issues.report import (
    PAIRS_KEY,
    format_pairs,
    pair_table,
    result_columns,
    write_annotated,
    write_issues,
)
from curate.pipelines.label_issues.sources import PredProbsSource
from curate.pipelines.label_issues.summary import PREDICTOR_KEY, warn_if_weak
from curate.pipelines.label_issues.validate import check_chunk, check_shape, warn_renormalised

Log = Callable[[str], None]


def _config(config: LabelIssuesConfig | None, options: dict) -> LabelIssuesConfig:
    return resolve_config(LabelIssuesConfig, config, options, step="label_issues")


# -- pred_probs from a user source ----------------------------------------------------------
def _source_chunks(source: PredProbsSource, plan: Plan, rows: int, counter: list[int]):
    """Chunks of (labels, pred_probs) for the audited rows only, validated on the fly."""
    audited = np.zeros(plan.n_rows, dtype=bool)
    audited[plan.audit] = True

    def gen() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        counter[0] = 0
        offset = 0
        for chunk in source.iter_chunks(rows):
            sel = audited[offset : offset + len(chunk)]
            ids = plan.ids[offset : offset + len(chunk)]
            chunk, changed = check_chunk(chunk, offset=offset, source=source.name, ids=ids)
            counter[0] += changed
            if sel.all():
                yield plan.labels[offset : offset + len(chunk)], chunk
            elif sel.any():
                yield plan.labels[offset : offset + len(chunk)][sel], chunk[sel]
            offset += len(chunk)

    return gen


def _rank_chunks(chunks: Chunks, n: int, plan: Plan, cfg: LabelIssuesConfig) -> Ranking:
    """curate's two-pass chunked ranking where it applies, else cleanlab on whole arrays."""
    if cfg.method in CHUNKED_METHODS and cfg.rank_by in CHUNKED_RANK_BY:
        return rank_chunked(chunks, n, plan.n_classes, method=cfg.method, rank_by=cfg.rank_by)
    parts = list(chunks())
    labels = np.concatenate([p[0] for p in parts])
    pp = np.concatenate([p[1] for p in parts])
    del parts
    return rank_in_memory(labels, pp, method=cfg.method, rank_by=cfg.rank_by)


def _rank_source(source: PredProbsSource, plan: Plan, cfg: LabelIssuesConfig) -> Ranking:
    check_shape(source.shape, n_rows=plan.n_rows, n_classes=plan.n_classes, source=source.name)
    if plan.multilabel:
        pp = np.concatenate(list(_multilabel_chunks(source, plan, cfg)))
        labels = plan.labels_at(plan.audit)
        return rank_multilabel(labels, pp, method=cfg.method, rank_by=cfg.rank_by)
    counter = [0]
    chunks = _source_chunks(source, plan, chunk_rows(plan.n_classes, cfg.batch_size), counter)
    ranking = _rank_chunks(chunks, len(plan.audit), plan, cfg)
    warn_renormalised(counter[0], plan.n_rows, source.name)
    return ranking


def _multilabel_chunks(source: PredProbsSource, plan: Plan, cfg: LabelIssuesConfig):
    offset = 0
    audited = np.zeros(plan.n_rows, dtype=bool)
    audited[plan.audit] = True
    for chunk in source.iter_chunks(chunk_rows(plan.n_classes, cfg.batch_size)):
        chunk, _ = check_chunk(chunk, offset=offset, source=source.name, multilabel=True)
        yield chunk[audited[offset : offset + len(chunk)]]
        offset += len(chunk)


# -- pred_probs from built-in predictors ----------------------------------------------------
def _positions(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Manifest rows to load, and the audit/train positions within them."""
    if plan.train is None:
        return plan.audit, np.arange(len(plan.audit)), None
    rows = np.concatenate([plan.audit, plan.train])
    return rows, np.arange(len(plan.audit)), np.arange(len(plan.audit), len(rows))


def _predict(base: Manifest, plan: Plan, cfg: LabelIssuesConfig, log: Log) -> np.ndarray:
    members = [p for p in cfg.predictors if p != "zero_shot"]
    need = {PREDICTOR_INPUT[p] for p in members}
    rows, audit, train = _positions(plan)
    out = []
    if members:
        feats = load_features(base, rows, need=need, features=cfg.features, log=log)
        log(f"features: {feats.source or 'pixels'} for {len(rows)} rows")
        if plan.multilabel:
            return _predict_multilabel(feats.vectors, plan.labels_at(rows), audit, train, plan, cfg)
        y = np.asarray(plan.labels_at(rows))
        fit_rows = y[train] if train is not None else y[audit]
        warn_small_classes(fit_rows, plan.n_classes, cfg.folds, plan.class_names)
        for name in members:
            out.append(member_pred_probs(name, feats, y, audit, train, plan.n_classes, cfg, log))
    if "zero_shot" in cfg.predictors:
        out.append(_zero_shot(base, plan, cfg))
    return out[0] if len(out) == 1 else ensemble(out)


def _predict_multilabel(X, labels, audit, train, plan: Plan, cfg: LabelIssuesConfig):
    """One-vs-rest logistic regression: cross-validated, or fit on the train split."""
    audit_labels = [labels[i] for i in audit]
    if train is None:
        return cross_val_pred_probs_multilabel(
            X[audit], audit_labels, plan.n_classes, folds=cfg.folds, seed=cfg.seed
        )
    train_labels = [labels[i] for i in train]
    return fit_predict_multilabel(X[train], train_labels, X[audit], plan.n_classes, seed=cfg.seed)


def _zero_shot(base: Manifest, plan: Plan, cfg: LabelIssuesConfig) -> np.ndarray:
    from curate.pipelines.label_issues.zero_shot import clip_model_name, zero_shot_pred_probs

    names = plan.class_names or [str(k) for k in range(plan.n_classes)]
    return zero_shot_pred_probs(
        base, plan.audit, names, model=clip_model_name(cfg.model), pretrained=cfg.pretrained
    )


def _needs_embedding(base: Manifest, cfg: LabelIssuesConfig) -> bool:
    wants_vectors = any(PREDICTOR_INPUT.get(p) == "vectors" for p in cfg.predictors)
    return wants_vectors and cfg.features != "pixels" and S.EMBEDDING not in base.schema.names


@contextmanager
def _base_manifest(m: Manifest, cfg: LabelIssuesConfig, use_source: bool, log: Log):
    """The manifest to read features from: the input, or a temporary embedded copy."""
    if use_source or not _needs_embedding(m, cfg):
        yield m
        return
    try:
        from curate.pipelines.embed import embed
    except ImportError as exc:
        raise MissingExtraError(
            f"{m.path}: no 'embedding' column and the embed step is unavailable ({exc}); "
            "pass --features pixels for small images, or --pred-probs."
        ) from exc
    with tempfile.TemporaryDirectory(prefix="curate-label-issues-") as tmp:
        log(f"no embedding column: embedding with {cfg.model} first")
        yield embed(m, Path(tmp) / "embedded", model=cfg.model, text=False, progress=True)


def _rank(base, plan, cfg, pred_probs, log) -> tuple[Ranking, str]:
    if pred_probs is not None:
        source = PredProbsSource(pred_probs)
        return _rank_source(source, plan, cfg), source.name
    pp = _predict(base, plan, cfg, log)
    labels = plan.labels_at(plan.audit)
    if plan.multilabel:
        return rank_multilabel(labels, pp, method=cfg.method, rank_by=cfg.rank_by), cfg.predictor
    chunks = array_chunks(labels, pp, chunk_rows(plan.n_classes, cfg.batch_size))
    return _rank_chunks(chunks, len(labels), plan, cfg), cfg.predictor


def _counts(plan: Plan, ranking: Ranking) -> dict:
    labels = plan.labels_at(plan.audit)
    counts = {
        "rows": plan.n_rows,
        "audited": len(plan.audit),
        "label_issues": int(ranking.num_issues),
        "skipped": plan.skipped,
    }
    if not plan.multilabel:
        agree = float(np.mean(np.asarray(ranking.suggested_label) == labels))
        counts["agreement"] = round(agree, 6)  # accuracy of the predictions vs given labels
    if plan.train is not None:
        counts["trained_on"] = len(plan.train)
    return counts


def label_issues(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: LabelIssuesConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
    pred_probs: np.ndarray | str | os.PathLike | None = None,
    **options,
) -> Manifest:
    """Find label issues with cleanlab's confident learning on out-of-sample predictions.

    Parameters
    ----------
    manifest
        Input manifest with ``id`` and ``label`` (int, class names in the schema metadata) or
        ``labels`` (list<int>, multi-label).
    out
        Where to write the input manifest with the new columns ``label_quality`` (cleanlab's
        label quality score, lower is worse), ``is_label_issue``, ``suggested_label`` (or
        ``suggested_labels`` for multi-label) and ``suggested_confidence``; default
        ``NAME-label-issues`` beside the input.
    pred_probs
        Your model's out-of-sample predicted probabilities, one row per manifest row: an array,
        a ``.npy`` file, or a Parquet file / manifest ``path[:column]``. Without it, built-in
        predictors (``predictor=``) are cross-validated on features.
    config, **options
        A :class:`LabelIssuesConfig`, or its fields as keywords (``method``, ``predictor``,
        ``folds``, ``seed``, ``audit_split``, ``train_split``, ``zero_shot``, ``model``, ...);
        also ``issues_out`` (write the flagged rows alone too, worst first) and ``log`` (a
        callable for the run's messages).
    engine, ray_address
        ``"ray"`` (and the cluster to join) writes ``out`` with the Ray engine (see
        :mod:`curate.engines`); the predictions and ranking are made once, on this process.
    progress
        ``auto``, ``bar``, ``lines`` or ``off`` while the output is written.
    overwrite
        Replace existing outputs.

    Returns
    -------
    Manifest
        The output: every input row and column plus the new ones (null for rows not audited).
        The given->suggested class-pair table is in the schema metadata
        (``curate.label_pairs``) and in run.json, the predictor's name in ``curate.predictor``;
        ``summary.summary_lines(result)`` gives the count and the predictor's accuracy.

    Warns
    -----
    WeakPredictorWarning
        When the predictions agree with fewer than 95% of the given labels: most flags are
        then likely the predictor's own mistakes.
    """
    issues_out = options.pop("issues_out", None)
    log: Log = options.pop("log", None) or (lambda _msg: None)
    cfg = _config(config, options)
    check_engine(engine)
    progress = progress_mode(progress)
    m = open_manifest(manifest).validate(required=(S.ID,))
    out = out if out is not None else default_out(m.path, "label-issues")
    for target in (out, issues_out):
        if target is not None and Path(target).exists() and not overwrite:
            prepare_output(target, overwrite=False)  # raises before any work
    cfg, why = choose_predictor(m, cfg)
    if why and pred_probs is None:
        log(why)
    timer, t0 = Timer(), time.perf_counter()
    with _base_manifest(m, cfg, pred_probs is not None, log) as base:
        width = PredProbsSource(pred_probs).shape[1] if pred_probs is not None else None
        with timer("plan"):
            plan = make_plan(base, cfg, width=width)
        with timer("predict_and_rank"):
            ranking, source = _rank(base, plan, cfg, pred_probs, log)
        columns = result_columns(plan, ranking)
        pairs = pair_table(plan, ranking)
        log(format_pairs(pairs))
        config_record = {**dataclasses.asdict(cfg), "pred_probs": source}
        timer.seconds["total"] = round(time.perf_counter() - t0, 4)
        info = make_run_info(
            "label-issues",
            config=config_record,
            inputs={"manifest": m.path},
            counts=_counts(plan, ranking),
            timings=timer.seconds,
            label_pairs=pairs,
        )
        meta = {PAIRS_KEY: json.dumps(pairs).encode(), PREDICTOR_KEY: source.encode()}
        result = write_annotated(
            base,
            columns,
            out,
            overwrite=overwrite,
            run_info=info,
            metadata=meta,
            engine=engine,
            ray_address=ray_address,
            progress=progress,
        )
        if issues_out is not None:
            write_issues(result, issues_out, overwrite=overwrite, run_info=info)
    warn_if_weak(result)
    return result
