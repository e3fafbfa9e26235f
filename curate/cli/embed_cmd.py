"""``curate embed`` and ``curate models``: parse options, call the library, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.params import ENGINE_PARAMS, argument, command, option, pop_engine

EMBED_PARAMS = [
    argument("manifest", Path, help="Input manifest (image bytes or paths)."),
    option("out", Path, ..., "--out", "-o", help="Output manifest directory."),
    option("model", str, "ViT-B-32", help="open_clip name, timm:<name>, efficientnet_lite0."),
    option("pretrained", str | None, None, help="Hub tag or local checkpoint; none = random."),
    option("device", str, "auto", help="auto, cpu, cuda or cuda:N."),
    option("dtype", str, "float16", help="Embedding storage: float16 or float32."),
    option("batch_size", int, 256, help="Images per forward pass."),
    option("workers", int | None, None, help="CPU decode processes (0: a thread)."),
    option("compile", bool, False, "--compile", help="torch.compile the image tower."),
    option("text", bool, True, "--text/--no-text", help="Embed the text column too."),
    option("image_size", int | None, None, help="Override the encoder's input size."),
    option("shard_rows", int, 10_000, help="Rows per output shard (the unit of resume)."),
    option("decode", str, "auto", help="auto (nvjpeg on CUDA), pil or torchvision."),
    option("precision", str, "auto", help="auto (bf16 on CUDA), fp32, bf16, fp16."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    option("progress", bool, True, "--progress/--no-progress", help="Show a progress bar."),
    *ENGINE_PARAMS,
]


def embed_cmd(**options: Any) -> None:
    """Add L2-normalised image (and text) embeddings to a manifest; resumes if interrupted."""
    from curate.cli.app import console
    from curate.errors import InputError
    from curate.pipelines.embed import EmbedConfig, embed, format_summary

    manifest, out = options.pop("manifest"), options.pop("out")
    overwrite = options.pop("overwrite")
    engine = pop_engine(options)
    try:
        config = EmbedConfig(**options)
    except ValueError as exc:
        raise InputError(f"curate embed: {exc}") from None
    result = embed(manifest, out, overwrite=overwrite, config=config, **engine)
    info = result.run_info or {}
    console.print(format_summary(info.get("counts", {})), highlight=False)
    rate = info.get("timings", {}).get("images_per_s")
    if rate:
        console.print(f"{rate:,.1f} images/s; wrote {result.path}", highlight=False)


def models_cmd(
    pattern: Annotated[
        str | None, typer.Argument(help="Only names containing this (case-insensitive).")
    ] = None,
) -> None:
    """List the encoders ``curate embed --model`` accepts and the weights each can use."""
    from curate.cli.app import console
    from curate.pipelines.embed import list_models

    models = list_models(pattern)
    table = Table()
    width = max((len(m.name) for m in models), default=5)
    table.add_column("model", no_wrap=True, min_width=min(width, 40))
    for name in ("family", "pretrained", "installed", "note"):
        table.add_column(name, overflow="fold")
    for m in models:
        table.add_row(m.name, m.family, m.pretrained, "yes" if m.available else "no", m.note)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``embed`` and ``models`` to the app."""
    app.command("embed")(command(embed_cmd, EMBED_PARAMS))
    app.command("models")(models_cmd)
