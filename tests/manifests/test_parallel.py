"""Parallel row-range passes: ranges cover the rows once, shards keep row order, failures
leave no complete-looking output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.errors import ManifestError
from curate.manifests import ManifestWriter, open_manifest
from curate.manifests import parallel as P


@pytest.mark.parametrize(
    ("n", "parts", "max_rows", "min_rows"),
    [(0, 4, None, 1), (1, 4, None, 1), (10, 4, None, 1), (10, 4, None, 6), (1000, 3, 100, 1)],
)
def test_row_ranges_cover_every_row_once_in_order(n, parts, max_rows, min_rows):
    ranges = P.row_ranges(n, parts, max_rows=max_rows, min_rows=min_rows)
    covered = [i for lo, hi in ranges for i in range(lo, hi)]
    assert covered == list(range(n))
    assert all(hi - lo <= (max_rows or n) for lo, hi in ranges)
    if n >= parts * min_rows and max_rows is None:
        assert len(ranges) == parts


def test_row_ranges_cut_only_at_row_group_starts():
    """Two threads must never decode the same row group: cuts snap to row-group starts, and a
    manifest of one big row group is read by one thread."""
    starts = list(range(0, 1000, 100))
    ranges = P.row_ranges(1000, 3, min_rows=1, starts=starts)
    assert [lo for lo, _ in ranges] == [0, 300, 700]
    assert P.row_ranges(1000, 4, min_rows=1, starts=[0]) == [(0, 1000)]


def _table(n: int) -> pa.Table:
    return pa.table({"id": [f"r{i:04d}" for i in range(n)], "x": np.arange(n)})


def test_iter_batches_reads_any_row_range_across_shards_and_row_groups(tmp_path: Path):
    t = _table(1000)
    d = tmp_path / "m"
    d.mkdir()
    for i, (lo, hi) in enumerate([(0, 123), (123, 500), (500, 1000)]):
        pq.write_table(t.slice(lo, hi - lo), d / f"part-{i:05d}.parquet", row_group_size=37)
    m = open_manifest(d)
    rng = np.random.default_rng(0)
    cases = [(0, 1000), (0, 0), (36, 38), (122, 124), (999, 1000)]
    cases += [tuple(sorted(rng.integers(0, 1001, 2))) for _ in range(40)]
    for lo, hi in cases:
        for batch_size in (5, 37, 1000):
            got = [
                v
                for b in m.iter_batches(["x"], batch_size=batch_size, rows=(lo, hi))
                for v in b.column(0).to_pylist()
            ]
            assert got == list(range(lo, hi)), (lo, hi, batch_size)


def test_write_ranges_keeps_row_order_in_parallel_shards(tmp_path: Path):
    t = _table(1000)
    ranges = P.row_ranges(1000, 4, min_rows=1)
    all_w = ManifestWriter(tmp_path / "all", schema=t.schema)
    even_w = ManifestWriter(tmp_path / "even", schema=t.schema)

    def make(lo, hi):
        for start in range(lo, hi, 64):
            part = t.slice(start, min(64, hi - start))
            yield part, part.filter(pa.compute.equal(pa.compute.bit_wise_and(part["x"], 1), 0))

    P.write_ranges([all_w, even_w], ranges, make, workers=4)
    for w in (all_w, even_w):
        w.close()
    m = open_manifest(tmp_path / "all")
    assert len(m.files) == 4
    assert m.read()["x"].to_pylist() == list(range(1000))
    assert open_manifest(tmp_path / "even").read()["x"].to_pylist() == list(range(0, 1000, 2))


def test_a_failing_range_leaves_an_incomplete_manifest_and_no_temp_files(tmp_path: Path):
    t = _table(1000)
    w = ManifestWriter(tmp_path / "out", schema=t.schema)

    def make(lo, hi):
        yield (t.slice(lo, hi - lo),)
        if lo >= 500:
            raise OSError(f"disk full while writing rows {lo}-{hi}")

    with pytest.raises(OSError, match="disk full"):
        P.write_ranges([w], P.row_ranges(1000, 4, min_rows=1), make, workers=4)
    w.abort()
    assert not list((tmp_path / "out").glob(".*.tmp"))
    with pytest.raises(ManifestError, match="incomplete manifest"):
        open_manifest(tmp_path / "out")


def test_single_file_output_is_written_in_order(tmp_path: Path):
    t = _table(300)
    w = ManifestWriter(tmp_path / "one.parquet", schema=t.schema)
    P.write_ranges(
        [w], P.row_ranges(300, 3, min_rows=1), lambda lo, hi: [(t.slice(lo, hi - lo),)], 3
    )
    w.close()
    assert open_manifest(tmp_path / "one.parquet").read()["x"].to_pylist() == list(range(300))
