"""The embed step: manifest in, manifest out with ``embedding`` (and text) columns, resumable."""

from __future__ import annotations

import json
import os
import re
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from curate._malloc import reuse_heap
from curate.engines import check_engine
from curate.engines.options import progress_mode
from curate.engines.progress import Progress
from curate.errors import InputError, ManifestError
from curate.manifests import schema as S
from curate.manifests.io import Manifest, ManifestWriter, default_out, open_manifest
from curate.manifests.runinfo import Timer, make_run_info, write_run_json
from curate.pipelines.embed.batches import (
    CLIP_SCORE,
    TEXT_EMBEDDING,
    ChunkResult,
    embed_batch,
    text_column,
)
from curate.pipelines.embed.config import EmbedConfig, make_config
from curate.pipelines.embed.loader import (
    PoolDecoder,
    default_workers,
    iter_chunks,
    prefetch,
    rows_of,
)
from curate.pipelines.embed.registry import load_encoder

RESUME_MARKER = "_CURATE_EMBED.json"
_KIND = re.compile(r"embed: ([a-z_]+):")


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
        enc = load_encoder(
            cfg.model,
            cfg.pretrained,
            device=cfg.device,
            precision=cfg.precision,
            compile=cfg.compile,
            image_size=cfg.image_size,
        ).setup()
    text_col = text_column(m.schema) if cfg.text and enc.has_text else None
    schema = output_schema(m.schema, enc, cfg, text_col is not None)
    if engine != "local":
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
    writer = ManifestWriter(
        out, overwrite=overwrite, resume=resume and not overwrite, schema=schema
    )
    _check_resumable(writer.out, cfg, m)
    done = writer.completed_shards()
    try:
        with timer("embed"):
            _run(m, writer, enc, cfg, done, text_col, mode)
    except BaseException:
        writer.abort()
        raise
    counts = summarize(writer.out, m.num_rows, resumed=len(done))
    seconds = timer.seconds.get("embed", 0.0)
    info = make_run_info(
        "embed",
        config=cfg.__dict__,
        inputs={"manifest": m.path},
        counts=counts,
        timings={**timer.seconds, "images_per_s": round(_rate(m, cfg, done, seconds), 2)},
        encoder=enc.metadata(),
    )
    writer.close(info)
    (writer.out / RESUME_MARKER).unlink(missing_ok=True)
    return Manifest(writer.out)


def _embed_on_engine(m, out, cfg, schema, text_col, enc, timer, **run_opts) -> Manifest:
    """The same embeddings as the local pipeline, as an :class:`EmbedStep` on an engine."""
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
            batch_size=cfg.batch_size * 4,
            **run_opts,
        )
    info = result.run_info
    counts = summarize(result.path, m.num_rows, resumed=info["counts"]["shards_resumed"])
    info["counts"] = {**info["counts"], **counts}
    info["config"] = cfg.__dict__
    info["encoder"] = enc.metadata()
    seconds = timer.seconds.get("embed", 0.0)
    info["timings"] = {**timer.seconds, **info["timings"]}
    info["timings"]["images_per_s"] = round(m.num_rows / seconds, 2) if seconds else 0.0
    write_run_json(result.path, info)
    return Manifest(result.path)


def _rate(m: Manifest, cfg: EmbedConfig, done: set[int], seconds: float) -> float:
    todo = max(0, m.num_rows - sum(_chunk_len(m.num_rows, cfg.shard_rows, i) for i in done))
    return todo / seconds if seconds > 0 else 0.0


def _chunk_len(n: int, size: int, i: int) -> int:
    return max(0, min(size, n - i * size))


def _check_sources(m: Manifest) -> None:
    if not {S.IMAGE, S.PATH, S.URL} & set(m.schema.names):
        raise ManifestError(
            f"{m.path}: no image source; embed needs an {S.IMAGE!r} (bytes) or {S.PATH!r} column "
            f"(it has {m.schema.names}). Ingest the images first (curate ingest)."
        )


def _check_resumable(out: Path, cfg: EmbedConfig, m: Manifest) -> None:
    """Record the run's options; refuse to resume a run made with other options or input."""
    from curate.manifests.runinfo import fingerprint

    key = {"config": cfg.output_key(), "input": fingerprint(m.path), "rows": m.num_rows}
    marker = out / RESUME_MARKER
    if marker.exists():
        before = json.loads(marker.read_text())
        if before != json.loads(json.dumps(key)):
            diff = sorted(
                k for k in key["config"] if before.get("config", {}).get(k) != key["config"][k]
            ) or ["input manifest"]
            raise InputError(
                f"{out}: holds an interrupted embed run with different {', '.join(diff)}; "
                "rerun with the same options to resume, or pass --overwrite to start over."
            )
    elif any(out.glob("part-*.parquet")):
        raise InputError(
            f"{out}: holds shards not written by curate embed; pass --overwrite to replace them."
        )
    tmp = out / f".{RESUME_MARKER}.tmp"
    tmp.write_text(json.dumps(key))
    os.replace(tmp, marker)


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


def _decoder(enc, cfg: EmbedConfig, base_dir: str):
    device = enc.device
    workers = default_workers(device) if cfg.workers is None else cfg.workers
    pool = PoolDecoder(
        enc.preprocess, workers=workers, max_pixels=cfg.max_pixels, base_dir=base_dir
    )
    use_tv = cfg.decode == "torchvision" or (cfg.decode == "auto" and device.startswith("cuda"))
    if not use_tv:
        return pool, [pool]
    from curate.pipelines.embed.device_decode import TensorDecoder

    tv = TensorDecoder(enc.preprocess, device, pool, max_pixels=cfg.max_pixels, base_dir=base_dir)
    return tv, [tv, pool]


def _jobs(chunks: Iterator, decoder, batch_size: int) -> Iterator:
    """Submit decode tasks as chunks arrive; yields ``(chunk index, chunk, start, future)``."""
    for ci, table in chunks:
        for start in range(0, table.num_rows, batch_size):
            part = table.slice(start, batch_size)
            yield ci, table, start, decoder.submit(rows_of(part))


def _ahead(items: Iterator, n: int) -> Iterator:
    """Keep ``n`` items pulled ahead of the consumer (so their decode work is in flight)."""
    buf: deque = deque()
    for item in items:
        buf.append(item)
        if len(buf) > n:
            yield buf.popleft()
    while buf:
        yield buf.popleft()


@reuse_heap()  # each batch reuses the last one's tensors' memory: no page faults
def _run(m: Manifest, writer, enc, cfg: EmbedConfig, done: set[int], text_col, mode: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    decoder, closers = _decoder(enc, cfg, str(m.path.resolve().parent))
    total = m.num_rows - sum(_chunk_len(m.num_rows, cfg.shard_rows, i) for i in done)
    writes: list = []
    # batches decoded ahead of the model: enough to keep every worker busy; device-decoded
    # batches are float tensors in GPU memory, so only a few of them
    depth = 3 if len(closers) > 1 else max(2, 2 * (closers[-1].workers or 1))
    with (
        ThreadPoolExecutor(1, thread_name_prefix="curate-write") as write_pool,
        Progress(f"embed {enc.model_id}", total, mode=mode) as bar,
    ):
        try:
            chunks = prefetch(iter_chunks(m, cfg.shard_rows, skip=done), depth=2)
            acc: ChunkResult | None = None
            for ci, table, start, future in _ahead(_jobs(chunks, decoder, cfg.batch_size), depth):
                if acc is None or acc.index != ci:
                    acc = ChunkResult(ci, table)
                pixels, errors = future.result()
                part = table.slice(start, len(errors))
                embed_batch(enc, pixels, errors, part, text_col, acc)
                bar.advance(len(errors))
                if acc.rows_done == table.num_rows:
                    out_table = acc.to_table(writer.schema, cfg.dtype)
                    writes.append(write_pool.submit(writer.write_shard, ci, out_table))
                    bar.shard_done(ci, -(-m.num_rows // cfg.shard_rows))
                    acc = None
                    _raise_failed(writes)
        finally:
            for c in closers:
                c.close()
        for w in writes:
            w.result()


def _raise_failed(writes: list) -> None:
    while writes and writes[0].done():
        writes.pop(0).result()


def summarize(out: Path, rows: int, *, resumed: int = 0) -> dict[str, Any]:
    """Counts from the written shards: embedded, failed by kind, text embedded."""
    kinds: Counter = Counter()
    text_rows = 0
    files = sorted(out.glob("part-*.parquet"))
    for f in files:
        names = pq.read_schema(f).names
        cols = [c for c in (S.ERROR, TEXT_EMBEDDING) if c in names]
        t = pq.read_table(f, columns=cols)
        errs = t.column(S.ERROR).drop_null().to_pylist() if S.ERROR in cols else []
        for e in errs:
            match = _KIND.search(e)
            if match:
                kinds[match.group(1)] += 1
        if TEXT_EMBEDDING in cols:
            text_rows += t.num_rows - t.column(TEXT_EMBEDDING).null_count
    failed = sum(kinds.values())
    return {
        "rows": rows,
        "embedded": rows - failed,
        "failed": failed,
        "failed_by_kind": dict(sorted(kinds.items())),
        "text_embedded": text_rows,
        "shards": len(files),
        "shards_resumed": resumed,
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
