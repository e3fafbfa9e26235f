"""``evaluate``: train the same model on each subset and on random rows at equal budget."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from curate.config import resolve_config
from curate.engines import local_only
from curate.engines.options import progress_mode
from curate.engines.progress import Progress
from curate.errors import InputError, OptionError
from curate.evaluation.config import EvaluateConfig
from curate.evaluation.data import Rows, load_rows
from curate.evaluation.models import make_model
from curate.evaluation.subsets import SubsetSpec, named_subsets, resolve_subset
from curate.evaluation.testset import TestSet, choose_test, class_names
from curate.manifests import schema as S
from curate.manifests.io import Manifest, open_manifest, prepare_output

#: Seed stream of the random baseline's draws (training seeds are 0..seeds-1 themselves).
RANDOM_STREAM = 2


@dataclass
class EvaluateResult:
    """One result per subset (``results``) and what was run (``info``); see ``to_dict``."""

    results: list[dict]
    info: dict

    def __getitem__(self, subset: str) -> dict:
        for r in self.results:
            if r["subset"] == subset:
                return r
        raise KeyError(f"no subset {subset!r}; have {[r['subset'] for r in self.results]}")

    def to_dict(self) -> dict:
        """``{"results": [...], **info}``, the JSON ``--out`` writes."""
        return {"results": self.results, **self.info}

    def write_json(self, path: str | os.PathLike) -> Path:
        """Write :meth:`to_dict` as JSON (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        os.replace(tmp, path)
        return path


def draw_random(
    candidates: np.ndarray, subset: np.ndarray, labels: np.ndarray, *, seed: int, mode: str
) -> np.ndarray:
    """Seeded random pool rows (sorted indices) at the size of ``subset``.

    ``mode="uniform"`` draws ``len(subset)`` of ``candidates``; ``"stratified"`` draws, for
    every class, as many candidates of that class as ``subset`` has.
    """
    rng = np.random.default_rng([RANDOM_STREAM, seed])
    if mode == "uniform":
        return np.sort(rng.choice(candidates, len(subset), replace=False))
    classes, counts = np.unique(labels[subset], return_counts=True)
    parts = [
        rng.choice(candidates[labels[candidates] == c], n, replace=False)
        for c, n in zip(classes, counts, strict=True)
    ]
    return np.sort(np.concatenate(parts))


class _Trainer:
    """Fits the model on pool rows, scores it on the test set, caches the random draws."""

    def __init__(self, model, pool: Rows, test: TestSet, names: list[str], cfg: EvaluateConfig):
        self.model, self.labels, self.names, self.cfg = model, pool.labels, names, cfg
        self.candidates = np.flatnonzero(pool.usable)
        model.prepare(pool.features[self.candidates])
        self.X = model.transform(pool.features)
        self.X_test, self.y_test = model.transform(test.features), test.labels
        self._random: dict[tuple, tuple[float, np.ndarray]] = {}
        self._fitted: dict[int, tuple[float, np.ndarray]] = {}

    def score(self, rows: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
        """(test accuracy, per-class accuracy) of the model trained on ``rows``; a
        deterministic model (the probe) is fit once per set of rows, whatever the seed."""
        if not self.model.deterministic:
            return self._fit_score(rows, seed)
        key = hash(rows.tobytes())
        if key not in self._fitted:
            self._fitted[key] = self._fit_score(rows, seed)
        return self._fitted[key]

    def _fit_score(self, rows: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
        pred = self.model.fit_predict(
            self.X[rows], self.labels[rows], self.X_test, seed=seed, n_classes=len(self.names)
        )
        hit = pred == self.y_test
        per_class = np.array(
            [
                hit[self.y_test == c].mean() if (self.y_test == c).any() else np.nan
                for c in range(len(self.names))
            ]  # fmt: skip
        )
        return float(hit.mean()), per_class

    def random_score(self, subset: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
        """The score of the seed-th random draw at ``subset``'s size (and class counts)."""
        key: tuple = (seed, len(subset))
        if self.cfg.random == "stratified":
            key += tuple(np.bincount(self.labels[subset], minlength=len(self.names)))
        if key not in self._random:
            rows = draw_random(
                self.candidates, subset, self.labels, seed=seed, mode=self.cfg.random
            )
            self._random[key] = self.score(rows, seed)
        return self._random[key]


def _r(x: float) -> float:
    return round(float(x), 6)


def _per_class(names: list[str], values: list[np.ndarray]) -> dict[str, float | None]:
    mean = np.mean(values, axis=0)
    return {n: None if np.isnan(v) else _r(v) for n, v in zip(names, mean, strict=True)}


def _subset_result(name: str, spec: SubsetSpec, mask: np.ndarray, pool: Rows, trainer: _Trainer):
    t0 = time.perf_counter()
    excluded = pool.excluded(mask)
    rows = np.flatnonzero(mask & pool.usable)
    if not len(rows):
        raise InputError(
            f"subset {name!r}: none of its {int(mask.sum())} rows is usable for training "
            f"(excluded: {excluded}); a subset needs labelled rows with a valid "
            f"{'embedding' if trainer.model.needs == 'embedding' else 'image'}, no error, "
            "outside the test set (embed the pool first, or choose other rows)."
        )
    ours, theirs = [], []
    for seed in range(trainer.cfg.seeds):
        ours.append(trainer.score(rows, seed))
        theirs.append(trainer.random_score(rows, seed))
    acc = np.array([a for a, _ in ours])
    racc = np.array([a for a, _ in theirs])
    names = trainer.names
    return {
        "subset": name,
        "spec": "mask" if isinstance(spec, np.ndarray) else str(getattr(spec, "path", spec)),
        "rows": len(rows),
        "selected": int(mask.sum()),
        "excluded": excluded,
        "accuracy_mean": _r(acc.mean()),
        "accuracy_std": _r(acc.std()),
        "accuracies": [_r(a) for a in acc],
        "random": trainer.cfg.random,
        "random_rows": len(rows),
        "random_accuracy_mean": _r(racc.mean()),
        "random_accuracy_std": _r(racc.std()),
        "random_accuracies": [_r(a) for a in racc],
        "delta_vs_random": _r((acc - racc).mean()),
        "delta_std": _r((acc - racc).std()),
        "per_class_accuracy": _per_class(names, [p for _, p in ours]),
        "random_per_class_accuracy": _per_class(names, [p for _, p in theirs]),
        "class_counts": dict(
            zip(names, np.bincount(pool.labels[rows], minlength=len(names)).tolist(), strict=True)
        ),  # fmt: skip
        "seconds": round(time.perf_counter() - t0, 3),
    }


def evaluate(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: EvaluateConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
    subsets: Mapping[str, SubsetSpec] | Sequence[str] | None = None,
    **options: object,
) -> EvaluateResult:
    """Train the same model on each subset of ``pool`` and on random rows at equal budget.

    ``evaluate("laion", subsets={"dbp": "out/pruned", "clean": "NOT flipped"},
    test_split="test")``

    Parameters
    ----------
    manifest
        The pool the subsets are drawn from; it needs ``id`` and ``label`` and, for the
        probe, an embedding column (for the CNN, an ``image`` column of small images).
    out
        Also write the result as JSON here (``{"results": [...], ...}``). Omitted: nothing is
        written (the result is returned); evaluate makes a table, not rows of a manifest.
    subsets
        Required: ``{name: spec}`` or ``["NAME=SPEC", ...]``. A spec is a prune output (its
        rows where ``keep`` is true) or any manifest (its ids), a DuckDB ``WHERE`` expression
        over the pool (``"NOT flipped"``), or a boolean mask over the pool's rows.
    engine, ray_address
        ``"local"`` only: each subset's models train in this process (``device``,
        ``threads``); ``"ray"`` is an error saying so.
    progress
        ``auto``, ``bar``, ``lines`` or ``off``: subsets evaluated, a line at least every
        25 s in a log.
    overwrite
        Replace an existing ``out``.
    config
        A ready :class:`EvaluateConfig`; mutually exclusive with its fields as ``options``.
    **options
        test : manifest, optional
            A test manifest with the pool's classes; or use ``test_split`` /
            ``test_fraction``.
        log : callable, optional
            Called with one line of results per subset.
        model : {"probe", "cnn"}, default "probe"
            A linear probe on the embedding, or a small CNN trained on the pixels.
        seeds : int, default 3
            Training seeds 0..seeds-1; seed ``s`` also draws the ``s``-th random baseline.
        random : {"uniform", "stratified"}, default "uniform"
            Random rows from all usable pool rows, or with the subset's per-class counts.
        test_split, test_fraction, test_seed
            The test set as the pool rows whose ``split`` equals ``test_split``, or a seeded
            held-out ``test_fraction`` of the pool's usable rows.
        epochs, device, threads
            The CNN's training epochs, device (``"auto"``: CUDA when present) and CPU threads.
        probe_dim, probe_c
            The probe's PCA size (fit once on the usable pool rows, no labels) and inverse
            regularisation.
        embedding_column : str, default "embedding"

    Returns
    -------
    EvaluateResult
        Per subset: ``rows`` trained on, ``excluded`` rows by reason (error, no_label,
        invalid_embedding:*, no_image, test: never dropped silently), accuracy mean / std
        over seeds, the random baseline's at the same size, ``delta_vs_random`` (mean of the
        per-seed differences) and its std, per-class accuracies and class counts.
    """
    test: str | os.PathLike | Manifest | None = options.pop("test", None)  # type: ignore[assignment]
    log: Callable[[str], None] | None = options.pop("log", None)  # type: ignore[assignment]
    cfg = resolve_config(EvaluateConfig, config, options, step="evaluate")
    local_only("evaluate", engine, ray_address, "each subset's models train in this process")
    progress = progress_mode(progress)
    if subsets is None:
        raise OptionError("evaluate() needs subsets={name: spec} (--subset NAME=SPEC).")
    if out is not None and Path(out).exists() and not overwrite:
        prepare_output(out)  # raises before any training
    say = log or (lambda _msg: None)
    m = open_manifest(manifest).validate()
    named = named_subsets(subsets)
    ids = m.read([S.ID])[S.ID].combine_chunks()
    masks = {name: resolve_subset(name, spec, m, ids) for name, spec in named.items()}
    model = make_model(cfg)
    rows = load_rows(m, needs=model.needs, embedding_column=cfg.embedding_column, role="POOL")
    test_set = choose_test(rows, test, cfg)
    names = class_names(rows, test_set)
    trainer = _Trainer(model, rows, test_set, names, cfg)
    results = []
    with Progress(f"evaluate {cfg.model}", len(masks), mode=progress, unit="subsets") as bar:
        for name, mask in masks.items():
            r = _subset_result(name, named[name], mask, rows, trainer)
            bar.advance(1)
            say(
                f"{name}: {r['rows']} rows, accuracy {r['accuracy_mean']:.4f}, random "
                f"{r['random_accuracy_mean']:.4f} ({r['seconds']:.1f}s)"
            )
            results.append(r)
    info = {
        "pool": str(m.path),
        "pool_rows": m.num_rows,
        "usable_pool_rows": len(trainer.candidates),
        "pool_excluded": rows.excluded(np.ones(m.num_rows, bool)),
        "test": test_set.info,
        "classes": names,
        "config": asdict(cfg),
    }
    result = EvaluateResult(results, info)
    if out is not None:
        result.write_json(out)
    return result
