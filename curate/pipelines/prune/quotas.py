"""Exact integer quotas: the DBP authors' quadratic program solved in closed form, then
largest-remainder rounding so the quotas sum to the target exactly.

The reference (amro-kamal/effective_pruning, ``prune.py``) solves, with osqp,

    minimise 1/2 ||x||^2 - total * p . x   subject to   sum(x) = total,  lb <= x <= ub,

with ``ub`` the cluster sizes and ``lb = min(cls_bal_ratio * total / k, size - 1)``. Its
optimum is ``x = clip(total * p + mu, lb, ub)`` for the one ``mu`` that makes the sum right
(the KKT conditions of a separable quadratic): clusters that hit their size give their excess
to the others in equal parts, not in proportion. :func:`qp_quotas` finds ``mu`` by bisection.
"""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(x / temperature)``, computed stably."""
    z = np.asarray(x, dtype=np.float64) / temperature
    z = np.exp(z - z.max()) if len(z) else z
    return z / z.sum() if len(z) else z


def qp_quotas(
    weights: np.ndarray, caps: np.ndarray, total: float, floors: np.ndarray | None = None
) -> np.ndarray:
    """Continuous quotas ``clip(total * w + mu, floors, caps)`` summing to ``total``: the
    solution of the reference's QP (``w`` are the softmax probabilities)."""
    w = np.asarray(weights, dtype=np.float64)
    caps = np.asarray(caps, dtype=np.float64)
    lo = np.zeros_like(caps) if floors is None else np.minimum(np.asarray(floors, float), caps)
    if total > caps.sum() + 1e-9:
        raise ValueError(f"cannot allocate {total} rows: only {caps.sum():.0f} available")
    if total < lo.sum() - 1e-9:
        raise ValueError(f"floors ask for {lo.sum():.0f} rows, more than the {total} to keep")
    a = total * w
    if not len(a):
        return a
    left, right = float((lo - a).min()), float((caps - a).max())
    for _ in range(200):  # the sum is monotone in mu: bisection to float precision
        mid = 0.5 * (left + right)
        if np.clip(a + mid, lo, caps).sum() < total:
            left = mid
        else:
            right = mid
        if right - left <= 1e-12 * max(1.0, abs(mid)):
            break
    return np.clip(a + right, lo, caps)


def round_quotas(q: np.ndarray, caps: np.ndarray, total: int) -> np.ndarray:
    """Integer quotas from continuous ones: each floored, then the remaining units to the
    largest fractional parts (ties to the lower cluster index) among clusters with room."""
    caps = np.asarray(caps, dtype=np.int64)
    base = np.minimum(np.floor(q + 1e-9).astype(np.int64), caps)
    short = int(total - base.sum())
    while short > 0:  # one pass suffices; the loop guards against float round-off
        room = np.flatnonzero(base < caps)
        order = room[np.lexsort((room, -(q - base)[room]))][:short]
        base[order] += 1
        short -= len(order)
    return base


def integer_quotas(
    weights: np.ndarray, caps: np.ndarray, total: int, floors: np.ndarray | None = None
) -> np.ndarray:
    """Integer quotas summing exactly to ``total``, each between its floor and its cap."""
    w = np.asarray(weights, dtype=np.float64)
    s = w.sum()
    return round_quotas(qp_quotas(w / s if s > 0 else w, caps, total, floors), caps, total)


def dbp_floors(sizes: np.ndarray, total: int, balance: float) -> np.ndarray:
    """The reference's per-cluster floor: ``min(int(balance * total / k), size - 1)``, at
    least 0; ``balance`` 0 switches it off (the reference then still keeps one row of every
    cluster of two or more; here 0 means no floor at all)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if balance <= 0 or not len(sizes):
        return np.zeros(len(sizes), np.int64)
    return np.maximum(np.minimum(int(balance * total / len(sizes)), sizes - 1), 0)
