"""curate check at scale: the near-duplicate / leakage / outlier search on N x 512 generated
unit vectors (benchmarks/prune.py's clustered generator, 5% planted near-duplicates, 10% of
rows in a test split), its time and memory, and the recall of its IVF index against exact
search on a seeded sample.

    python benchmarks/check_scale.py generate --n 1000000 --path bench-out/check-scale/m
    python benchmarks/_cgroup.py --limit 3G -- \\
        python benchmarks/check_scale.py run --path bench-out/check-scale/m --out .../c
    python benchmarks/check_scale.py recall --path bench-out/check-scale/m --out .../c
    python benchmarks/check_scale.py switch --sizes 25000 50000 100000   # exact vs IVF

``recall`` compares, on ``--sample`` rows, the checked output (near-duplicate links, leaks,
outlier scores) and the index's own top-k with exact top-k computed blockwise.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from curate.engines.progress import Progress
from curate.manifests.io import open_manifest
from curate.manifests.vectors import read_vectors
from curate.pipelines.check import CheckConfig, check

K = CheckConfig().outlier_k + 1


def _load() -> str:
    return open("/proc/loadavg").read().split()[0]


def generate(args) -> dict:
    from prune import generate as gen

    t0 = time.perf_counter()
    gen(Path(args.path), args.n, args.clusters, seed=0, test_fraction=0.1)
    return {"rows": args.n, "seconds": round(time.perf_counter() - t0, 1)}


def run(args) -> dict:
    opts = json.loads(args.options or "{}")
    load0, t0 = _load(), time.perf_counter()
    m = check(args.path, args.out, overwrite=True, progress="lines", **opts)
    info = m.run_info
    return {
        "seconds": round(time.perf_counter() - t0, 1), "load": [load0, _load()],
        "counts": info["counts"], "fit_timings": info.get("fit_timings"),
        "timings": info.get("timings"), "index": info.get("index"), "options": opts,
    }  # fmt: skip


def exact_topk(x: np.ndarray, queries: np.ndarray, k: int, among: np.ndarray | None = None):
    """Exact top-``k`` (sims, rows) of ``queries`` over the rows of ``x`` (in 100k blocks)."""
    best_s = np.full((len(queries), 0), -np.inf, np.float32)
    best_i = np.zeros((len(queries), 0), np.int64)
    for lo in range(0, len(x), 100_000):
        s = queries @ x[lo : lo + 100_000].T
        if among is not None:
            s[:, ~among[lo : lo + 100_000]] = -np.inf
        i = np.broadcast_to(np.arange(lo, lo + s.shape[1]), s.shape)
        s, i = np.concatenate([best_s, s], axis=1), np.concatenate([best_i, i], axis=1)
        top = np.argsort(-s, axis=1, kind="stable")[:, :k]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
    return best_s, best_i


def without_self(sims: np.ndarray, ids: np.ndarray, rows: np.ndarray):
    """The first ``K - 1`` neighbours of each row other than itself, in similarity order."""
    order = np.argsort(ids == rows[:, None], axis=1, kind="stable")
    return np.take_along_axis(sims, order, 1)[:, : K - 1], np.take_along_axis(ids, order, 1)[
        :, : K - 1
    ]


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(p) & set(q)) / len(p) for p, q in zip(a, b, strict=True)]))


def recall(args) -> dict:
    from curate.pipelines import _embeddings as E
    from curate.pipelines.check.knn import VectorSource, build_index

    cfg = CheckConfig(**json.loads(args.options or "{}"))
    m = open_manifest(args.path)
    x, _ = read_vectors(m, "embedding")
    x = x.astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    split = m.read(["split"]).column(0).to_numpy(zero_copy_only=False)
    rows = np.sort(np.random.default_rng(1).choice(len(x), args.sample, replace=False))
    e_s, e_i = without_self(*exact_topk(x, x[rows], K), rows)
    src = VectorSource(m, E.check_embedding_column(m, "embedding"))
    t0 = time.perf_counter()
    with Progress("recall: index", m.num_rows, mode="lines") as bar:
        index = build_index(src, exact_max_rows=cfg.exact_max_rows, nprobe=cfg.nprobe,
                            seed=cfg.seed, on_add=bar.advance)  # fmt: skip
    build_s = round(time.perf_counter() - t0, 1)
    a_s, a_i = without_self(*index.search(x[rows], K), rows)
    out = {
        "n": len(x), "sample": len(rows), "load": _load(),
        "index": {"kind": index.kind, "nlist": index.nlist, "nprobe": index.nprobe,
                  "build_s": build_s},
        "recall_at_1": round(float(np.mean(e_i[:, 0] == a_i[:, 0])), 4),
        "recall_at_10": round(_overlap(e_i, a_i), 4),
    }  # fmt: skip
    # the product: near-duplicate links, leaks and outlier scores in the checked output
    cols = ["near_dup_of", "is_leak", "outlier_score"]
    t = open_manifest(args.out).read(cols).take(rows).to_pandas()
    has_dup = ((e_i < rows[:, None]) & (e_s >= cfg.near_dup_threshold)).any(axis=1)
    out["near_dup_rows_in_sample"] = int(has_dup.sum())
    out["near_dup_recall"] = round(float(t.near_dup_of.notna().to_numpy()[has_dup].mean()), 4)
    test = split[rows] == "test"
    t_s, _ = exact_topk(x, x[rows[test]], 1, among=split != "test")
    leak = t_s[:, 0] >= cfg.near_dup_threshold
    got = t.is_leak.to_numpy()[test].astype(bool)
    out["leak_rows_in_sample"] = int(leak.sum())
    out["leak_recall"] = round(float(got[leak].mean()), 4) if leak.any() else None
    out["leak_false_positives"] = int((got & ~leak).sum())
    exact_outlier = (1 - e_s[:, : cfg.outlier_k]).mean(axis=1)
    rel = np.abs(t.outlier_score.to_numpy() - exact_outlier) / np.maximum(exact_outlier, 1e-6)
    out["outlier_score_median_rel_error"] = round(float(np.median(rel)), 5)
    out["outlier_score_p99_rel_error"] = round(float(np.quantile(rel, 0.99)), 5)
    return out


def switch(args) -> dict:
    """Exact vs IVF search time for all rows of an n-row manifest, and IVF's recall@1."""
    from prune import generate as gen

    from curate.pipelines import _embeddings as E
    from curate.pipelines.check.knn import VectorSource, build_index

    res = {}
    for n in args.sizes:
        path = Path(args.work) / f"switch-{n}"
        if not path.exists():
            gen(path, n, max(10, n // 1000), seed=0)
        m = open_manifest(path)
        per = {}
        for kind, cap in (("exact", n), ("ivf", 0)):
            src = VectorSource(m, E.check_embedding_column(m, "embedding"))
            load0, t0 = _load(), time.perf_counter()
            index = build_index(src, exact_max_rows=cap, nprobe=CheckConfig().nprobe, seed=0)
            ids = []
            for _, x in src.batches(4096):
                ids.append(index.search(x, K)[1])
            per[kind] = {"seconds": round(time.perf_counter() - t0, 1), "load": [load0, _load()]}
            per[kind]["ids"] = np.concatenate(ids)
        rows = np.arange(n)
        _, e = without_self(np.zeros(per["exact"]["ids"].shape), per["exact"].pop("ids"), rows)
        _, a = without_self(np.zeros(per["ivf"]["ids"].shape), per["ivf"].pop("ids"), rows)
        per["ivf"]["recall_at_1"] = round(float(np.mean(e[:, 0] == a[:, 0])), 4)
        per["ivf"]["recall_at_10"] = round(_overlap(e, a), 4)
        res[n] = per
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["generate", "run", "recall", "switch"])
    ap.add_argument("--path", default="bench-out/check-scale/m")
    ap.add_argument("--out", default="bench-out/check-scale/c")
    ap.add_argument("--work", default="bench-out/check-scale")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--sample", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[25_000, 50_000, 100_000])
    ap.add_argument("--options", default=None, help="JSON of check options")
    args = ap.parse_args()
    res = {"generate": generate, "run": run, "recall": recall, "switch": switch}[args.stage](args)
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
