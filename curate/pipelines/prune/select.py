"""The m-th smallest ``(key, row)`` of a stream too large to hold, by radix selection.

Global cut-offs of a prune (the CLIP-score cut, SemDeDup's fill and trim, the eps that reaches
a ``--keep`` target) are order statistics over every row of the pool. Holding all keys to sort
them is ``8 x N`` bytes; instead each pass over the stream (a callable that yields the keys
again) counts keys by their next 16 bits in a 65,536-bin histogram, until the bucket holding
the m-th key is small enough to sort. Two passes are the usual case. Keys are float64 and
ties are broken by the row number, as ``np.lexsort((rows, keys))`` orders them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

#: A stream of (keys float64, rows int64) pieces; called once per pass.
Stream = Callable[[], Iterable[tuple[np.ndarray, np.ndarray]]]
#: Sort in memory once the bucket holding the answer has at most this many keys.
SORT_LIMIT = 1 << 22
_BITS = 16


def sortable(keys: np.ndarray) -> np.ndarray:
    """uint64 codes whose unsigned order is the float order of ``keys`` (-0.0 == 0.0)."""
    k = np.asarray(keys, dtype=np.float64) + 0.0  # -0.0 -> 0.0, as comparisons see it
    u = k.view(np.uint64)
    neg = (u >> np.uint64(63)).astype(bool)
    return np.where(neg, ~u, u | np.uint64(1 << 63))


def smallest(stream: Stream, m: int) -> tuple[float, int] | None:
    """The ``m``-th smallest ``(key, row)`` pair (1-based) over ``stream``; None if ``m < 1``.

    A row is among the ``m`` smallest iff ``(key, row) <= `` the answer, lexicographically.
    """
    if m < 1:
        return None
    prefix, shift, rank = np.uint64(0), 64, m
    while True:
        shift -= _BITS
        hist = np.zeros(1 << _BITS, np.int64)
        for keys, _ in stream():
            u = sortable(keys)
            if shift + _BITS < 64:
                u = u[(u >> np.uint64(shift + _BITS)) == prefix]
            hist += np.bincount(
                ((u >> np.uint64(shift)) & np.uint64(0xFFFF)).astype(np.int64), minlength=1 << _BITS
            )
        cum = np.cumsum(hist)
        if cum[-1] < rank:
            raise ValueError(f"asked for the {m}-th smallest of {int(cum[-1])} keys")
        bucket = int(np.searchsorted(cum, rank))
        rank -= int(cum[bucket - 1]) if bucket else 0
        prefix = (prefix << np.uint64(_BITS)) | np.uint64(bucket)
        if hist[bucket] <= SORT_LIMIT or shift == 0:
            return _finish(stream, prefix, shift, rank)


def _finish(stream: Stream, prefix: np.uint64, shift: int, rank: int) -> tuple[float, int]:
    keys_in, rows_in = [], []
    for keys, rows in stream():
        k = np.asarray(keys, dtype=np.float64) + 0.0
        hit = (sortable(k) >> np.uint64(shift)) == prefix
        keys_in.append(k[hit])
        rows_in.append(np.asarray(rows, dtype=np.int64)[hit])
    keys, rows = np.concatenate(keys_in), np.concatenate(rows_in)
    order = np.lexsort((rows, keys))
    i = order[rank - 1]
    return float(keys[i]), int(rows[i])


def at_or_below(keys: np.ndarray, rows: np.ndarray, cut: tuple[float, int] | None) -> np.ndarray:
    """Which ``(key, row)`` pairs are at or below ``cut`` (all False when ``cut`` is None)."""
    if cut is None:
        return np.zeros(len(keys), bool)
    key, row = cut
    k = np.asarray(keys, dtype=np.float64) + 0.0
    return (k < key) | ((k == key) & (np.asarray(rows) <= row))


def negate(stream: Stream) -> Stream:
    """The same stream with every key negated (largest first becomes smallest first)."""
    return lambda: ((-np.asarray(k, np.float64), r) for k, r in stream())
