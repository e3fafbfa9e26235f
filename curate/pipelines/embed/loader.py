"""Feed the encoder: the rows' image sources, and a CPU decoder pool for callers outside the
engine (the engine runs :class:`~curate.pipelines.embed.step.EmbedStep`'s decode stage itself).
"""

from __future__ import annotations

import os
from concurrent.futures import Future
from functools import partial

import pyarrow as pa

from curate.engines.processes import process_pool
from curate.manifests import schema as S
from curate.pipelines.embed.decode import Preprocess, decode_rows, worker_init


class PoolDecoder:
    """Decode rows on CPU: ``workers`` processes, or a thread when ``workers`` is 0.

    ``submit(rows)`` returns a future of ``(uint8 (n, S, S, 3), errors)``.
    """

    def __init__(
        self, pre: Preprocess, *, workers: int, max_pixels: int, base_dir: str | None = None
    ) -> None:
        self._fn = partial(decode_rows, pre=pre, max_pixels=max_pixels, base_dir=base_dir)
        self._pool = process_pool(workers, worker_init)
        self.workers = workers

    def submit(self, rows: list) -> Future:
        return self._pool.submit(self._fn, rows)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def default_workers(device: str) -> int:
    """Decode processes: most cores on GPU (decode is the bottleneck), few on CPU."""
    n = os.cpu_count() or 1
    if device.startswith("cuda"):
        return max(1, min(16, n - 1))
    return max(1, min(8, n // 2))


def source_columns(schema: pa.Schema) -> tuple[str | None, str | None, str | None]:
    """The (image, path, url) columns present in ``schema``."""
    names = set(schema.names)
    return tuple(c if c in names else None for c in (S.IMAGE, S.PATH, S.URL))  # type: ignore[return-value]


def rows_of(table: pa.Table) -> list[tuple[bytes | None, str | None, str | None]]:
    """``(image bytes, path, url)`` per row, for the decoders."""
    cols = source_columns(table.schema)
    lists = [table.column(c).to_pylist() if c else [None] * table.num_rows for c in cols]
    return list(zip(*lists, strict=True))
