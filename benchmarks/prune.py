"""Scale benchmark: cluster + SemDeDup + DBP on generated clustered unit vectors vs bare FAISS.

Generates N unit vectors (d=512, float16) around ``--clusters`` concepts of varying spread,
5% of them planted near-duplicates, as a Parquet manifest; then, each in its own process so
peak RSS is measured per stage group:

* ``bare``: FAISS spherical k-means trained on the same k * 256 sample, every row assigned
  (the vectors already in memory as float32; reading them is timed separately);
* ``pipeline``: ``curate.pipelines.prune.prune(method="dbp", dedup_eps=...)``, which reads the
  manifest, trains, assigns and spills, runs SemDeDup and DBP per cluster, joins and writes
  every row (``benchmarks/prune_scale.py`` runs the same at 1M-10M inside a memory limit).

Wall time on a shared VM swings by 15-30% between identical runs, so ``--repeats R`` runs
the pair R times, alternating which goes first, and reports every pair's ratio and the median.

Run: ``python benchmarks/prune.py --n 1000000 --k 1000 --repeats 3`` (prints a JSON summary).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

D = 512


def _peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def _cpu_s() -> float:
    """User + system CPU seconds of this process, all threads: less load-sensitive than wall."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return round(r.ru_utime + r.ru_stime, 1)


def generate(
    path: Path,
    n: int,
    clusters: int,
    seed: int = 0,
    test_fraction: float = 0.0,
    dup_frac: float = 0.05,
    id_digits: int = 9,
) -> None:
    """Unit vectors around random centres; per-concept spread varies; ``dup_frac`` of the
    rows are near-copies (cosine ~0.999) of another row of their 100k-row block.
    ``test_fraction`` > 0 adds a ``split`` column with that share of seeded ``test`` rows."""
    from curate.manifests import schema as S
    from curate.manifests.io import ManifestWriter

    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, D)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.02, 0.06, clusters).astype(np.float32)
    weights = rng.dirichlet(np.full(clusters, 2.0))
    field = S.embedding_field(S.EMBEDDING, D, "float16", model="generated")
    schema = pa.schema([pa.field(S.ID, pa.string()), field])
    if test_fraction:
        schema = schema.append(pa.field(S.SPLIT, pa.string()))
    chunk = 100_000
    with ManifestWriter(path, schema=schema) as w:
        for start in range(0, n, chunk):
            m = min(chunk, n - start)
            c = rng.choice(clusters, m, p=weights)
            x = centres[c] + spread[c, None] * rng.normal(size=(m, D)).astype(np.float32)
            dup = np.flatnonzero(rng.random(m) < dup_frac)
            src = rng.integers(0, m, len(dup))
            x[dup] = x[src] + 0.002 * rng.normal(size=(len(dup), D)).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            flat = pa.array(x.astype(np.float16).ravel())
            ids = pa.array([f"g{i:0{id_digits}d}" for i in range(start, start + m)])
            emb = pa.FixedSizeListArray.from_arrays(flat, D)
            cols = {S.ID: ids, S.EMBEDDING: emb}
            if test_fraction:
                cols[S.SPLIT] = np.where(rng.random(m) < test_fraction, "test", "train")
            w.write(pa.table(cols, schema=schema))
        w.close()


def bare(path: Path, k: int, seed: int) -> dict:
    """FAISS only: read the vectors to float32, train on the k*256 sample, assign all."""
    import faiss

    from curate.manifests.io import Manifest

    t0 = time.perf_counter()
    m = Manifest(path)
    parts = []
    for b in m.iter_batches(["embedding"]):
        flat = b.column(0).flatten().to_numpy(zero_copy_only=False)
        parts.append(flat.reshape(-1, D).astype(np.float32))
    x = np.concatenate(parts)
    del parts
    t_read = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    cap = k * 256
    sample = x[np.sort(rng.choice(len(x), cap, replace=False))] if len(x) > cap else x
    t0 = time.perf_counter()
    km = faiss.Kmeans(D, k, niter=20, seed=seed, spherical=True, max_points_per_centroid=256)
    km.train(sample)
    t_train = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = faiss.IndexFlatIP(D)
    index.add(km.centroids)
    index.search(x, 1)
    t_assign = time.perf_counter() - t0
    return {
        "read_s": round(t_read, 2),
        "train_s": round(t_train, 2),
        "assign_s": round(t_assign, 2),
        "train_plus_assign_s": round(t_train + t_assign, 2),
        "cpu_s_total": _cpu_s(),
        "peak_rss_gb": round(_peak_rss_gb(), 2),
    }


def pipeline(path: Path, out: Path, k: int, seed: int, dedup_eps: float) -> dict:
    from curate.pipelines.prune import prune

    t0 = time.perf_counter()
    m = prune(
        path, out, keep=0.27, method="dbp", k=k, seed=seed, dedup_eps=dedup_eps, overwrite=True
    )
    total = time.perf_counter() - t0
    info = m.run_info
    t = info["timings"]
    return {
        "total_s": round(total, 2),
        "read_and_sample_s": t.get("sample"),
        "train_s": t.get("train"),
        "assign_and_spill_s": t.get("scan"),
        "per_cluster_s": t.get("decide"),
        "dbp_s": round(t["dbp"] - t.get("decide", 0.0), 2),
        "join_s": t.get("finalize"),
        "write_s": t.get("write"),
        "cpu_s_total": _cpu_s(),
        "peak_rss_gb": round(_peak_rss_gb(), 2),
        "kept": info["counts"]["kept"],
        "removed_by_reason": info["counts"]["removed_by_reason"],
    }


def _child(mode: str, args: argparse.Namespace, data: Path, out: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--n",
        str(args.n),
        "--k",
        str(args.k),
        "--dir",
        str(args.dir),
        "--seed",
        str(args.seed),
        "--dedup-eps",
        str(args.dedup_eps),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"{mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dedup-eps", type=float, default=0.01)
    p.add_argument("--dir", type=Path, default=None)
    p.add_argument("--repeats", type=int, default=1, help="bare/pipeline pairs to run")
    p.add_argument("--child", choices=["gen", "bare", "pipeline"], default=None)
    args = p.parse_args()
    if args.dir is None:
        args.dir = Path(tempfile.mkdtemp(prefix="curate-prune-bench-"))
    data, out = args.dir / "data", args.dir / "pruned"
    if args.child == "gen":
        t0 = time.perf_counter()
        generate(data, args.n, clusters=args.k, seed=args.seed)
        print(json.dumps({"generate_s": round(time.perf_counter() - t0, 2)}))
    elif args.child == "bare":
        print(json.dumps(bare(data, args.k, args.seed)))
    elif args.child == "pipeline":
        print(json.dumps(pipeline(data, out, args.k, args.seed, args.dedup_eps)))
    else:
        result = {"n": args.n, "d": D, "k": args.k, "dtype": "float16", "runs": []}
        if not data.exists():
            result["generate"] = _child("gen", args, data, out)
        for r in range(args.repeats):
            order = ("bare", "pipeline") if r % 2 == 0 else ("pipeline", "bare")
            run = {"first": order[0], **{mode: _child(mode, args, data, out) for mode in order}}
            run["ratio"] = round(run["pipeline"]["total_s"] / run["bare"]["train_plus_assign_s"], 2)
            result["runs"].append(run)
            print(json.dumps({"pair": r, "order": order, **run}), file=sys.stderr, flush=True)
        ratios = sorted(run["ratio"] for run in result["runs"])
        result["ratios"] = [run["ratio"] for run in result["runs"]]
        result["median_ratio_pipeline_total_to_bare_train_assign"] = ratios[len(ratios) // 2]
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
