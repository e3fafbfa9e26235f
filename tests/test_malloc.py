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
