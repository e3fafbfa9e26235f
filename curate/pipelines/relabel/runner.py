"""``relabel``: a teacher's soft labels, multi-label sets and localized label maps for every row."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from curate.config import resolve_config
from curate.engines.options import MODEL_SHARD_ROWS, progress_mode
from curate.manifests.io import Manifest, default_out, open_manifest
from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.relabel.step import RelabelStep

#: Options of the engine (not the step) that ``relabel`` passes through.
ENGINE_OPTIONS = ("shard_rows", "resume", "workers")


def relabel(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: RelabelConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
    **options,
) -> Manifest:
    """Relabel every row of ``manifest`` into ``out`` with a teacher (see :class:`RelabelConfig`).

    The default teacher is chosen by measured out-of-fold accuracy against the given labels
    (the pixel CNN, EfficientNet-Lite0 features + a head, or both, for small images), so no
    row is labelled by a model that saw its own label; the soft label is the posterior of the
    teacher's probabilities and the given label through the noise channel that cleanlab's
    confident joint estimates from those same out-of-fold probabilities.

    Parameters
    ----------
    manifest, out
        Input manifest (``id``, images, ``label`` unless the teacher is your classifier);
        output directory (default ``NAME-relabeled`` beside the input).
    config, **options
        A :class:`RelabelConfig`, or its fields as keywords (``teacher``, ``target``,
        ``prior``, ``temperature``, ``head``, ``folds``, ``seed``, ``weak_teacher``,
        ``top_k``, ``threshold``, ``image_size``, ``device``, ``batch_size``, ...).
    engine, ray_address, progress, overwrite
        Engine options (``local`` or ``ray``; an interrupted run resumes from its finished
        shards). ``shard_rows`` (default 10,000), ``resume`` and ``workers`` in ``options`` go
        to the engine.
    log
        Messages of the fit (the teacher choice, features, folds, the noise channel); None:
        lines on stderr unless ``progress="off"``.

    Returns
    -------
    Manifest
        The input's rows and columns plus ``soft_classes``, ``soft_probs``, ``labels``,
        ``label_map_classes``, ``label_map_scores`` and ``error``; run.json holds the teacher,
        how it was chosen (``teacher_choice``), its input size and why (``input``), the
        ``evidence`` (the teacher's accuracy, the estimated label accuracy and noise matrix)
        and the counts (``relabeled``, ``failed``, ``top1_differs``, ``multi_label``).

    Warns
    -----
    WeakTeacherWarning
        The teacher is estimated right on fewer rows than the given labels are
        (``weak_teacher="warn"``); ``"error"`` raises :class:`WeakTeacherError` instead.
    """
    from curate.engines import run

    run_options = {k: options.pop(k) for k in ENGINE_OPTIONS if k in options}
    run_options.setdefault("shard_rows", MODEL_SHARD_ROWS)  # a teacher on every row: minutes
    cfg = resolve_config(RelabelConfig, config, options, step="relabel")
    m = open_manifest(manifest).validate()
    out = out if out is not None else default_out(m.path, "relabeled")
    progress = progress_mode(progress)
    if log is None and progress != "off":
        log = _stderr_lines
    step = RelabelStep(cfg, log=log)
    return run(
        step, m, out, engine=engine, ray_address=ray_address, overwrite=overwrite,
        progress=progress, batch_size=cfg.batch_size, **run_options,
    )  # fmt: skip


def _stderr_lines(message: str) -> None:
    print(f"relabel: {message.rstrip()}", file=sys.stderr, flush=True)
