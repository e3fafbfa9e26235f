"""Row-range parallelism for manifest passes: threads read and write disjoint row ranges.

Parquet decoding and encoding run in C++ without the GIL, one column chunk at a time, so a
single stream uses one core however many the machine has. Splitting the rows into ranges, each
read (``Manifest.iter_batches(rows=...)``) and written (its own shard) by its own thread,
uses them all; results come back in row order, so output does not depend on the thread count.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import pyarrow as pa

from curate.manifests.io import DEFAULT_BATCH_ROWS, ROW_GROUP_ROWS, Manifest, ManifestWriter

T = TypeVar("T")
A = TypeVar("A")
Range = tuple[int, int]

#: Fewest rows a range gets before a pass is split across threads.
MIN_RANGE_ROWS = ROW_GROUP_ROWS
#: Never more threads than this, whatever the core count (I/O bandwidth stops scaling).
MAX_WORKERS = 8


def default_workers() -> int:
    """Threads for a parallel pass: the cores this process may use, at most ``MAX_WORKERS``."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def row_ranges(
    n_rows: int,
    parts: int,
    *,
    max_rows: int | None = None,
    min_rows: int | None = None,
    starts: Sequence[int] | None = None,
) -> list[Range]:
    """Split ``range(n_rows)`` into contiguous, near-equal ranges.

    Up to ``parts`` ranges while each keeps ``min_rows`` rows (default
    :data:`MIN_RANGE_ROWS`: threads need work worth starting), and ranges of at most
    ``max_rows`` rows (e.g. the rows per output shard). With ``starts`` (the first row of
    every Parquet row group, :meth:`Manifest.row_group_starts`), each cut moves to the nearest
    row-group start, so no two threads decode the same row group; a manifest of few, large
    row groups then gets fewer ranges.
    """
    if n_rows <= 0:
        return []
    min_rows = MIN_RANGE_ROWS if min_rows is None else min_rows
    n = min(parts, max(1, n_rows // max(min_rows, 1)))
    if max_rows:
        n = max(n, math.ceil(n_rows / max_rows))
    cuts = [round(i * n_rows / n) for i in range(1, n)]
    if starts is not None:
        grid = np.asarray(sorted(set(starts) | {0, n_rows}))
        cuts = [int(grid[np.abs(grid - c).argmin()]) for c in cuts]
    bounds = sorted({0, n_rows, *cuts})
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def ordered_map(fn: Callable[[A], T], items: Sequence[A], workers: int) -> list[T]:
    """``[fn(x) for x in items]`` on ``workers`` threads, results in item order.

    The first exception is raised once running calls end; calls not yet started are dropped.
    """
    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="curate-range") as ex:
        futures = [ex.submit(fn, x) for x in items]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise


Tables = tuple[pa.Table | pa.RecordBatch | None, ...]


def _write_in_order(writers, ranges, make) -> None:
    for lo, hi in ranges:
        for tables in make(lo, hi):
            for w, t in zip(writers, tables, strict=True):
                if t is not None:
                    w.write(t)


def _write_shard(writers, indices: Sequence[int], rows: Range, make) -> None:
    streams = [w.open_shard(i) for w, i in zip(writers, indices, strict=True)]
    try:
        for tables in make(*rows):
            for s, t in zip(streams, tables, strict=True):
                if t is not None and t.num_rows:
                    s.write(t)
    except BaseException:
        for s in streams:
            s.abort()
        raise
    for s in streams:
        s.finish()


def write_ranges(
    writers: Sequence[ManifestWriter],
    ranges: Sequence[Range],
    make: Callable[[int, int], Iterator[Tables]],
    workers: int,
) -> None:
    """Write each row range as one shard of every writer, ranges in parallel.

    ``make(lo, hi)`` yields, per input batch, one table (or ``None``) for each writer. Shard
    ``i`` of every writer holds range ``i``, so the outputs keep the input's row order. A
    single-file writer (``out.parquet``) cannot take shards: everything then streams in order
    on this thread. Call ``close`` on the writers afterwards.
    """
    if any(w.single_file for w in writers):
        _write_in_order(writers, ranges, make)
        return
    first = [w.reserve_shards(len(ranges)) for w in writers]

    def one(i: int) -> None:
        _write_shard(writers, [f + i for f in first], ranges[i], make)

    ordered_map(one, range(len(ranges)), workers)


def rewrite(
    manifest: Manifest,
    writers: Sequence[ManifestWriter],
    transform: Callable[[pa.RecordBatch, slice], Tables],
    *,
    batch_size: int = DEFAULT_BATCH_ROWS,
) -> None:
    """Stream every row of ``manifest`` through ``transform`` into ``writers``, in parallel.

    ``transform(batch, rows)`` gets each input batch with its rows (a slice in manifest
    order) and returns one table (or ``None``) per writer. Row ranges are cut at row-group
    starts, at most the writers' ``rows_per_shard`` long, one thread and one shard each (see
    :func:`write_ranges`). Call ``close`` on the writers afterwards.
    """
    workers = default_workers()
    ranges = row_ranges(
        manifest.num_rows,
        workers,
        max_rows=min(w.rows_per_shard for w in writers),
        starts=manifest.row_group_starts(),
    )

    def make(lo: int, hi: int) -> Iterator[Tables]:
        for batch in manifest.iter_batches(batch_size=batch_size, prefetch=1, rows=(lo, hi)):
            yield transform(batch, slice(lo, lo + batch.num_rows))
            lo += batch.num_rows

    write_ranges(writers, ranges, make, workers)
