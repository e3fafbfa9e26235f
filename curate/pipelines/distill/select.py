"""Choose the pixel learning rate on a validation split cut from the training rows.

Each candidate learning rate distils from the same start for ``select_iterations``; its images
train ``select_nets`` fresh ConvNets (the evaluation protocol, ``select_epochs``), which are
scored on the validation rows; the best mean wins and its run continues. The test split is
never read.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np

from curate.errors import InputError
from curate.pipelines.distill import checkpoint as ckpt
from curate.pipelines.distill.config import MIN_VAL_PER_CLASS, DistillConfig
from curate.pipelines.distill.data import RealData
from curate.pipelines.distill.loop import DivergedError, MatchingLoop, optimise
from curate.pipelines.distill.methods import METHODS

Log = Callable[[str], None]


def cut_validation(real: RealData, cfg: DistillConfig) -> tuple[RealData, np.ndarray, np.ndarray]:
    """Split each class's rows (seeded) into ``val_per_class`` validation rows (at most half
    the class) and the rest, the pool distilled from.

    Returns the pool and the validation images (float32, normalised) with their labels. The
    normalisation stays the one of every training row (pixel statistics, no labels), so sets
    distilled with and without a choice can be evaluated side by side. A class that leaves
    fewer than ``MIN_VAL_PER_CLASS`` validation rows is an error stating that minimum.
    """
    rng = np.random.default_rng([cfg.seed, 17])
    pool, pool_ids, val, val_y = [], [], [], []
    for c, (imgs, ids) in enumerate(zip(real.images, real.ids, strict=True)):
        n = len(imgs)
        k = min(cfg.val_per_class, n // 2)
        if k < MIN_VAL_PER_CLASS:
            raise InputError(
                f"class {real.class_names[c]!r} has {n} training rows, so only {k} can be cut "
                f"for validation (at most half a class); choosing a learning rate needs at "
                f"least {MIN_VAL_PER_CLASS} validation rows per class ({2 * MIN_VAL_PER_CLASS} "
                "training rows). Pass a fixed lr (e.g. --lr 1), or add rows."
            )
        order = rng.permutation(n)
        keep = np.sort(order[k:])
        pool.append(imgs[keep])
        pool_ids.append([ids[i] for i in keep])
        val.append(imgs[np.sort(order[:k])])
        val_y.append(np.full(k, c))
    cut = dataclasses.replace(real, images=pool, ids=pool_ids)
    m = np.asarray(real.mean, np.float32).reshape(1, -1, 1, 1)
    s = np.asarray(real.std, np.float32).reshape(1, -1, 1, 1)
    x_val = ((np.concatenate(val).astype(np.float32) / 255.0 - m) / s).astype(np.float32)
    return cut, x_val, np.concatenate(val_y)


def _score(syn: np.ndarray, cfg: DistillConfig, x_val, y_val, device: str) -> list[float]:
    """Validation accuracy of ``select_nets`` fresh ConvNets trained on the synthetic set."""
    from curate.train.protocol import NetTraining, train_and_test

    classes = len(syn) // cfg.ipc
    labels = np.repeat(np.arange(classes), cfg.ipc)
    protocol = NetTraining(epochs=cfg.select_epochs)
    return [
        train_and_test(
            syn,
            labels,
            x_val,
            y_val,
            protocol=protocol,
            seed=cfg.seed * 1000 + net,
            classes=classes,
            device=device,
        )  # fmt: skip
        for net in range(cfg.select_nets)
    ]


def choose_lr(
    pool: RealData,
    val: tuple[np.ndarray, np.ndarray],
    cfg: DistillConfig,
    start: ckpt.State,
    device: str,
    *,
    progress: Callable[[int, float], None] | None = None,
    log: Log | None = None,
) -> tuple[float, ckpt.State, dict]:
    """Run every candidate learning rate from ``start``; the winner, its state and a record.

    ``progress(i, loss)`` counts iterations over all candidates. A candidate whose pixels
    diverge scores nothing (recorded) and cannot win; if all diverge, the error says so.
    """
    grid = cfg.lr_grid or METHODS[cfg.method].lr_grid
    until = min(cfg.select_iterations, cfg.iterations)
    x_val, y_val = val
    scores: dict[str, list[float] | None] = {}
    best: tuple[float, float, ckpt.State] | None = None
    spent = {"optimise_s": 0.0, "cpu_s": 0.0, "iterations_run": 0, "score_s": 0.0}
    for n, lr in enumerate(grid):
        run_cfg = dataclasses.replace(cfg, lr=float(lr))
        loop = MatchingLoop(pool, run_cfg, start, device)
        offset = n * until
        step = None if progress is None else (lambda i, loss, o=offset: progress(o + i, loss))
        try:
            state, t = optimise(loop, start, until=until, progress=step)
        except DivergedError:
            scores[repr(lr)] = None
            if log:
                log(f"lr {lr:g}: the pixels diverged (NaN/inf); not a candidate")
            continue
        spent["optimise_s"] += t["optimise_s"]
        spent["cpu_s"] += t["cpu_s_per_iteration"] * t["iterations_run"]
        spent["iterations_run"] += t["iterations_run"]
        t0 = time.perf_counter()
        accs = _score(state.syn.detach().cpu().numpy(), cfg, x_val, y_val, device)
        spent["score_s"] += time.perf_counter() - t0
        scores[repr(lr)] = accs
        if log:
            log(f"lr {lr:g}: validation accuracy {np.mean(accs):.4f} ({len(y_val)} rows)")
        if best is None or np.mean(accs) > best[0]:
            best = (float(np.mean(accs)), float(lr), state)
    if best is None:
        raise DivergedError(
            f"every candidate learning rate {list(grid)} made the pixels diverge; pass a "
            "smaller lr_grid (--lr-grid) or a fixed --lr."
        )
    record = {
        "chosen_lr": best[1],
        "grid": [float(v) for v in grid],
        "validation_accuracy": scores,
        "validation_rows": int(len(y_val)),
        "val_per_class": cfg.val_per_class,
        "validation": "seeded cut of each class's training rows (at most half), left out of "
        "the distillation; the test split is never read",
        "select_iterations": until,
        "select_epochs": cfg.select_epochs,
        "select_nets": cfg.select_nets,
        "timings": {k: round(v, 3) for k, v in spent.items()},
    }
    return best[1], dataclasses.replace(best[2], selection=record), record
