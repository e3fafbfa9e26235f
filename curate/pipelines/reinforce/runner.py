"""``reinforce``: views + teacher soft labels for every image, as one engine run."""

from __future__ import annotations

import os
from typing import Any

from curate.config import resolve_config
from curate.engines import check_engine, run
from curate.manifests.io import Manifest, open_manifest
from curate.manifests.runinfo import write_run_json
from curate.pipelines.reinforce.config import ReinforceConfig
from curate.pipelines.reinforce.step import ReinforceStep

TEACHER_DIR = "teacher"


def reinforce(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    config: ReinforceConfig | None = None,
    **options: Any,
) -> Manifest:
    """Reinforce a labelled manifest (ImageNet+-style): per image, ``augs`` seeded views and
    the teacher's top-k probabilities on each view, stored beside the image.

    Parameters
    ----------
    manifest
        Input with ``id``, ``image`` bytes and (for the default teacher) ``label``.
    out
        Output directory: every input row and column, plus ``content_hash``, ``aug_params``
        (float16, ``augs x len(PARAM_NAMES)``), ``aug_partner`` (the mixed-in row's id per
        view), ``soft_classes`` (int16) and ``soft_probs`` (float16), ``augs x top_k`` each;
        ``teacher/`` holds the teacher's description and fitted head.
    overwrite
        Replace an existing output (else an interrupted run resumes, shard by shard: view
        parameters are keyed by row id and view index, so reruns are identical).
    config, **options
        A :class:`ReinforceConfig` or its fields (``augs``, ``top_k``, ``policy``, ``mix``,
        ``seed``, ``teacher``, ...); ``engine="ray"``/``ray_address=`` run it on Ray;
        ``progress=`` as the engines take it.
    """
    engine = options.pop("engine", "local")
    ray_address = options.pop("ray_address", None)
    progress = options.pop("progress", "auto")
    cfg = resolve_config(ReinforceConfig, config, options, step="reinforce")
    check_engine(engine)
    m = open_manifest(manifest).validate()
    step = ReinforceStep(cfg)
    result = run(
        step,
        m,
        out,
        engine=engine,
        ray_address=ray_address,
        overwrite=overwrite,
        batch_size=cfg.batch_size,
        shard_rows=10_000,
        progress=progress,
    )
    step.teacher_.save(result.path / TEACHER_DIR)
    info = result.run_info
    info["teacher_dir"] = TEACHER_DIR
    write_run_json(result.path, info)
    return Manifest(result.path)
