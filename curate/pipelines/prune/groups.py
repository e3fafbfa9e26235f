"""Phase B of a prune: the work inside each cluster, one cluster at a time.

A work item is a run of consecutive clusters. For each it reads the members from the spill
(rows in manifest order), and decides per member: is it a near-duplicate (and of which
representative), and its rank among the cluster's remaining rows by difficulty. The result is
one Arrow file per item (members in cluster order) and small per-cluster aggregates: sizes,
duplicate groups, the summed distance to the centroid for DBP's d_intra. The forest pass
(SemDeDup with ``--keep``) writes the near-neighbour forest's merge similarities instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.engines.spill import Spill
from curate.pipelines.prune import similarity as SIM
from curate.pipelines.prune.space import disk_full_error

DECIDE, FOREST = "decide", "forest"


@dataclass(frozen=True)
class GroupSpec:
    """What every per-cluster item needs (pickled to Ray workers)."""

    spill: str
    parts: int
    out: str
    threshold: float | None = None  # duplicates: cos > threshold
    dup_sim: bool = False  # each duplicate's cosine to its representative (SemDeDup fill)
    rank: str | None = None  # "hard" (lowest centroid_sim first), "easy", or no ranking
    forest: bool = False  # the forest pass instead of decisions
    ids: bool = False  # name each duplicate's representative by id
    projection: np.ndarray | None = None
    device: str | None = None
    group_memory: int = 512 << 20
    dim: int = 0


def item_name(first: int) -> str:
    return f"b{first:06d}"


def batches(sizes: np.ndarray, target_rows: int) -> list[list[int]]:
    """Consecutive clusters in items of about ``target_rows`` members (empty ones skipped)."""
    items, current, rows = [], [], 0
    for c in np.flatnonzero(sizes):
        current.append(int(c))
        rows += int(sizes[c])
        if rows >= target_rows:
            items.append(current)
            current, rows = [], 0
    if current:
        items.append(current)
    return items


class _Members:
    """One cluster's members read from the spill, vectors in memory or in blocks."""

    def __init__(self, spill: Spill, spec: GroupSpec, c: int) -> None:
        self.spill, self.c = spill, c
        self.rows = spill.read(c, "row")
        self.sim = spill.read(c, "sim")
        self.n = len(self.rows)
        self.blocked = spec.dim * 4 * self.n > spec.group_memory
        need_vec = spec.threshold is not None or spec.forest
        self.x16 = spill.read(c, "vec") if need_vec and not self.blocked else None
        self.block_rows = max(1, spec.group_memory // (8 * max(spec.dim, 1)))

    def unit_rows(self, i0: int, i1: int) -> np.ndarray:
        return SIM.unit(self.spill.read(self.c, "vec", i0, i1))


def _groups(m: _Members, spec: GroupSpec) -> np.ndarray:
    if m.blocked:
        return SIM.blocked_duplicate_groups(
            m.unit_rows, m.n, spec.threshold, block_rows=m.block_rows
        )
    if spec.device is not None:
        return SIM.duplicate_groups(
            m.x16, spec.threshold, block_elems=SIM.GPU_BLOCK_ELEMS, device=spec.device
        )
    return SIM.duplicate_groups(m.x16, spec.threshold, projection=spec.projection)


def _dedup(m: _Members, spec: GroupSpec):
    """(dup mask, representative index per member, groups): one representative per group,
    the member least similar to its centroid (the hardest), ties to the lower row."""
    labels = _groups(m, spec)
    order = np.lexsort((m.rows, m.sim))
    _, first = np.unique(labels[order], return_index=True)
    rep_of = np.empty(labels.max() + 1, np.int64)
    rep_of[labels[order][first]] = order[first]
    reps = rep_of[labels]
    return reps != np.arange(m.n), reps, len(first)


def _dup_sim(m: _Members, dup: np.ndarray, reps: np.ndarray) -> np.ndarray:
    out = np.full(m.n, np.nan, np.float32)
    idx = np.flatnonzero(dup)
    if len(idx):
        if m.blocked:
            a = np.concatenate([m.unit_rows(i, i + 1) for i in idx])
            b = np.concatenate([m.unit_rows(j, j + 1) for j in reps[idx]])
        else:
            a, b = SIM.unit(m.x16[idx]), SIM.unit(m.x16[reps[idx]])
        out[idx] = np.einsum("ij,ij->i", a, b)
    return out


def _rank(m: _Members, dup: np.ndarray, how: str | None) -> np.ndarray:
    """Rank of each remaining member by (difficulty key, row); -1 for duplicates."""
    rank = np.full(m.n, -1, np.int32)
    if how is None:
        return rank
    live = np.flatnonzero(~dup)
    key = m.sim[live] if how == "hard" else -m.sim[live]
    order = live[np.lexsort((m.rows[live], key))]
    rank[order] = np.arange(len(order), dtype=np.int32)
    return rank


def _decide_cluster(spill: Spill, spec: GroupSpec, c: int):
    m = _Members(spill, spec, c)
    ids = spill.read_strings(c, "id") if spec.ids else None
    if spec.threshold is not None:
        dup, reps, groups = _dedup(m, spec)
    else:
        dup, reps, groups = np.zeros(m.n, bool), np.arange(m.n), m.n
    dup_of = pa.nulls(m.n, pa.large_string())
    if ids is not None and dup.any():
        dup_of = ids.take(pa.array(reps, mask=~dup))  # the representative's id, null if kept
    live = ~dup
    dist = np.bincount(
        np.zeros(int(live.sum()), np.intp),
        weights=1.0 - m.sim[live].astype(np.float64),
        minlength=1,
    )[0]
    table = pa.table(
        {
            "row": m.rows,
            "sim": m.sim,
            "dup": dup,
            "dup_of": dup_of,
            "dup_sim": _dup_sim(m, dup, reps) if spec.dup_sim else np.full(m.n, np.nan, "f4"),
            "rank": _rank(m, dup, spec.rank),
        }
    )
    return table, {"size": m.n, "live": int(live.sum()), "groups": groups, "dist": float(dist)}


def decide_item(spec: GroupSpec, clusters: list[int]) -> dict:
    """Decide every member of ``clusters``; write the item's file; return its aggregates."""
    out = Path(spec.out) / f"{item_name(clusters[0])}.arrow"
    spill = Spill(spec.spill, spec.parts)
    try:
        if spec.forest:
            return _forest_item(spill, spec, clusters, out.with_suffix(".npy"))
        tables, stats = [], {}
        for c in clusters:
            t, s = _decide_cluster(spill, spec, c)
            tables.append(t)
            stats[c] = s
        table = pa.concat_tables(tables).replace_schema_metadata(
            {"curate.stats": json.dumps({str(c): s for c, s in stats.items()})}
        )
        write_ipc(table, out)
        return stats
    finally:
        spill.close()


def _forest_item(spill: Spill, spec: GroupSpec, clusters: list[int], out: Path) -> dict:
    weights = []
    for c in clusters:
        m = _Members(spill, spec, c)
        if m.blocked:
            w = SIM.forest_similarities(None, rows=m.unit_rows, n=m.n, block_elems=SIM.BLOCK_ELEMS)
        else:
            w = SIM.forest_similarities(m.x16)
        weights.append(w)
    w = np.concatenate(weights) if weights else np.zeros(0, np.float32)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            np.save(f, w)
        os.replace(tmp, out)
    except OSError as exc:
        raise disk_full_error(exc, out.parent) from exc
    return {"edges": len(w)}


def write_ipc(table: pa.Table, out: Path) -> None:
    """Write ``table`` as an Arrow file at ``out``, atomically; a full disk is a clear error."""
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
            w.write_table(table)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise disk_full_error(exc, out.parent) from exc


def read_stats(out_dir: Path, first: int) -> dict[int, dict] | None:
    """The aggregates of a finished item (None when it has not finished)."""
    path = out_dir / f"{item_name(first)}.arrow"
    if not path.exists():
        return None
    with pa.memory_map(str(path)) as src:
        meta = pa.ipc.open_file(src).schema.metadata
    return {int(c): s for c, s in json.loads(meta[b"curate.stats"]).items()}
