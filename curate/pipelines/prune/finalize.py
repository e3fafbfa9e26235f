"""Phase 4 of a prune: each range's decisions joined back in manifest order.

A range's valid rows sit in its spill run sorted by cluster; the per-cluster decisions sit in
the per-cluster items' files in cluster order. For each cluster, the run's members are one
contiguous stretch of that cluster's members (runs are in row order), so one gather per item
file brings them back; the method's rule decides, and the result is scattered into row order
and written as one small Arrow file per range (``keep``, ``prune_reason``, the cluster
columns and the embedding validity code), which the engine's writer reads slice by slice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.engines.spill import Spill
from curate.pipelines import _embeddings as E
from curate.pipelines.prune.base import (
    DUP,
    KEPT,
    NO_CLIP_SCORE,
    PruneConfig,
    PruneMethod,
    invalid_code,
    reason_text,
)
from curate.pipelines.prune.groups import item_name, write_ipc

FINAL_COLUMNS = ("keep", "prune_reason", "cluster", "centroid_sim", "ecode")


@dataclass(frozen=True)
class FinalSpec:
    """What every finalize item needs (pickled to Ray workers)."""

    spill: str
    parts: int
    final: str
    decide: str
    method: PruneMethod
    cfg: PruneConfig
    state: dict
    clustered: bool
    items: list[int]  # first cluster of each per-cluster item, ascending
    sizes: list[int]  # valid members per cluster
    key: bool
    n_rows: int

    def path(self, run: int) -> Path:
        return Path(self.final) / f"run-{run:06d}.arrow"

    def counts(self, run: int) -> dict:
        with pa.memory_map(str(self.path(run))) as src:
            return json.loads(pa.ipc.open_file(src).schema.metadata[b"curate.counts"])


def _item_table(spec: FinalSpec, first: int, cache: dict) -> pa.Table:
    """One per-cluster item's decisions, memory-mapped once per group of runs."""
    if first not in cache:
        path = Path(spec.decide) / f"{item_name(first)}.arrow"
        cache[first] = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    return cache[first]


def _gather(spec: FinalSpec, spill: Spill, run: int, cache: dict) -> dict[str, np.ndarray]:
    """The run's valid members (cluster order) with their per-cluster decision fields."""
    runs = spill.runs()
    j = runs.index(run)
    index = spill.index()
    counts = np.diff(index[j])
    before = np.diff(index[:j], axis=1).sum(axis=0) if j else np.zeros(spec.parts, np.int64)
    cluster = np.repeat(np.arange(spec.parts), counts)
    f = {"row": spill.section(run, "row"), "sim": spill.section(run, "sim"), "cluster": cluster}
    n = len(cluster)
    sizes = np.asarray(spec.sizes, np.int64)
    first = np.asarray(spec.items, np.int64)
    item_of = np.searchsorted(first, np.arange(spec.parts), side="right") - 1
    starts = np.zeros(spec.parts, np.int64)  # a cluster's first member inside its item file
    for i, c0 in enumerate(first):
        c1 = first[i + 1] if i + 1 < len(first) else spec.parts
        starts[c0:c1] = np.r_[0, np.cumsum(sizes[c0:c1])[:-1]]
    pos = starts[cluster] + before[cluster] + (np.arange(n) - index[j, :-1][cluster])
    cols = {
        "dup": np.zeros(n, bool),
        "dup_sim": np.full(n, np.nan, np.float32),
        "rank": np.full(n, -1, np.int32),
    }
    dup_of = np.full(n, None, dtype=object)
    for it in np.unique(item_of[cluster]) if n else []:
        sel = np.flatnonzero(item_of[cluster] == it)
        t = _item_table(spec, int(first[it]), cache).take(pa.array(pos[sel]))
        dup = t.column("dup").to_numpy(zero_copy_only=False)
        cols["dup"][sel] = dup
        cols["dup_sim"][sel] = t.column("dup_sim").to_numpy()
        cols["rank"][sel] = t.column("rank").to_numpy()
        if dup.any():
            names = t.column("dup_of").filter(pa.array(dup)).to_pylist()
            dup_of[sel[dup]] = np.asarray(names, dtype=object)
    f.update(cols)
    f["dup_of"] = dup_of
    return f


def _valid_fields(spec: FinalSpec, spill: Spill, run: int, lo: int, ecode, key, cache: dict):
    """Fields of the valid rows of a run (method order) and their row offsets in the run."""
    if spec.clustered:
        f = _gather(spec, spill, run, cache)
        return f, f["row"] - lo
    local = np.flatnonzero(np.isfinite(key) if spec.key else ecode == E.VALID)
    before = sum(spill.header(r)["meta"]["valid"] for r in spill.runs() if r < run)
    f = {"row": local + lo, "ordinal": before + np.arange(len(local)), "load": np.load}
    if key is not None:
        f["key"] = key[local]
    return f, local


def finalize_runs(spec: FinalSpec, runs: list[tuple[int, int, int]]) -> list[dict]:
    """:func:`finalize_run` for a group of consecutive runs, opening each per-cluster item's
    file once for the group (every run has members in every cluster, so the files a run
    touches grow with the pool; a group keeps the opens to items x groups)."""
    spill = Spill(spec.spill, spec.parts)
    cache: dict = {}
    try:
        return [finalize_run(spec, item, spill=spill, cache=cache) for item in runs]
    finally:
        spill.close()


def finalize_run(
    spec: FinalSpec, item: tuple[int, int, int], *, spill: Spill | None = None, cache=None
) -> dict:
    """Decide every row of range ``lo:hi`` (run ``run``) and write its final file."""
    run, lo, hi = item
    own = spill is None
    spill = spill or Spill(spec.spill, spec.parts)
    try:
        ecode = spill.section(run, "ecode")
        key = spill.section(run, "key") if spec.key else None
        f, at = _valid_fields(spec, spill, run, lo, ecode, key, {} if cache is None else cache)
    finally:
        if own:
            spill.close()
    n = hi - lo
    reason = np.where(ecode == E.VALID, KEPT, invalid_code(ecode)).astype(np.int8)
    if spec.key:
        reason = np.where(np.isfinite(key), KEPT, NO_CLIP_SCORE).astype(np.int8)
    keep = np.zeros(n, bool)
    k_valid, r_valid = spec.method.rule(f, spec.state, spec.cfg)
    keep[at], reason[at] = k_valid, r_valid
    cluster = np.full(n, -1, np.int32)
    sim = np.full(n, np.nan, np.float32)
    dup_of = np.full(n, None, dtype=object)
    if spec.clustered:
        cluster[at], sim[at], dup_of[at] = f["cluster"], f["sim"], f["dup_of"]
    table = pa.table(
        {
            "keep": keep,
            "prune_reason": _reason_strings(reason, keep, dup_of, spec.cfg.method),
            "cluster": pa.array(cluster, pa.int32(), mask=cluster < 0),
            "centroid_sim": pa.array(sim, pa.float32(), mask=cluster < 0),
            "ecode": ecode,
        }
    )
    counts = _run_counts(reason, keep, cluster, spec.parts if spec.clustered else 0)
    write_ipc(table.replace_schema_metadata({"curate.counts": json.dumps(counts)}), spec.path(run))
    return counts


def _reason_strings(reason, keep, dup_of, method: str) -> pa.Array:
    out = np.full(len(reason), None, dtype=object)
    for code in np.unique(reason):
        if code not in (KEPT, DUP):
            out[reason == code] = reason_text(int(code), method)
    dups = np.flatnonzero((reason == DUP) & ~keep)
    out[dups] = [f"semdedup:dup_of={t}" for t in dup_of[dups]]
    out[keep] = None
    return pa.array(out, pa.string())


def _run_counts(reason, keep, cluster, k: int) -> dict:
    codes, n = np.unique(reason[~keep], return_counts=True)
    out = {
        "kept": int(keep.sum()),
        "reasons": {int(c): int(m) for c, m in zip(codes, n, strict=True)},
    }
    if k:
        out["kept_per_cluster"] = np.bincount(cluster[keep], minlength=k).tolist()
    return out
