"""Read-ahead: same batches in the same order, errors reach the caller, early stops clean up."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from curate.errors import ManifestError
from curate.manifests import open_manifest, write_manifest
from curate.manifests._prefetch import prefetch
from tests.conftest import embedded_table


def _prefetch_threads() -> int:
    return sum(t.name == "curate-prefetch" for t in threading.enumerate())


def test_prefetched_batches_equal_inline_ones_across_shards(tmp_path: Path) -> None:
    out = write_manifest(embedded_table(n=1000), tmp_path / "m", rows_per_shard=300)
    m = open_manifest(out)
    inline = list(m.iter_batches(batch_size=128))
    ahead = list(m.iter_batches(batch_size=128, prefetch=2))
    assert [b.num_rows for b in ahead] == [b.num_rows for b in inline]
    assert all(a.equals(b) for a, b in zip(ahead, inline, strict=True))


def test_a_failing_producer_raises_in_the_consumer() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("shard 3 is corrupt")

    got = []
    with pytest.raises(ValueError, match="shard 3 is corrupt"):
        for x in prefetch(items(), 2):
            got.append(x)
    assert got == [1, 2]  # everything before the failure was delivered


def test_stopping_early_stops_the_reader_thread() -> None:
    before = _prefetch_threads()
    produced = []

    def items():
        for i in range(1000):
            produced.append(i)
            yield i

    gen = prefetch(items(), 2)
    assert [next(gen) for _ in range(3)] == [0, 1, 2]
    gen.close()
    time.sleep(0.01)
    assert _prefetch_threads() == before
    assert len(produced) <= 3 + 2 + 1  # read ahead by at most the queue depth


def test_missing_column_is_reported_with_prefetch(tmp_path: Path) -> None:
    m = open_manifest(write_manifest(embedded_table(n=10), tmp_path / "m"))
    with pytest.raises(ManifestError, match="no column"):
        list(m.iter_batches(["nope"], prefetch=2))
