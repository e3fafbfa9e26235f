"""Embedding as a per-batch step on the engine contract (what the Ray engine runs): each actor
loads the encoder once, decodes its batches in-process and encodes them."""

from __future__ import annotations

import pyarrow as pa

from curate.pipelines.embed.batches import ChunkResult, embed_batch
from curate.pipelines.embed.config import EmbedConfig
from curate.pipelines.embed.decode import decode_rows
from curate.pipelines.embed.loader import rows_of
from curate.pipelines.embed.registry import load_encoder
from curate.step import Resources, Step


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

    def __init__(
        self, config: EmbedConfig, *, schema: pa.Schema, text_column: str | None, base_dir: str
    ) -> None:
        super().__init__(config)
        self.schema, self.text_column, self.base_dir = schema, text_column, base_dir
        self._encoder = None

    @property
    def resources(self) -> Resources:  # type: ignore[override]
        gpu = self.config.device.startswith("cuda")
        return Resources(cpus=1.0, gpus=1.0 if gpu else 0.0)

    def setup(self) -> None:
        cfg = self.config
        if self._encoder is None:
            self._encoder = load_encoder(
                cfg.model,
                cfg.pretrained,
                device=cfg.device,
                precision=cfg.precision,
                compile=cfg.compile,
                image_size=cfg.image_size,
            ).setup()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_encoder": None}  # each process loads its own

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return self.schema

    def process(self, table: pa.Table) -> pa.Table:
        enc, cfg = self._encoder, self.config
        acc = ChunkResult(0, table)
        for start in range(0, table.num_rows, cfg.batch_size):
            part = table.slice(start, cfg.batch_size)
            pixels, errors = decode_rows(
                rows_of(part), enc.preprocess, max_pixels=cfg.max_pixels, base_dir=self.base_dir
            )
            embed_batch(enc, pixels, errors, part, self.text_column, acc)
        return acc.to_table(self.schema, cfg.dtype)

    def config_record(self) -> dict:
        return {**super().config_record(), "text_column": self.text_column}
