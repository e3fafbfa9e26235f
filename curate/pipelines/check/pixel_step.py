"""The check's first pass, a per-batch step: decode each image once and add its size, pixel
hash, perceptual hash, image-property scores and the fixed-threshold flags."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.manifests import schema as S
from curate.pipelines.check import pixels as X
from curate.pipelines.check.config import PIXEL_ISSUES, CheckConfig
from curate.pipelines.embed.batches import merge_errors
from curate.pipelines.embed.decode import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    load_image,
    read_source,
    to_rgb,
)
from curate.pipelines.embed.loader import rows_of
from curate.step import Step, add_columns, extend_schema

WIDTH, HEIGHT = "width", "height"
PIXEL_HASH, PHASH = "pixel_hash", "phash"
ERROR_PREFIX = "check: "

#: The columns this pass adds (``error`` is merged, not added).
PIXEL_FIELDS = [
    pa.field(WIDTH, pa.int32()),
    pa.field(HEIGHT, pa.int32()),
    pa.field(PIXEL_HASH, pa.string()),
    pa.field(PHASH, pa.uint64()),
    *[pa.field(name, pa.float32()) for name in X.SCORES],
    *[pa.field(f"is_{name}", pa.bool_()) for name in PIXEL_ISSUES],
]


def decode_facts(
    row: tuple[bytes | None, str | None, str | None], base_dir: str | None, max_pixels: int
) -> X.ImageFacts | tuple[str, str]:
    """One row's :class:`~curate.pipelines.check.pixels.ImageFacts`, or ``(kind, detail)``
    when its image cannot be read (the embed decoder's kinds: ``corrupt``, ``truncated``,
    ``missing_file``, ``not_downloaded``, ...)."""
    try:
        data = read_source(*row, base_dir=base_dir)
        return X.measure(to_rgb(load_image(data, max_pixels=max_pixels)))
    except ImageError as exc:
        return exc.kind, exc.detail
    except Exception as exc:  # a decoder bug on one image must not stop the run
        return "decode_failed", f"{type(exc).__name__}: {exc}"


class PixelChecks(Step):
    """Add ``width``, ``height``, ``pixel_hash``, ``phash``, the ``*_score`` columns of
    :data:`~curate.pipelines.check.pixels.SCORES` and ``is_dark`` ... ``is_odd_aspect_ratio``.

    A row whose image cannot be decoded keeps its place with null pixel columns and
    ``error`` = ``check: KIND: detail`` (after any earlier message).

    Parameters
    ----------
    config
        The :class:`~curate.pipelines.check.config.CheckConfig`.
    base_dir
        Where relative ``path`` values are looked up after the working directory.
    """

    name = "check-pixels"
    thread_safe = True  # PIL decodes and numpy work release the GIL

    def __init__(
        self,
        config: CheckConfig,
        *,
        base_dir: str | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> None:
        super().__init__(config)
        self.base_dir, self.max_pixels = base_dir, max_pixels

    def output_schema(self, schema: pa.Schema) -> pa.Schema:
        return extend_schema(schema, [*PIXEL_FIELDS, pa.field(S.ERROR, pa.string())])

    def process(self, table: pa.Table) -> pa.Table:
        facts = [decode_facts(r, self.base_dir, self.max_pixels) for r in rows_of(table)]
        ok = np.array([isinstance(f, X.ImageFacts) for f in facts], bool)
        good = [f for f in facts if isinstance(f, X.ImageFacts)]
        mask = ~ok

        def column(values, dtype) -> pa.Array:
            full = np.zeros(len(facts), dtype)
            if len(good):
                full[ok] = values
            return pa.array(full, mask=mask)

        scores = np.array([f.scores for f in good], np.float32).reshape(len(good), len(X.SCORES))
        cols: dict[str, pa.Array] = {
            WIDTH: column([f.width for f in good], np.int32),
            HEIGHT: column([f.height for f in good], np.int32),
            PIXEL_HASH: pa.array([f.pixel_hash if ok[i] else None for i, f in enumerate(facts)]),
            PHASH: column(np.array([f.phash for f in good], np.uint64), np.uint64),
        }
        for j, name in enumerate(X.SCORES):
            cols[name] = column(scores[:, j], np.float32)
        for name, threshold in self.config.pixel_thresholds().items():
            cols[f"is_{name}"] = column(
                scores[:, X.SCORES.index(f"{name}_score")] < threshold, bool
            )
        errors = [None if isinstance(f, X.ImageFacts) else f for f in facts]
        cols[S.ERROR] = merge_errors(table, errors, ERROR_PREFIX)
        return add_columns(table, cols, self.output_schema(table.schema))

    def count(self, table: pa.Table) -> dict[str, int]:
        bad = table.column(PIXEL_HASH).null_count
        return {"decoded": table.num_rows - bad, "undecodable": bad}

    def config_record(self) -> dict:
        return {**super().config_record(), "max_pixels": self.max_pixels}
