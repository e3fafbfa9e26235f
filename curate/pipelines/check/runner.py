"""``check``: a health pass over a manifest (duplicates, leakage, outliers, unusable images),
every row kept, each check a score and a flag with its reason."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from curate.config import resolve_config
from curate.engines import check_engine, run
from curate.engines.workers import workers_for
from curate.errors import InputError
from curate.manifests.io import IN_PROGRESS, Manifest, open_manifest, prepare_output
from curate.manifests.runinfo import fingerprint, read_run_json
from curate.manifests.writer import default_out
from curate.pipelines.check.config import CheckConfig
from curate.pipelines.check.links import CheckLinks
from curate.pipelines.check.pixel_step import PixelChecks
from curate.pipelines.check.plan import make_plan


def pixels_path(out: Path) -> Path:
    """Where the first pass writes its manifest: hidden, beside the output (removed after)."""
    return out.with_name(f".{out.name}.pixels")


def _reusable(work: Path, m: Manifest, step: PixelChecks) -> bool:
    """A finished first pass over the same input and config (a rerun after the second pass
    was interrupted) is used as it is."""
    done = work.is_dir() and not (work / IN_PROGRESS).exists()
    info = read_run_json(work) if done else None
    if not info:
        return False
    same_input = info.get("inputs", {}).get("manifest", {}).get("fingerprint") == fingerprint(
        m.path
    )
    same_config = json.loads(json.dumps(step.config_record(), default=str)) == info.get("config")
    return same_input and same_config


def _first_pass(step: PixelChecks, m: Manifest, work: Path, opts: dict) -> Manifest:
    """The per-batch pass into ``work``: reused when finished for this input and config,
    resumed when interrupted, else started over."""
    if _reusable(work, m, step):
        return open_manifest(work)
    if work.exists() and not (work / IN_PROGRESS).exists():
        shutil.rmtree(work)  # finished for another input or config
    try:
        return run(step, m, work, **opts, resume=True)
    except InputError:  # an interrupted first pass of another run: start over
        shutil.rmtree(work, ignore_errors=True)
        return run(step, m, work, **opts)


def check(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: CheckConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: str = "auto",
    overwrite: bool = False,
    **options,
) -> Manifest:
    """Check every row of ``manifest`` and write it, with the checks' columns, to ``out``.

    Two passes, both written by the engine: a per-batch pass decodes each image once (size,
    pixel hash, perceptual hash, image-property scores and their flags), then a fit over the
    whole manifest links rows (exact and perceptual duplicates, embedding near-duplicates,
    leaks, outliers, odd sizes, grayscale in a colour set) and writes every row with its
    columns. Checks whose inputs are missing are skipped with one line in run.json's
    ``plan.notes``.

    Parameters
    ----------
    manifest
        Input manifest: ``id``; images (``image`` bytes or ``path``) for the pixel checks;
        an ``embedding`` column (``curate embed``) for the embedding checks; ``split`` for
        leakage between splits.
    out
        Output manifest (every row); default ``NAME-checked`` beside the input.
    config, **options
        A :class:`CheckConfig`, or its fields as keywords (``test_split``, ``against``,
        ``near_dup_threshold``, ``phash_max_distance``, ``outlier_percentile``, ...).
    engine, ray_address
        ``"local"`` or ``"ray"`` (see :mod:`curate.engines`); both give the same manifest.
    progress
        ``auto``, ``bar``, ``lines`` or ``off``.
    overwrite
        Replace an existing output.

    Returns
    -------
    Manifest
        The output; ``run_info["counts"]`` has the rows flagged per issue, ``["plan"]``
        what ran.
    """
    cfg = resolve_config(CheckConfig, config, options, step="check")
    check_engine(engine)
    m = open_manifest(manifest).validate()
    plan = make_plan(m, cfg)
    out = Path(default_out(m.path, "checked") if out is None else out)
    if not overwrite:
        prepare_output(out, resume=True)  # an existing, finished output fails before any work
    opts = {"engine": engine, "ray_address": ray_address, "progress": progress}
    with workers_for(engine, ray_address):  # one Ray session for both passes under Ray
        source, work = m, None
        if plan.pixels:
            work = pixels_path(out)
            source = _first_pass(PixelChecks(cfg, base_dir=plan.base_dir), m, work, opts)
        links = CheckLinks(cfg, plan, progress=progress)
        result = run(links, source, out, **opts, overwrite=overwrite, run_info=_info(m))
        if work is not None:
            shutil.rmtree(work, ignore_errors=True)
    return result


def _info(m: Manifest) -> dict:
    """run.json fields: the input is the manifest the user gave, not the first pass's."""
    from curate.manifests.runinfo import make_run_info

    rec = make_run_info("check", config={}, inputs={"manifest": m.path})
    return {"inputs": rec["inputs"], "history": rec["history"]}
