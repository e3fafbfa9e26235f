"""Exact integer quotas: water-filling under per-cluster caps, then largest-remainder rounding."""

from __future__ import annotations

import numpy as np


def softmax(x: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(x / temperature)``, computed stably."""
    z = np.asarray(x, dtype=np.float64) / temperature
    z = np.exp(z - z.max()) if len(z) else z
    return z / z.sum() if len(z) else z


def water_fill(weights: np.ndarray, caps: np.ndarray, total: float) -> np.ndarray:
    """Continuous quotas ``q = min(cap, lam * w)`` with ``sum(q) == total``.

    Clusters whose share exceeds their size are capped at it and the excess flows to the
    others in proportion to their weight, repeated until no quota exceeds its cap.
    """
    w = np.asarray(weights, dtype=np.float64)
    caps = np.asarray(caps, dtype=np.float64)
    if total > caps.sum() + 1e-9:
        raise ValueError(f"cannot allocate {total} rows: only {caps.sum():.0f} available")
    q = np.zeros_like(w)
    free = caps > 0
    remaining = float(total)
    while remaining > 1e-9 and free.any():
        share = w * free
        if share.sum() <= 0:  # zero weights left: spread evenly over what has room
            share = free.astype(np.float64)
        share = remaining * share / share.sum()
        over = free & (q + share >= caps)
        if not over.any():
            q[free] += share[free]
            break
        remaining -= float((caps[over] - q[over]).sum())
        q[over] = caps[over]
        free &= ~over
    return np.minimum(q, caps)


def integer_quotas(weights: np.ndarray, caps: np.ndarray, total: int) -> np.ndarray:
    """Integer quotas summing exactly to ``total``, each at most its cap.

    Water-filling gives continuous quotas; each is floored and the remaining units go to the
    largest fractional parts (ties to the lower cluster index) among clusters with room.
    """
    caps = np.asarray(caps, dtype=np.int64)
    q = water_fill(weights, caps, total)
    base = np.minimum(np.floor(q + 1e-9).astype(np.int64), caps)
    short = int(total - base.sum())
    while short > 0:  # one pass suffices; the loop guards against float round-off
        room = np.flatnonzero(base < caps)
        order = room[np.lexsort((room, -(q - base)[room]))][:short]
        base[order] += 1
        short -= len(order)
    return base
