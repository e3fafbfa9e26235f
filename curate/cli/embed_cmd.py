"""``curate embed`` and ``curate models``: parse options, call the library, print a summary."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table


def _opt(name: str, annotation: Any, default: Any, *decls: str, help: str) -> inspect.Parameter:
    info = typer.Option(*decls, help=help) if decls else typer.Option(help=help)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, annotation=Annotated[annotation, info], default=default)


def _command(fn, params: list[inspect.Parameter]):
    """Give ``fn(**options)`` a typer signature: one list holds the command's many options."""
    fn.__signature__ = inspect.Signature(params)
    return fn


EMBED_PARAMS = [
    inspect.Parameter(
        "manifest",
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[Path, typer.Argument(help="Input manifest (image bytes or paths).")],
    ),
    _opt("out", Path, ..., "--out", "-o", help="Output manifest directory."),
    _opt("model", str, "ViT-B-32", help="open_clip name, timm:<name>, efficientnet_lite0."),
    _opt("pretrained", str | None, None, help="Hub tag or local checkpoint; none = random."),
    _opt("device", str, "auto", help="auto, cpu, cuda or cuda:N."),
    _opt("dtype", str, "float16", help="Embedding storage: float16 or float32."),
    _opt("batch_size", int, 256, help="Images per forward pass."),
    _opt("workers", int | None, None, help="CPU decode processes (0: a thread)."),
    _opt("compile", bool, False, "--compile", help="torch.compile the image tower."),
    _opt("text", bool, True, "--text/--no-text", help="Embed the text column too."),
    _opt("image_size", int | None, None, help="Override the encoder's input size."),
    _opt("shard_rows", int, 10_000, help="Rows per output shard (the unit of resume)."),
    _opt("decode", str, "auto", help="auto (nvjpeg on CUDA), pil or torchvision."),
    _opt("precision", str, "auto", help="auto (bf16 on CUDA), fp32, bf16, fp16."),
    _opt("overwrite", bool, False, "--overwrite", help="Replace an existing output."),
    _opt("progress", bool, True, "--progress/--no-progress", help="Show a progress bar."),
]


def embed_cmd(**options: Any) -> None:
    """Add L2-normalised image (and text) embeddings to a manifest; resumes if interrupted."""
    from curate.cli.app import console
    from curate.errors import InputError
    from curate.pipelines.embed import EmbedConfig, embed, format_summary

    manifest, out = options.pop("manifest"), options.pop("out")
    overwrite = options.pop("overwrite")
    try:
        config = EmbedConfig(**options)
    except ValueError as exc:
        raise InputError(f"curate embed: {exc}") from None
    result = embed(manifest, out, overwrite=overwrite, config=config)
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
    app.command("embed")(_command(embed_cmd, EMBED_PARAMS))
    app.command("models")(models_cmd)
