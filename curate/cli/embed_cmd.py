"""``curate embed`` and ``curate models``: parse options, call the library, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from curate.cli.params import (
    ENGINE_PARAMS,
    argument,
    command,
    option,
    pop_engine,
)
from curate.pipelines.embed.config import EmbedConfig

_D = EmbedConfig()  # the library's defaults, shown by --help

EMBED_PARAMS = [
    argument("manifest", Path, help="Input manifest (image bytes or paths)."),
    option("out", Path | None, None, "--out", "-o",
           help="Output manifest directory; default: NAME-embedded beside the input."),
    option("model", str, _D.model, help="open_clip name, timm:<name>, efficientnet_lite0."),
    option("pretrained", str | None, _D.pretrained,
           help="Hub tag or local checkpoint; none = random."),
    option("device", str, _D.device, help="auto, cpu, cuda or cuda:N."),
    option("dtype", str, _D.dtype, help="Embedding storage: float16 or float32."),
    option("batch_size", int, _D.batch_size, help="Images per forward pass."),
    option("workers", int | None, _D.workers, help="CPU decode processes (0: a thread)."),
    option("compile", bool, _D.compile, "--compile", help="torch.compile the image tower."),
    option("text", bool, _D.text, "--text/--no-text", help="Embed the text column too."),
    option("image_size", int | None, _D.image_size, help="Override the encoder's input size."),
    option("shard_rows", int, _D.shard_rows, help="Rows per output shard (the unit of resume)."),
    option("decode", str, _D.decode, help="auto (nvjpeg on CUDA), pil or torchvision."),
    option("precision", str, _D.precision, help="auto (bf16 on CUDA), fp32, bf16, fp16."),
    option("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    *ENGINE_PARAMS,
]  # fmt: skip


def embed_cmd(**options: Any) -> None:
    """Add L2-normalised image (and text) embeddings to a manifest; resumes if interrupted."""
    from curate.cli.app import console
    from curate.errors import InputError
    from curate.pipelines.embed import embed, format_summary

    manifest, out = options.pop("manifest"), options.pop("out")
    overwrite = options.pop("overwrite")
    engine = pop_engine(options)
    try:
        config = EmbedConfig(**options)
    except ValueError as exc:
        raise InputError(f"curate embed: {exc}") from None
    result = embed(manifest, out, config=config, overwrite=overwrite, **engine)
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
