"""``curate export``: write a curated subset as ImageFolder, WebDataset shards or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from curate.cli.params import ENGINE_PARAMS, argument, command, option, pop_engine
from curate.pipelines.export.config import FORMATS, ExportConfig

_D = ExportConfig()

PARAMS = [
    argument("manifest", Path, help="The manifest to export (e.g. curate prune's output)."),
    option("out", Path | None, None, "--out", "-o",
           help="Output folder (Parquet: a folder or NAME.parquet); default: beside the input."),
    option("format", str, _D.format, "--format", "-f", help=f"One of {', '.join(FORMATS)}."),
    option("all_rows", bool, _D.all_rows, "--all",
           help="Export every row (default: keep = true rows where a keep column exists)."),
    option("where", str | None, _D.where, "--where",
           help="Only rows where this DuckDB SQL condition holds, e.g. \"split = 'train'\"."),
    option("shard_size", int, _D.shard_size, "--shard-size",
           help="webdataset: samples per tar shard."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    *ENGINE_PARAMS,
]  # fmt: skip


def summary_lines(m) -> list[str]:
    """What ``curate export`` prints: rows exported and skipped, and how to read the output."""
    info = m.run_info or {}
    counts, fmt = info.get("counts", {}), info.get("config", {}).get("format")
    lines = [
        f"exported {counts.get('exported', 0):,} of {counts.get('rows', 0):,} rows "
        f"({counts.get('selected', 0):,} selected: {counts.get('selected_by')}) as {fmt} "
        f"-> {info.get('config', {}).get('out')}"
    ]
    skipped = counts.get("skipped") or {}
    if skipped:
        kinds = ", ".join(f"{k}: {n:,}" for k, n in sorted(skipped.items(), key=lambda kv: -kv[1]))
        n = sum(skipped.values())
        lines.append(f"skipped {n:,} row{'s' * (n != 1)} ({kinds}); index.parquet says which")
    if fmt == "imagefolder":
        lines.append(f"{counts.get('classes', 0)} class folders: torchvision ImageFolder reads it")
        if counts.get("folder_order_matches_labels") is False:
            lines.append(
                "note: the class names are not in sorted order, so ImageFolder numbers the "
                "classes otherwise than the manifest's labels (its .classes names them)"
            )
    elif fmt == "webdataset":
        n = counts.get("shards", 0)
        last = f"{max(n - 1, 0):06d}"
        lines.append(f"{n} shard(s): {info['config']['out']}/shard-{{000000..{last}}}.tar")
    return lines


def export_cmd(**options: Any) -> None:
    """Export the kept rows as an ImageFolder tree, WebDataset shards or Parquet (vectors as
    float lists); rows without a usable image are skipped and counted."""
    from curate.cli.app import console
    from curate.pipelines.export import export

    manifest, out = options.pop("manifest"), options.pop("out")
    overwrite = options.pop("overwrite")
    m = export(manifest, out, overwrite=overwrite, **pop_engine(options), **options)
    for line in summary_lines(m):
        console.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``export`` to the app."""
    app.command("export")(command(export_cmd, PARAMS))
