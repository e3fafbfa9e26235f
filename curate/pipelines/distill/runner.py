"""``distill()``: optimise a few synthetic images per class on one device, write a manifest."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from curate.config import resolve_config
from curate.engines import local_only
from curate.engines.options import progress_mode
from curate.engines.progress import Progress
from curate.errors import InputError
from curate.manifests.io import IN_PROGRESS, Manifest, default_out, open_manifest, prepare_output
from curate.manifests.runinfo import make_run_info
from curate.pipelines.distill import checkpoint as ckpt
from curate.pipelines.distill.config import DistillConfig
from curate.pipelines.distill.data import RealData, load_real
from curate.pipelines.distill.loop import MatchingLoop, initial_state, optimise
from curate.pipelines.distill.output import write_synthetic
from curate.pipelines.distill.select import choose_lr, cut_validation


class DistillWarning(UserWarning):
    """Distillation runs, but with something the user should know (few rows, flips on digits)."""


_NUMBER_WORDS = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}


def flip_is_unsafe(class_names: list[str]) -> bool:
    """True when the classes look like digits or characters (MNIST, SVHN, EMNIST), for which a
    horizontal flip is not a symmetry ("2" mirrored is not a "2")."""
    names = [str(n).strip().lower() for n in class_names]
    return all(re.fullmatch(r"\d|[a-z]", n) or n in _NUMBER_WORDS for n in names)


def device_for(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device here; use --device cpu or auto.")
    return name


def _check_classes(real: RealData, cfg: DistillConfig) -> list[str]:
    notes, small = [], {}
    for name, imgs in zip(real.class_names, real.images, strict=True):
        n = len(imgs)
        if cfg.init == "real" and cfg.ipc > n:
            raise InputError(
                f"class {name!r} has {n} usable images, fewer than --ipc {cfg.ipc} with "
                "--init real; lower --ipc, or use --init noise."
            )
        if n < cfg.real_per_class:
            small[name] = n
    if small:
        listed = ", ".join(f"{k!r}: {v}" for k, v in list(small.items())[:10])
        notes.append(
            f"{len(small)} class(es) have fewer usable images than --real-per-class "
            f"{cfg.real_per_class} ({listed}): each iteration uses all of theirs"
        )
    if cfg.fyi and flip_is_unsafe(real.class_names):
        notes.append(
            "--fyi joins each class's synthetic images with their horizontal flips, but these "
            f"classes ({', '.join(real.class_names[:10])}) look like digits or characters, "
            "which a flip does not preserve: FYI is expected to hurt here (the FYI paper "
            "reports losses on digits); drop --fyi unless you have checked it helps"
        )
    for note in notes:
        warnings.warn(note, DistillWarning, stacklevel=3)
    return notes


def _start(real, val, cfg: DistillConfig, out: Path, resume: bool, device: str, tick, log):
    """The state the main loop starts from and its learning rate: a resumed checkpoint (with
    the learning rate it chose, if it chose one), or a fresh start, after choosing the
    learning rate on the validation rows when ``cfg.selects_lr``."""
    state = ckpt.load(out, cfg.resume_key()) if resume else None
    if state is not None:
        chosen = state.selection["chosen_lr"] if cfg.selects_lr and state.selection else None
        return state, chosen or cfg.fixed_lr(), state.iteration
    state = initial_state(real, cfg, device)
    if cfg.selects_lr:
        _, state, _ = choose_lr(real, val, cfg, state, device, progress=tick, log=log)
        lr = state.selection["chosen_lr"]
        if log:
            log(f"chose lr {lr:g} on {len(val[1])} validation rows; continuing its run")
    else:
        lr = cfg.fixed_lr()
    ckpt.save(out, state)
    return state, lr, None


def distill(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: DistillConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    overwrite: bool = False,
    resume: bool = True,
    progress: bool | str | Callable[[int, int, float], None] = "auto",
    **options,
) -> Manifest:
    """Condense a labelled manifest into ``ipc`` synthetic images per class.

    Parameters
    ----------
    manifest
        A manifest with ``image`` bytes and an int ``label`` (class names in the metadata).
    out
        The synthetic manifest (a directory): ``id``, ``label``, ``image`` (PNG, de-normalised
        uint8), ``pixels`` (the exact float32 values, normalised), ``source_id`` (the real row
        a synthetic image started from; null for noise), with ``run.json``; default
        ``NAME-distilled`` beside the input.
    config, **options
        A :class:`DistillConfig`, or its fields as keywords (``method``, ``ipc``, ``lr``, ...).
        With ``lr="select"`` (DataDAM's default, ``auto``) the learning rate is chosen on a
        validation split cut from the training rows (:mod:`curate.pipelines.distill.select`).
    engine, ray_address
        Only ``"local"``: the synthetic images are one optimisation in one process (its
        ``device`` option picks the GPU); ``"ray"`` is an error saying so.
    overwrite, resume
        Replace an existing output; resume an interrupted one from its last checkpoint.
    progress
        ``auto`` (a bar on a terminal, a line at least every 25 s in logs), ``bar``,
        ``lines`` or ``off`` over the iterations (the candidates' included when a learning
        rate is chosen); or a callable, called as ``progress(iteration, iterations, loss)``
        after every iteration.
    **options
        :class:`DistillConfig` fields, and ``log``: called with a line per learning-rate
        candidate and the choice.

    Returns
    -------
    Manifest
        The synthetic manifest; ``run_info`` holds the method, config, the learning rate used
        (``lr``) and how it was chosen (``lr_selection``), seeds, normalisation,
        per-iteration time and peak memory.
    """
    log: Callable[[str], None] | None = options.pop("log", None)
    cfg = resolve_config(DistillConfig, config, options, step="distill")
    if not callable(progress):
        progress = progress_mode(progress)  # a bad mode fails before any work
    local_only("distill", engine, ray_address, "one optimisation of the synthetic images; "
               "device='cuda' for a GPU")  # fmt: skip
    t_start = time.perf_counter()
    src = open_manifest(manifest)
    out = out if out is not None else default_out(src.path, "distilled")
    real = load_real(src, split=cfg.split, image_size=cfg.image_size)
    val = None
    if cfg.selects_lr:
        real, *val = cut_validation(real, cfg)
    notes = [*real.notes, *_check_classes(real, cfg)]
    device = device_for(cfg.device)
    resume = resume and not overwrite
    out = prepare_output(out, overwrite=overwrite, resume=resume)
    out.mkdir(parents=True, exist_ok=True)
    (out / IN_PROGRESS).touch()
    with contextlib.ExitStack() as stack:
        total, skip = _iterations(cfg)
        label = f"distill {cfg.method} ipc {cfg.ipc}"
        tick, main_tick = _ticks(_callback(progress, label, total, stack), total, skip)
        state, lr, resumed_from, timings = _optimise(real, val, cfg, out, resume, device,
                                                     (tick, main_tick), log)  # fmt: skip
    _add_choice_timings(timings, state.selection if resumed_from is None else None)
    timings["total_s"] = round(time.perf_counter() - t_start, 3)
    info = make_run_info(
        "distill",
        config={**cfg.to_dict(), "device_used": device},
        inputs={"manifest": src.path},
        counts={
            "classes": len(real.class_names),
            "synthetic": len(state.source_ids),
            "real_per_class_available": {
                n: len(x) for n, x in zip(real.class_names, real.images, strict=True)
            },
            "skipped_rows": real.skipped,
        },
        timings=timings,
        method=cfg.method,
        lr=lr,
        lr_selection=state.selection,
        seeds={"seed": cfg.seed, "iteration_seed": "seed * 1000003 + iteration"},
        normalization={"mean": real.mean, "std": real.std, "pixels": "(x / 255 - mean) / std"},
        image_shape=[real.channels, real.side, real.side],
        resumed_from=resumed_from,
        losses=state.losses,
        notes=notes,
    )
    write_synthetic(out, state, real, cfg, info)
    ckpt.checkpoint_path(out).unlink(missing_ok=True)
    return open_manifest(out)


def _optimise(real, val, cfg, out, resume, device, ticks, log):
    """The learning-rate choice (when asked) and the matching loop, on a forked RNG."""
    import torch

    tick, main_tick = ticks
    with torch.random.fork_rng(devices=[]):
        state, lr, resumed_from = _start(real, val, cfg, out, resume, device, tick, log)
        loop = MatchingLoop(real, dataclasses.replace(cfg, lr=lr), state, device)
        state, timings = optimise(loop, state, until=cfg.iterations, out=out, progress=main_tick)
    return state, lr, resumed_from, timings


def _callback(progress, label: str, total: int, stack: contextlib.ExitStack):
    """``progress`` as ``callback(iteration, iterations, loss)`` (None for ``"off"``): a
    callable as given, a mode as a :class:`~curate.engines.progress.Progress` over ``total``
    iterations that ``stack`` closes."""
    if callable(progress) or progress == "off":
        return progress if callable(progress) else None
    bar = stack.enter_context(Progress(label, total, mode=progress, unit="iterations"))
    return lambda i, _total, _loss: bar.advance(i - bar.done)


def _add_choice_timings(timings: dict, selection: dict | None) -> None:
    """Count the candidates' iterations (run in this call) into the per-iteration figures."""
    if not selection:
        return
    spent = selection["timings"]
    done = timings["iterations_run"] + spent["iterations_run"]
    seconds = timings["optimise_s"] + spent["optimise_s"]
    cpu = (timings["cpu_s_per_iteration"] or 0.0) * timings["iterations_run"] + spent["cpu_s"]
    timings.update(
        choose_lr_s=round(spent["optimise_s"] + spent["score_s"], 3),
        iterations_run_with_candidates=done,
        s_per_iteration=round(seconds / done, 5),
        cpu_s_per_iteration=round(cpu / done, 5),
    )


def _iterations(cfg: DistillConfig) -> tuple[int, int]:
    """Every iteration this run counts (the lr candidates' when choosing one, then the
    winner's continuation), and how many of them come before the continuation's first."""
    from curate.pipelines.distill.methods import METHODS

    if not cfg.selects_lr:
        return cfg.iterations, 0
    until = min(cfg.select_iterations, cfg.iterations)
    grid = cfg.lr_grid or METHODS[cfg.method].lr_grid
    return len(grid) * until + cfg.iterations - until, (len(grid) - 1) * until


def _ticks(progress, total: int, skip: int):
    """``progress`` as the candidates' tick and the continuation's, on one count."""
    if progress is None:
        return None, None
    return (
        lambda i, loss: progress(i, total, loss),
        lambda i, loss: progress(skip + i, total, loss),
    )
