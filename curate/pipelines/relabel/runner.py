"""``relabel``: a teacher's soft labels, multi-label sets and localized label maps for every row."""

from __future__ import annotations

import os
from collections.abc import Callable

from curate.config import resolve_config
from curate.manifests.io import Manifest, open_manifest
from curate.pipelines.relabel.config import RelabelConfig
from curate.pipelines.relabel.step import RelabelStep


def relabel(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    config: RelabelConfig | None = None,
    overwrite: bool = False,
    progress: str = "auto",
    shard_rows: int = 100_000,
    log: Callable[[str], None] | None = None,
    **options,
) -> Manifest:
    """Relabel every row of ``manifest`` into ``out`` with a teacher (see :class:`RelabelConfig`).

    The default teacher is EfficientNet-Lite0 with a logistic head fit out of fold on the
    given labels, so no row is labelled by a head that saw its own label.

    Parameters
    ----------
    manifest, out
        Input manifest (``id``, images, ``label`` unless the teacher is your classifier);
        output directory.
    config, **options
        A :class:`RelabelConfig`, or its fields as keywords (``teacher``, ``head``,
        ``folds``, ``seed``, ``top_k``, ``threshold``, ``image_size``, ``device``,
        ``batch_size``).
    overwrite, progress, shard_rows
        Engine options (an interrupted run resumes from its finished shards).
    log
        Progress messages (teacher fitting).

    Returns
    -------
    Manifest
        The input's rows and columns plus ``soft_classes``, ``soft_probs``, ``labels``,
        ``label_map_classes``, ``label_map_scores`` and ``error``; run.json holds the teacher
        and the counts (``relabeled``, ``failed``, ``top1_differs``, ``multi_label``).
    """
    from curate.engines import run

    cfg = resolve_config(RelabelConfig, config, options, step="relabel")
    m = open_manifest(manifest).validate()
    step = RelabelStep(cfg, log=log)
    return run(
        step, m, out, overwrite=overwrite, progress=progress, shard_rows=shard_rows,
        batch_size=cfg.batch_size,
    )  # fmt: skip
