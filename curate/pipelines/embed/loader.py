"""Feed the encoder: read input chunks, decode batches in worker processes, prefetch ahead."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
import threading
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq

from curate.manifests import schema as S
from curate.manifests import vectors as V
from curate.manifests.io import Manifest
from curate.pipelines.embed.decode import Preprocess, decode_rows, worker_init


def _worker_start() -> None:
    worker_init()
    if sys.platform.startswith("linux"):  # die with the parent, even after SIGKILL
        import ctypes
        import signal

        with contextlib.suppress(OSError):  # PR_SET_PDEATHSIG = 1
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


class PoolDecoder:
    """Decode rows on CPU: ``workers`` spawned processes, or a thread when ``workers`` is 0.

    ``submit(rows)`` returns a future of ``(uint8 (n, S, S, 3), errors)``.
    """

    def __init__(
        self, pre: Preprocess, *, workers: int, max_pixels: int, base_dir: str | None = None
    ) -> None:
        self._fn = partial(decode_rows, pre=pre, max_pixels=max_pixels, base_dir=base_dir)
        if workers > 0:
            self._pool = _process_pool(workers)
        else:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="curate-decode")
        self.workers = workers

    def submit(self, rows: list) -> Future:
        return self._pool.submit(self._fn, rows)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _process_pool(workers: int) -> ProcessPoolExecutor:
    """Start ``workers`` decode processes now, before the reader and writer threads exist.

    On Linux they are forked (no re-import of the caller's ``__main__``, so scripts need no
    ``if __name__ == "__main__"`` guard; the children use only PIL and numpy, never torch).
    Elsewhere they are spawned.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with native threads
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=mp.get_context(method), initializer=_worker_start
        )
        for f in [pool.submit(int) for _ in range(workers)]:
            f.result()
    return pool


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


def iter_chunks(
    manifest: Manifest, chunk_rows: int, *, skip: set[int] = frozenset(), columns=None
) -> Iterator[tuple[int, pa.Table]]:
    """Yield ``(i, rows [i*chunk_rows, (i+1)*chunk_rows))`` in input order, skipping ``skip``.

    Row groups that fall entirely inside skipped chunks are not read at all, so resuming a
    long run does not re-read the images it already embedded.
    """
    pending: list[pa.RecordBatch] = []
    pending_rows, offset = 0, 0  # rows buffered for the current chunk; global row offset
    current = 0
    for path in manifest.files:
        pf = pq.ParquetFile(path)
        for rg in range(pf.num_row_groups):
            n = pf.metadata.row_group(rg).num_rows
            first, last = offset // chunk_rows, (offset + n - 1) // chunk_rows if n else -1
            if n == 0 or all(c in skip for c in range(first, last + 1)):
                offset += n
                continue
            for batch in pf.iter_batches(batch_size=8192, row_groups=[rg], columns=columns):
                start = 0
                while start < batch.num_rows:
                    chunk = offset // chunk_rows
                    take = min(batch.num_rows - start, (chunk + 1) * chunk_rows - offset)
                    if chunk != current:
                        if pending_rows:
                            yield current, _table(pending, manifest)
                        pending, pending_rows, current = [], 0, chunk
                    if chunk not in skip:
                        pending.append(V.decode_columns(batch.slice(start, take), pf.schema_arrow))
                        pending_rows += take
                    start += take
                    offset += take
    if pending_rows:
        yield current, _table(pending, manifest)


def _table(batches: list[pa.RecordBatch], manifest: Manifest) -> pa.Table:
    return pa.Table.from_batches(batches).replace_schema_metadata(manifest.schema.metadata)


_DONE = object()


def prefetch(items: Iterable, depth: int) -> Iterator:
    """Iterate ``items`` in a background thread, ``depth`` items ahead (I/O overlap)."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as exc:  # re-raised in the consumer
            q.put(exc)

    t = threading.Thread(target=produce, name="curate-read", daemon=True)
    t.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not q.empty():
            q.get_nowait()
        t.join(timeout=5)
