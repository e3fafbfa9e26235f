"""``reinforce``: views + teacher soft labels for every image, as one engine run."""

from __future__ import annotations

import os
from typing import Any

from curate.config import resolve_config
from curate.engines import check_engine, run
from curate.manifests import schema as S
from curate.manifests.io import Manifest, default_out, open_manifest
from curate.manifests.runinfo import write_run_json
from curate.pipelines.reinforce.calibrate import calibrate, teacher_sha256
from curate.pipelines.reinforce.config import ReinforceConfig
from curate.pipelines.reinforce.step import ReinforceStep
from curate.train.calibration import CALIBRATION_JSON

TEACHER_DIR = "teacher"


def reinforce(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: ReinforceConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
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
        ``teacher/`` holds the teacher's description and fitted head. Default
        ``NAME-reinforced`` beside the input.
    config, **options
        A :class:`ReinforceConfig` or its fields (``augs``, ``top_k``, ``policy``, ``mix``,
        ``seed``, ``teacher``, ``shard_rows``, ...).
    engine, ray_address
        ``"local"`` or ``"ray"`` (and the cluster to join).
    progress
        ``auto``, ``bar``, ``lines`` or ``off``.
    overwrite
        Replace an existing output (else an interrupted run resumes, shard by shard: view
        parameters are keyed by row id and view index, so reruns are identical).
    """
    cfg = resolve_config(ReinforceConfig, config, options, step="reinforce")
    check_engine(engine)
    m = open_manifest(manifest).validate()
    out = out if out is not None else default_out(m.path, "reinforced")
    step = ReinforceStep(cfg)
    result = run(
        step,
        m,
        out,
        engine=engine,
        ray_address=ray_address,
        overwrite=overwrite,
        batch_size=cfg.batch_size,
        shard_rows=cfg.shard_rows,
        progress=progress,
    )
    step.teacher_.save(result.path / TEACHER_DIR)
    info = result.run_info
    info["teacher_dir"] = TEACHER_DIR
    info["teacher_sha256"] = teacher_sha256(result.path / TEACHER_DIR)
    (result.path / CALIBRATION_JSON).unlink(missing_ok=True)  # fit for the old teacher, if any
    info["calibration"] = {"split": cfg.calibration_split}
    write_run_json(result.path, info)
    if cfg.calibration_split and _has_rows(result, cfg.calibration_split):
        cal = calibrate(result, split=cfg.calibration_split, held_out=_held_out(cfg))
        info["calibration"].update(
            rows=cal["rows"],
            held_out=cal["held_out"],
            teacher_temperature_on_views=cal["teacher_on_views"]["temperature"],
        )
    else:
        info["calibration"]["note"] = (
            f"no labelled rows of split {cfg.calibration_split!r}: no held-out rows to fit a "
            "student's temperature on"
        )
    write_run_json(result.path, info)
    return Manifest(result.path)


def _has_rows(m: Manifest, split: str) -> bool:
    if S.SPLIT not in m.schema.names:
        return False
    t = m.read([S.SPLIT, S.LABEL])
    return any(s == split and y is not None for s, y in zip(*t.to_pydict().values(), strict=True))


def _held_out(cfg: ReinforceConfig) -> bool | None:
    """Whether the teacher never saw the calibration rows: True when its head was fit on
    another split, False when on every labelled row, None for a pretrained classifier (the
    user's word: rows of the calibration split must be ones it did not train on)."""
    members = [s.strip() for s in (cfg.teacher or "").split("+") if s.strip()]
    if members and all(s.startswith(("classifier:", "imagenet")) for s in members):
        return None
    return cfg.teacher_split is not None and cfg.teacher_split != cfg.calibration_split
