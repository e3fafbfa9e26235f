"""Embedding as a step on the engine contract, for every engine: a CPU stage decodes each
batch's images (in worker processes ahead of the model under the local engine), then the
encoder, loaded once per process or actor, encodes them."""

from __future__ import annotations

import re
from collections import Counter
from functools import partial
from typing import Any

import pyarrow as pa

from curate.manifests import schema as S
from curate.pipelines.embed.batches import TEXT_EMBEDDING, ChunkResult, embed_batch
from curate.pipelines.embed.config import EmbedConfig
from curate.pipelines.embed.decode import Preprocess, decode_rows, worker_init
from curate.pipelines.embed.loader import default_workers, rows_of
from curate.pipelines.embed.registry import load_encoder
from curate.step import PrepareStage, Resources, Step

#: The kind of an embed failure in ``error`` (``embed: corrupt: ...``).
FAILURE_KIND = re.compile(r"embed: ([a-z_]+):")


def load_configured(cfg: EmbedConfig):
    """The encoder ``cfg`` names, loaded and set up (model, weights, device, precision)."""
    return load_encoder(
        cfg.model,
        cfg.pretrained,
        device=cfg.device,
        precision=cfg.precision,
        compile=cfg.compile,
        image_size=cfg.image_size,
    ).setup()


def decode_table(table: pa.Table, *, pre: Preprocess, max_pixels: int, base_dir: str | None):
    """The CPU stage: ``(uint8 (n, S, S, 3), errors)`` for a batch's images."""
    return decode_rows(rows_of(table), pre, max_pixels=max_pixels, base_dir=base_dir)


class EmbedStep(Step):
    """Add ``embedding`` (and text columns) to a batch; rows that fail keep their ``error``.

    Parameters
    ----------
    config
        The :class:`~curate.pipelines.embed.config.EmbedConfig`.
    schema
        The output schema (the driver knows it from the encoder it loaded once).
    text_column
        The text column to embed, or None.
    base_dir
        Where relative ``path`` values are looked up after the working directory.
    """

    name = "embed"
    exact_shards = True  # minutes per shard on CPU: --shard-rows is the unit of resume

    def __init__(
        self, config: EmbedConfig, *, schema: pa.Schema, text_column: str | None, base_dir: str
    ) -> None:
        super().__init__(config)
        self.schema, self.text_column, self.base_dir = schema, text_column, base_dir
        self._encoder = None
        self._device_decoder = None

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        gpu = self.config.device.startswith("cuda")
        return Resources(cpus=1.0, gpus=1.0 if gpu else 0.0)

    def setup(self) -> None:
        if self._encoder is None:
            self._encoder = load_configured(self.config)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_encoder": None, "_device_decoder": None}  # loaded per process

    def _decodes_on_device(self) -> bool:
        cfg, device = self.config, self._encoder.device
        return cfg.decode == "torchvision" or (cfg.decode == "auto" and device.startswith("cuda"))

    def prepare_stage(self) -> PrepareStage | None:
        """Decoding on CPU workers (most cores on a GPU machine, half of them on CPU); None
        when JPEGs are decoded on the device (nvjpeg), which ``process`` does itself."""
        if self._decodes_on_device():
            return None
        cfg = self.config
        workers = default_workers(self._encoder.device) if cfg.workers is None else cfg.workers
        fn = partial(
            decode_table,
            pre=self._encoder.preprocess,
            max_pixels=cfg.max_pixels,
            base_dir=self.base_dir,
        )
        return PrepareStage(fn, workers=workers, depth=max(2, 2 * workers), init=worker_init)

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return self.schema

    def process_prepared(self, table: pa.Table, prepared: Any) -> pa.Table:
        pixels, errors = prepared
        batch = self.config.batch_size
        acc = ChunkResult(0, table)
        for start in range(0, table.num_rows, batch):  # forward passes of batch_size images
            part = table.slice(start, batch)
            stop = start + part.num_rows
            embed_batch(
                self._encoder, pixels[start:stop], errors[start:stop], part, self.text_column, acc
            )
        return acc.to_table(self.schema, self.config.dtype)

    def process(self, table: pa.Table) -> pa.Table:
        """nvjpeg decoding on the device (CUDA, or ``decode="torchvision"``), then encoding."""
        enc, cfg = self._encoder, self.config
        if self._device_decoder is None:
            from curate.pipelines.embed.device_decode import TensorDecoder
            from curate.pipelines.embed.loader import PoolDecoder

            cpu = PoolDecoder(
                enc.preprocess, workers=0, max_pixels=cfg.max_pixels, base_dir=self.base_dir
            )
            self._device_decoder = TensorDecoder(
                enc.preprocess, enc.device, cpu, max_pixels=cfg.max_pixels, base_dir=self.base_dir
            )
        acc = ChunkResult(0, table)
        parts = [table.slice(s, cfg.batch_size) for s in range(0, table.num_rows, cfg.batch_size)]
        futures = [self._device_decoder.submit(rows_of(p)) for p in parts]  # decode overlaps
        for part, future in zip(parts, futures, strict=True):
            pixels, errors = future.result()
            embed_batch(enc, pixels, errors, part, self.text_column, acc)
        return acc.to_table(self.schema, cfg.dtype)

    def count(self, table: pa.Table) -> dict[str, int]:
        """``failed:<kind>`` per embed failure and ``text_embedded``, summed by the engine."""
        counts: Counter = Counter()
        for error in table.column(S.ERROR).drop_null().to_pylist():
            if match := FAILURE_KIND.search(error):
                counts[f"failed:{match.group(1)}"] += 1
        if TEXT_EMBEDDING in table.column_names:
            counts["text_embedded"] = table.num_rows - table.column(TEXT_EMBEDDING).null_count
        return dict(counts)

    def config_record(self) -> dict:
        """What the output depends on (a resumed run must match it; ``batch_size``,
        ``workers`` and the device may change between the two)."""
        return {**self.config.output_key(), "text_column": self.text_column}
