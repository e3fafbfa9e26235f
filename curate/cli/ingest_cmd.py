"""``curate ingest``: turn an image folder, Parquet, HF dataset, tars or arrays into a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from curate.cli.params import PROGRESS_PARAM, argument, command, option
from curate.errors import InputError


def parse_map(items: list[str] | None) -> dict[str, str]:
    """``["old=new", ...]`` -> ``{"old": "new"}``; a malformed item names itself and the fix."""
    out: dict[str, str] = {}
    for item in items or []:
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise InputError(f"--map {item!r}: expected old=new, e.g. --map caption=text.")
        out[old.strip()] = new.strip()
    return out


def summary_lines(manifest) -> list[str]:
    """The lines ``curate ingest`` prints: rows, failures by kind, notes, output path."""
    info = manifest.run_info or {}
    counts = info.get("counts", {})
    seconds = info.get("timings", {}).get("total_s")
    fmt = info.get("config", {}).get("format", "?")
    rows = counts.get("rows", manifest.num_rows)
    rate = f" in {seconds:.1f} s ({rows / seconds:,.0f} rows/s)" if seconds else ""
    lines = [f"ingested {rows:,} rows ({fmt}){rate}"]
    failures = counts.get("failures") or {}
    if failures:
        kinds = ", ".join(f"{k}: {n}" for k, n in sorted(failures.items(), key=lambda kv: -kv[1]))
        lines.append(
            f"{counts.get('error_rows', 0):,} rows kept with an error ({kinds}); "
            "see the error column"
        )
    else:
        lines.append("no rows with errors")
    for note, n in (counts.get("notes") or {}).items():
        lines.append(f"note: {note}: {n}")
    if info.get("labels"):
        from curate.manifests.ingest.labels import mapping_line

        lines.append(mapping_line(info["labels"]))
    elif manifest.class_names:
        lines.append(
            f"{len(manifest.class_names)} classes: {', '.join(manifest.class_names[:10])}"
            + (" ..." if len(manifest.class_names) > 10 else "")
        )
    lines.append(f"wrote {manifest.path}")
    return lines


#: The command's options, in one list (typer reads them from the function signature).
PARAMS = [
    argument("src", Path, help="Folder, .parquet, HF dataset folder, .tar shard(s) or .npz."),
    option("out", Path | None, None, "--out", "-o",
           help="Output manifest: a folder or a .parquet file (default: NAME-ingested beside "
           "the source)."),
    option("format", str | None, None, "--format", "-f",
           help="imagefolder, parquet, hf, webdataset or numpy (default: detected)."),
    option("map", list[str] | None, None, "--map",
           help="Rename a source column first: old=new (repeatable)."),
    option("embeddings", Path | None, None, "--embeddings",
           help="An .npy (rows, dim) of precomputed embeddings aligned with the input rows."),
    option("embedding_column", str | None, None, "--embedding-column",
           help="A list column of the source holding precomputed embeddings."),
    option("workers", int | None, None, "--workers", "-j",
           help="Processes that read and decode images (default: all CPUs)."),
    option("split", str | None, None, "--split",
           help="A split name for every row (where the source has no splits)."),
    option("labels", Path | None, None, "--labels",
           help="numpy: the .npy of labels that goes with an .npy of images."),
    option("class_names", str | None, None, "--class-names",
           help="Class names for the labels: a,b,c or a file with one name per line; string "
           "labels are numbered in this order (default: sorted)."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    PROGRESS_PARAM,
]  # fmt: skip


def ingest_cmd(**options: Any) -> None:
    """Ingest a dataset into a manifest; unreadable images keep their row with an error."""
    from rich.console import Console

    from curate.manifests.ingest import ingest
    from curate.manifests.ingest.arrays import read_class_names

    names = options.pop("class_names")
    m = ingest(
        options.pop("src"),
        options.pop("out"),
        format=options.pop("format"),
        overwrite=options.pop("overwrite"),
        progress=options.pop("progress"),
        column_map=parse_map(options.pop("map")),
        class_names=read_class_names(names) if names else None,
        **options,
    )
    console = Console()
    for line in summary_lines(m):
        console.print(line, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``ingest`` to the app."""
    app.command("ingest")(command(ingest_cmd, PARAMS))
