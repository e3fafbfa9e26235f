"""The embed step: manifest in, manifest out with ``embedding`` (and text) columns, resumable."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa

from curate.engines import check_engine
from curate.engines.options import progress_mode
from curate.errors import ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, default_out, open_manifest
from curate.manifests.runinfo import Timer, write_run_json
from curate.pipelines.embed.batches import (
    CLIP_SCORE,
    TEXT_EMBEDDING,
    text_column,
)
from curate.pipelines.embed.config import EmbedConfig, make_config
from curate.pipelines.embed.step import load_configured


def embed(
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike | None = None,
    *,
    config: EmbedConfig | None = None,
    engine: str = "local",
    ray_address: str | None = None,
    progress: bool | str = "auto",
    overwrite: bool = False,
    resume: bool = True,
    **options: Any,
) -> Manifest:
    """Add L2-normalised image embeddings (and text embeddings, ``clip_score``) to a manifest.

    Parameters
    ----------
    manifest
        Input manifest with an ``image`` (bytes) or ``path`` column; rows with only a ``url``
        get an error (fetch the images first, e.g. with img2dataset). A relative ``path`` is
        read from the working directory, else from the folder that holds the manifest.
    out
        Output directory, written as one shard per ``shard_rows`` input rows; default
        ``NAME-embedded`` beside the input.
    config
        An :class:`EmbedConfig`, or its fields as keyword ``options``: ``model="ViT-B-32"``,
        ``pretrained=None``, ``device="auto"``, ``dtype="float16"``, ``batch_size=256``,
        ``workers=None``, ``compile=False``, ``text=True``, ``precision``, ``image_size``,
        ``shard_rows``, ``max_pixels``, ``decode``.
    engine, ray_address
        ``"local"`` overlaps decoding in worker processes with the model; ``"ray"`` (and the
        cluster to join) runs an :class:`~curate.pipelines.embed.step.EmbedStep` per actor.
    progress
        ``auto`` (a bar on a terminal, lines in logs), ``bar``, ``lines``, ``off``
        (``True``/``False`` mean ``auto``/``off``).
    overwrite
        Replace an existing output.
    resume
        Finish an interrupted run into ``out``, skipping the shards it completed.

    Returns
    -------
    Manifest
        The output: every input row and column, plus ``embedding`` (null where the image could
        not be used, with the reason in ``error``), and ``text_embedding`` and ``clip_score``
        when the manifest has text and the encoder a text tower. ``run.json`` holds the
        counts, failures by kind and timings.
    """
    cfg = make_config(config, options)
    check_engine(engine)
    mode = progress_mode(progress)
    m = open_manifest(manifest).validate()
    out = out if out is not None else default_out(m.path, "embedded")
    _check_sources(m)
    timer = Timer()
    with timer("load_model"):
        enc = load_configured(cfg)
    text_col = text_column(m.schema) if cfg.text and enc.has_text else None
    schema = output_schema(m.schema, enc, cfg, text_col is not None)
    return _embed_on_engine(
        m,
        out,
        cfg,
        schema,
        text_col,
        enc,
        timer,
        engine=engine,
        ray_address=ray_address,
        overwrite=overwrite,
        resume=resume,
        progress=mode,
    )


def _embed_on_engine(m, out, cfg, schema, text_col, enc, timer, **run_opts) -> Manifest:
    """Run an :class:`EmbedStep` on the engine (its CPU decode stage in worker processes
    under the local engine) and add embed's own counts and timings to run.json."""
    from curate.engines import run
    from curate.pipelines.embed.step import EmbedStep

    base_dir = str(m.path.resolve().parent)
    step = EmbedStep(cfg, schema=schema, text_column=text_col, base_dir=base_dir)
    step._encoder = enc  # the driver's copy (engines that set up here reuse it)
    with timer("embed"):
        result = run(
            step,
            m,
            out,
            shard_rows=cfg.shard_rows,
            batch_size=cfg.batch_size if run_opts["engine"] == "local" else cfg.batch_size * 4,
            **run_opts,
        )
    info = result.run_info
    info["counts"] = failure_counts(info["counts"])
    info["config"] = cfg.__dict__
    info["encoder"] = enc.metadata()
    info["timings"] = {**timer.seconds, **info["timings"]}
    info["timings"]["images_per_s"] = info["timings"]["rows_per_s"]  # rows embedded in this run
    write_run_json(result.path, info)
    return Manifest(result.path)


def _check_sources(m: Manifest) -> None:
    if not {S.IMAGE, S.PATH, S.URL} & set(m.schema.names):
        raise ManifestError(
            f"{m.path}: no image source; embed needs an {S.IMAGE!r} (bytes) or {S.PATH!r} column "
            f"(it has {m.schema.names}). Ingest the images first (curate ingest)."
        )


def output_schema(schema: pa.Schema, enc, cfg: EmbedConfig, with_text: bool) -> pa.Schema:
    """Input columns (minus replaced ones), ``error``, ``embedding`` [, text, ``clip_score``]."""
    meta = enc.metadata()
    replaced = {S.EMBEDDING, TEXT_EMBEDDING, CLIP_SCORE}  # a re-embed replaces them
    fields = [f for f in schema if f.name not in replaced]
    if S.ERROR not in schema.names:
        fields.append(pa.field(S.ERROR, pa.string()))
    fields.append(S.embedding_field(S.EMBEDDING, enc.dim, cfg.dtype, **meta))
    if with_text:
        fields.append(S.embedding_field(TEXT_EMBEDDING, enc.dim, cfg.dtype, tower="text", **meta))
        fields.append(pa.field(CLIP_SCORE, pa.float32()))
    return pa.schema(fields, metadata=schema.metadata)


def failure_counts(counts: dict[str, Any]) -> dict[str, Any]:
    """The engine's counts (rows, shards, ``failed:<kind>``, ``text_embedded``) as embed
    reports them: embedded, failed, failed_by_kind, text_embedded."""
    kinds = {k.split(":", 1)[1]: v for k, v in counts.items() if k.startswith("failed:")}
    rest = {k: v for k, v in counts.items() if not k.startswith("failed:")}
    failed = sum(kinds.values())
    return {
        **rest,
        "embedded": counts["rows"] - failed,
        "failed": failed,
        "failed_by_kind": dict(sorted(kinds.items())),
        "text_embedded": counts.get("text_embedded", 0),
    }


def format_summary(counts: dict[str, Any]) -> str:
    """One human line per fact, for the CLI."""
    lines = [f"embedded {counts['embedded']:,} of {counts['rows']:,} rows"]
    if counts.get("failed"):
        kinds = ", ".join(f"{k}: {v:,}" for k, v in counts["failed_by_kind"].items())
        lines.append(f"failed {counts['failed']:,} ({kinds}); see the 'error' column")
    if counts.get("text_embedded"):
        lines.append(f"text embedded for {counts['text_embedded']:,} rows (+ clip_score)")
    if counts.get("shards_resumed"):
        lines.append(f"resumed: {counts['shards_resumed']} shard(s) were already done")
    return "\n".join(lines)
