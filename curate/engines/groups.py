"""Per-group work inside a fit stage (SemDeDup within each k-means cluster).

A fit that must look at each cluster's vectors on their own calls :func:`map_groups`. Under the
local engine the groups run on worker threads (largest first, one BLAS thread each); inside a
fit run by the Ray engine the same call becomes a Ray Data ``groupby`` on the group column, so
the per-cluster work spreads over the cluster's workers. Either way the results come back in
the order of ``groups`` and are the same values.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np
import pyarrow as pa

from curate._threads import limit_blas
from curate.manifests import parallel as P

#: One group: its key and the rows (into ``vectors``) of its members, in member order.
Group = tuple[int, np.ndarray]
GroupFn = Callable[[np.ndarray], Any]
_GROUP, _POS, _VEC = "__group", "__pos", "__vector"

_ON_RAY: ContextVar[bool] = ContextVar("curate_groups_on_ray", default=False)


@contextlib.contextmanager
def groups_on_ray() -> Iterator[None]:
    """Within this block, :func:`map_groups` runs as a Ray Data groupby (the Ray engine's fit)."""
    token = _ON_RAY.set(True)
    try:
        yield
    finally:
        _ON_RAY.reset(token)


def map_groups(fn: GroupFn, groups: Sequence[Group], vectors: np.ndarray) -> list[Any]:
    """``[fn(vectors[members]) for _, members in groups]``, on threads or on Ray.

    ``fn`` must be picklable by cloudpickle (a lambda or closure is) when run on Ray.
    """
    if _ON_RAY.get() and len(groups) > 1:
        return _on_ray(fn, groups, vectors)
    return _on_threads(fn, groups, vectors)


def _on_threads(fn: GroupFn, groups: Sequence[Group], vectors: np.ndarray) -> list[Any]:
    workers = P.default_workers()
    order = sorted(range(len(groups)), key=lambda i: -len(groups[i][1]))
    blas = limit_blas(1) if workers > 1 and len(groups) > 1 else contextlib.nullcontext()
    with blas:
        out = P.ordered_map(lambda i: fn(vectors[groups[i][1]]), order, workers)
    results: list[Any] = [None] * len(groups)
    for i, r in zip(order, out, strict=True):
        results[i] = r
    return results


def _apply(table: pa.Table, fn: GroupFn, dtype: str, dim: int) -> pa.Table:
    """One group's rows (in any order) back to its vectors in member order, then ``fn``."""
    table = table.sort_by(_POS)
    raw = table.column(_VEC).combine_chunks().buffers()[1]
    x = np.frombuffer(raw, dtype, table.num_rows * dim).reshape(table.num_rows, dim)
    with limit_blas(1):
        result = fn(x.copy())
    key = table.column(_GROUP)[0].as_py()
    return pa.table({_GROUP: [key], "result": [pickle.dumps(result)]})


def _on_ray(fn: GroupFn, groups: Sequence[Group], vectors: np.ndarray) -> list[Any]:
    import ray.data

    keys = np.concatenate([np.full(len(m), i, np.int64) for i, (_, m) in enumerate(groups)])
    pos = np.concatenate([np.arange(len(m), dtype=np.int64) for _, m in groups])
    rows = np.concatenate([m for _, m in groups])
    x = np.ascontiguousarray(vectors[rows])
    width = x.shape[1] * x.itemsize
    vec = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(rows), [None, pa.py_buffer(x.view(np.uint8).reshape(-1))]
    )
    table = pa.table({_GROUP: keys, _POS: pos, _VEC: vec})
    ds = ray.data.from_arrow(table).groupby(_GROUP)
    out = ds.map_groups(
        _apply,
        batch_format="pyarrow",
        fn_kwargs={"fn": fn, "dtype": x.dtype.str, "dim": x.shape[1]},
    )
    results: list[Any] = [None] * len(groups)
    for batch in out.iter_batches(batch_size=None, batch_format="pyarrow"):
        for key, blob in zip(
            batch.column(_GROUP).to_pylist(), batch.column("result").to_pylist(), strict=True
        ):
            results[key] = pickle.loads(blob)
    return results
