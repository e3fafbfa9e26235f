"""Export a curated manifest for a training loop or another tool: an ImageFolder tree,
WebDataset shards, or Parquet with vectors as plain float lists.

Export writes files that are not a manifest (images, tars), so it is not an engine step: it
streams the selected rows batch by batch into a staging folder beside the output and renames
that folder into place when it is whole, so nothing reads as complete after a crash. Parquet
goes through :class:`~curate.manifests.writer.ManifestWriter` rather than the engine because
the engine's contract keeps every row, and an export drops the rows that were not kept.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from curate.config import resolve_config
from curate.engines import Progress, check_engine
from curate.engines.options import progress_mode
from curate.errors import InputError, OutputExistsError
from curate.manifests.io import Manifest, open_manifest
from curate.manifests.runinfo import make_run_info, run_json_path, write_run_json
from curate.pipelines.export.config import FORMATS, ExportConfig
from curate.pipelines.export.formats import WRITERS, class_folders, float_list_field
from curate.pipelines.export.images import INDEX, file_stem, image_ext
from curate.pipelines.export.select import selected_batches, uses_keep

__all__ = [
    "FORMATS",
    "INDEX",
    "ExportConfig",
    "class_folders",
    "default_out",
    "export",
    "file_stem",
    "float_list_field",
    "image_ext",
]


def default_out(manifest_path: Path, fmt: str) -> Path:
    """Beside the input: ``NAME-export.parquet`` for Parquet, ``NAME-<format>`` otherwise."""
    name = manifest_path.stem if manifest_path.suffix == ".parquet" else manifest_path.name
    if fmt == "parquet":
        return manifest_path.with_name(f"{name}-export.parquet")
    return manifest_path.with_name(f"{name}-{fmt}")


def export(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: ExportConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: str = "auto",
    overwrite: bool = False,
    **options: object,
) -> Manifest:
    """Write the kept rows of ``manifest`` to ``out`` as ImageFolder, WebDataset or Parquet.

    ``export(m, "subset", format="imagefolder")``: the options are the fields of
    :class:`ExportConfig` (or pass ``config=``).

    Parameters
    ----------
    manifest, out
        The manifest to export, and where: a folder (ImageFolder, WebDataset, or Parquet
        shards) or, for Parquet, one ``NAME.parquet`` file (what ``pd.read_parquet`` reads
        whole; a folder also holds ``run.json``). Default: ``NAME-<format>`` (Parquet:
        ``NAME-export.parquet``) beside the input.
    config
        A ready :class:`ExportConfig`; mutually exclusive with ``options``.
    engine, ray_address
        Accepted for the common call shape; export streams from this process either way
        (it is bound by the disk, not by compute).
    progress
        ``auto``, ``bar``, ``lines`` or ``off``.
    overwrite
        Replace an existing output (only once the new one is whole).
    **options
        format : str, default "parquet"
            ``"imagefolder"``, ``"webdataset"`` or ``"parquet"``.
        all_rows : bool
            Every row, not only ``keep = true`` (where a ``keep`` column exists).
        where : str
            A DuckDB SQL condition on the columns; only rows where it holds are written.
        shard_size : int, default 10000
            webdataset: samples per tar shard.
        batch_size : int, default 1024
            Rows read at a time.

    Returns
    -------
    Manifest
        For Parquet, the written rows. For the image formats, the index beside the files
        (``index.parquet``: ``id``, ``label``, the ``file`` and ``key`` each row went to, or
        its ``skip_reason``). ``run_info["counts"]`` has the rows read, selected, exported
        and skipped by reason (``error``, ``no_image``, ``no_label``, ``unknown_image_format``).
    """
    cfg = resolve_config(ExportConfig, config, options, step="export")
    check_engine(engine)
    progress = progress_mode(progress)  # a bad mode fails before any work
    m = open_manifest(manifest).validate()
    out = Path(out) if out is not None else default_out(m.path, cfg.format)
    _check_out(m, out, overwrite)
    staging = out.with_name(f".{out.name}.export-tmp")
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted export left
    single = cfg.format == "parquet" and out.suffix == ".parquet"
    target = staging / out.name if single else staging
    t0 = time.perf_counter()
    writer = WRITERS[cfg.format](target, m, cfg)
    try:
        counts = _stream(writer, m, cfg, progress)
        writer.close()
        info = make_run_info(
            "export",
            config={**vars(cfg), "out": str(out)},
            inputs={"manifest": m.path},
            counts=counts,
            timings={"total_s": round(time.perf_counter() - t0, 3)},
            **({"class_names": m.class_names} if m.class_names else {}),
        )
        write_run_json(target, info)
    except BaseException:
        writer.abort()
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(staging, out, single=single)
    return Manifest(out)


def _check_out(m: Manifest, out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: output already exists; pass --overwrite to replace it.")
    src, dst = m.path.resolve(), out.resolve()
    if dst == src or dst.is_relative_to(src) or src.is_relative_to(dst):
        raise InputError(
            f"{out}: the export must not be the manifest, lie inside it or contain it; "
            "choose another output path."
        )


def _stream(writer, m: Manifest, cfg: ExportConfig, progress: str) -> dict:
    """Feed the selected rows to ``writer``; the counts for run.json."""
    read = selected = 0
    batches = selected_batches(m, cfg, writer.columns())
    with Progress(f"export {cfg.format}", m.num_rows, mode=progress) as bar:
        for rows, n in batches:
            writer.write(rows)
            read, selected = read + n, selected + rows.num_rows
            bar.advance(n)
    rules = (["keep = true"] if uses_keep(m, cfg) else []) + ([cfg.where] if cfg.where else [])
    rule = " and ".join(f"({r})" if len(rules) > 1 else r for r in rules) or "all rows"
    return {"rows": read, "selected": selected, "selected_by": rule, **writer.counts()}


def _publish(staging: Path, out: Path, *, single: bool) -> None:
    """Move the whole staged output into place (replacing an old one only now)."""
    if single:
        os.replace(staging / out.name, out)
        os.replace(run_json_path(staging / out.name), run_json_path(out))
        staging.rmdir()
        return
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    os.replace(staging, out)
