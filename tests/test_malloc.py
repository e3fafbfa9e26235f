"""Heap reuse for hot loops: settings apply inside, defaults return outside, nesting counts."""

from __future__ import annotations

import numpy as np

from curate import _malloc


def test_reuse_heap_nests_and_large_blocks_work_inside() -> None:
    with _malloc.reuse_heap():
        with _malloc.reuse_heap():
            assert _malloc._depth == 2
            blocks = [np.ones(8 << 20) for _ in range(3)]  # 64 MB each, from the heap
        assert _malloc._depth == 1 and all(b.sum() == 8 << 20 for b in blocks)
    assert _malloc._depth == 0


def test_reuse_heap_is_a_decorator_and_can_be_turned_off(monkeypatch) -> None:
    monkeypatch.setenv("CURATE_MALLOC", "default")
    assert _malloc._libc() is None

    @_malloc.reuse_heap()
    def work() -> float:
        return float(np.zeros(1 << 22).sum())

    assert work() == 0.0 and _malloc._depth == 0


def test_huge_empty_is_a_writable_array_of_the_shape() -> None:
    big = _malloc.huge_empty((1 << 16, 1024), np.float16)  # 128 MB: its own mapping
    big[:] = 1
    small = _malloc.huge_empty((3, 4), "float32")
    assert (
        big.shape == (1 << 16, 1024)
        and big.dtype == np.float16
        and big.sum(dtype=np.float64) == 1 << 26
    )
    assert small.shape == (3, 4) and small.flags.writeable
