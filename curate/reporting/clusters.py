"""Cluster grid (the rows nearest each centroid) and the embedding map (PCA of a sample)."""

from __future__ import annotations

import base64

import numpy as np
import pyarrow as pa

from curate.reporting.sections import Limits, sample_per_group
from curate.reporting.source import Source

#: Per-row colourings the map offers, by column (when the manifest has it).
MAP_COLOURS = ("label", "cluster", "keep", "is_label_issue")
_HASH_MOD = 1_000_003


def clusters(src: Source, lim: Limits) -> dict | None:
    """All cluster sizes, and the largest clusters with their rows nearest the centroid."""
    if not src.has("cluster"):
        return None
    sizes = src.rows(
        "SELECT cluster, count(*) AS n FROM {m} WHERE cluster IS NOT NULL "
        "GROUP BY cluster ORDER BY n DESC, cluster"
    )
    top = [int(s["cluster"]) for s in sizes[: lim.clusters]]
    near = src.has("centroid_sim")
    picks = sample_per_group(
        src,
        "cluster",
        lim.per_cluster,
        where=f"cluster IN ({', '.join(map(str, top)) or 'NULL'})"
        + (" AND centroid_sim IS NOT NULL" if near else ""),
        by="centroid_sim" if near else "hash(id)",
        top=near,
    )
    by: dict[int, list] = {c: [] for c in top}
    for c, row in picks:
        by[c].append(row)
    size = {s["cluster"]: s["n"] for s in sizes}
    grid = [{"cluster": c, "n": size[c], "rows": by[c]} for c in top]
    return {"sizes": [s["n"] for s in sizes], "k": len(sizes), "grid": grid}


def _b64(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a).tobytes()).decode()


def project_2d(x: np.ndarray, *, fit_rows: int = 10_000) -> np.ndarray:
    """PCA to two dimensions, scaled into [0, 1].

    The axes come from the covariance of the first ``fit_rows`` rows (the sample is already in
    random order), then every row is projected without a centred copy: ``x @ V - mean @ V``.
    """
    x = x.astype(np.float32, copy=False)
    if len(x) == 0:
        return np.zeros((0, 2), np.float32)
    fit = x[:fit_rows]
    mean = fit.mean(axis=0)
    cov = np.cov(fit, rowvar=False) if len(fit) > 1 else np.eye(x.shape[1])
    _, vecs = np.linalg.eigh(np.atleast_2d(cov))
    v = vecs[:, ::-1][:, :2].astype(np.float32)  # the two largest eigenvalues' vectors
    xy = x @ v - mean @ v
    if xy.shape[1] < 2:
        xy = np.c_[xy, np.zeros(len(x), np.float32)]
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    return ((xy - lo) / np.where(hi > lo, hi - lo, 1)).astype(np.float32)


def embedding_map(src: Source, lim: Limits) -> dict | None:
    """A hash-sampled set of up to ``map_rows`` rows, projected to 2-D, with colourings.

    The sample is a filter on ``hash(id)`` (one pass, no sort of the whole manifest), so it is
    the same rows on every run and costs memory for the sample only.
    """
    if not src.has("embedding") or lim.map_rows <= 0:
        return None
    n = src.num_rows
    cut = _HASH_MOD if n <= lim.map_rows else int(_HASH_MOD * min(1.0, 1.2 * lim.map_rows / n))
    colours = [c for c in MAP_COLOURS if src.has(c)]
    extra = "".join(f', "{c}"' for c in colours)
    cur = src.con.cursor()
    try:
        table = cur.sql(
            f'SELECT id, embedding{extra} FROM "{src.name}" WHERE embedding IS NOT NULL '
            f"AND hash(id) % {_HASH_MOD} < $cut ORDER BY hash(id), id LIMIT $n",
            params={"cut": cut, "n": lim.map_rows},
        ).to_arrow_table()
    finally:
        cur.close()
    if table.num_rows == 0:
        return None
    emb = table.column("embedding").combine_chunks()
    x = emb.flatten().to_numpy(zero_copy_only=False).reshape(table.num_rows, -1)
    ok = np.isfinite(x).all(axis=1)
    table, x = table.filter(pa.array(ok)), x[ok]
    xy = project_2d(x)
    out = {
        "n": int(table.num_rows),
        "of": n,
        "xy": _b64(xy),
        "ids": table.column("id").to_pylist(),
        "colour": {},
    }
    for c in colours:
        arr = table.column(c).combine_chunks()
        if pa.types.is_boolean(arr.type):
            arr = arr.cast(pa.int8())
        vals = arr.cast(pa.int32()).fill_null(-1).to_numpy(zero_copy_only=False)
        out["colour"][c] = _b64(vals.astype(np.int16))
    return out
