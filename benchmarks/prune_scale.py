"""Prune at scale inside a memory limit: peak memory and wall time per phase vs bare FAISS.

For each N (e.g. 1M, 4M, 10M rows of 512-d float16 unit vectors around 2,000 concepts, 2% of
them planted near-duplicates, as issue #18 describes), in one run:

* ``bare``: FAISS spherical k-means trained on the same seeded sample the prune trains on,
  then every row assigned to its nearest centroid with FAISS, streaming the manifest in
  65,536-row batches (the baseline: train + assign, nothing else); and the same assignment
  with numpy's BLAS, which curate uses on the CPU (a second, stricter baseline);
* ``pipeline``: ``curate prune POOL -o OUT --keep 0.27 --method dbp --dedup-eps 0.002 --k K``
  as a user runs it, inside a cgroup-v1 memory limit (``--limit``, default 2.5G): the
  honest memory check, since RSS also counts file pages. Per-phase seconds come from its
  run.json; peak anonymous memory from the cgroup.

``--ray`` also runs the first N under ``--engine ray`` and samples every Ray process's
anonymous memory (``RssAnon``) to report the largest worker.

Run: ``python benchmarks/prune_scale.py --n 1000000 4000000 10000000 --dir /work/bench-scale``
(the data, ~1 KB per row, is generated once per N and reused).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cgroup import limited, parse_size

D = 512


def generate(path: Path, n: int, concepts: int = 2000, dup_frac: float = 0.02, seed: int = 0):
    """benchmarks/prune.py's generator: unit vectors around ``concepts`` directions of varying
    spread; ``dup_frac`` of the rows are near-copies of another row of their 100k-row block."""
    from prune import generate as clustered

    clustered(path, n, concepts, seed, dup_frac=dup_frac, id_digits=10)


def bare(path: Path, k: int, seed: int) -> dict:
    """FAISS only: train on the prune's own seeded sample, then assign every row (streamed)."""
    import faiss

    from curate.engines.workers import ThreadWorkers
    from curate.manifests.io import Manifest
    from curate.pipelines import _embeddings as E
    from curate.pipelines.cluster import ClusterConfig, sample_vectors

    m = Manifest(path)
    col = E.check_embedding_column(m, "embedding")
    t0 = time.perf_counter()
    _, sample = sample_vectors(m, col, ClusterConfig(k=k, seed=seed), ThreadWorkers())
    t_sample = time.perf_counter() - t0
    t0 = time.perf_counter()
    km = faiss.Kmeans(
        D,
        k,
        niter=20,
        seed=seed,
        spherical=True,
        max_points_per_centroid=256,
        min_points_per_centroid=1,
    )
    km.train(sample)
    t_train = time.perf_counter() - t0
    del sample
    index = faiss.IndexFlatIP(D)
    index.add(km.centroids)
    t0 = time.perf_counter()
    read = 0.0
    for b in m.iter_batches(["embedding"], prefetch=1):
        r0 = time.perf_counter()
        x = E.raw_view(b.column(0), D).astype(np.float32)
        read += time.perf_counter() - r0
        index.search(x, 1)
    t_assign = time.perf_counter() - t0
    # the same assignment with numpy's BLAS (what curate uses on the CPU), for reference
    from curate.pipelines._kmeans import assign_blas

    t0 = time.perf_counter()
    for b in m.iter_batches(["embedding"], prefetch=1):
        assign_blas(E.raw_view(b.column(0), D).astype(np.float32), km.centroids)
    t_blas = time.perf_counter() - t0
    return {
        "sample_s": round(t_sample, 1),
        "train_s": round(t_train, 1),
        "assign_s": round(t_assign, 1),
        "assign_decode_s": round(read, 1),
        "train_plus_assign_s": round(t_train + t_assign, 1),
        "assign_numpy_blas_s": round(t_blas, 1),
        "train_plus_numpy_assign_s": round(t_train + t_blas, 1),
    }


def _rss_anon(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class RayMemory:
    """Samples RssAnon of every process whose command line names ray, every 0.5 s."""

    def __init__(self) -> None:
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            for p in Path("/proc").iterdir():
                if not p.name.isdigit():
                    continue
                try:
                    cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()[:80]
                except OSError:
                    continue
                if "ray::" in cmd or "raylet" in cmd or "default_worker" in cmd:
                    name = cmd.split()[0] if cmd.startswith("ray::") else cmd.split("/")[-1]
                    key = f"{p.name}:{name[:40]}"
                    self.peak[key] = max(self.peak.get(key, 0), _rss_anon(int(p.name)))

    def __enter__(self) -> RayMemory:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def pipeline(data: Path, out: Path, args, engine: str = "local") -> dict:
    cmd = [
        sys.executable,
        "-m",
        "curate.cli.app",
        "prune",
        str(data),
        "-o",
        str(out),
        "--keep",
        "0.27",
        "--method",
        "dbp",
        "--dedup-eps",
        str(args.dedup_eps),
        "--k",
        str(args.k),
        "--seed",
        str(args.seed),
        "--overwrite",
        "--engine",
        engine,
    ]
    log = open(out.with_name(out.name + f"-{engine}.log"), "w")  # noqa: SIM115
    mem = RayMemory() if engine == "ray" else None
    if mem:
        mem.__enter__()
    res = limited(cmd, parse_size(args.limit), stdout=log, stderr=subprocess.STDOUT)
    if mem:
        mem.__exit__()
    log.close()
    out_info = {
        "wall_s": res.wall_s,
        "returncode": res.returncode,
        "oom_killed": res.oom_killed,
        "limit_gb": res.gb("limit_bytes"),
        "peak_anon_gb": res.gb("peak_anon_bytes"),
        "cgroup_max_usage_gb_incl_page_cache": res.gb("max_usage_bytes"),
        "peak_rss_gb": res.gb("peak_rss_bytes"),
    }
    if res.returncode == 0:
        info = json.loads((out / "run.json").read_text())
        out_info["timings"] = info["timings"]
        out_info["kept"] = info["counts"]["kept"]
        out_info["removed_by_reason"] = info["counts"]["removed_by_reason"]
    if mem:
        top = sorted(mem.peak.items(), key=lambda kv: -kv[1])[:5]
        out_info["ray_peak_rss_anon_gb"] = {k: round(v / 1e9, 3) for k, v in top}
    return out_info


def _child(mode: str, args, n: int, data: Path) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--n",
        str(n),
        "--k",
        str(args.k),
        "--seed",
        str(args.seed),
        "--data",
        str(data),
    ]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"{mode} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def run_one(n: int, args) -> dict:
    data = args.dir / f"pool-{n}"
    out = args.dir / f"pruned-{n}"
    result: dict = {"n": n, "d": D, "k": args.k, "load_before": os.getloadavg()}
    if not data.exists():
        t0 = time.perf_counter()
        _child("gen", args, n, data)
        result["generate_s"] = round(time.perf_counter() - t0, 1)
    result["bare"] = _child("bare", args, n, data)
    result["pipeline"] = pipeline(data, out, args)
    p = result["pipeline"]
    if p["returncode"] == 0:
        b = result["bare"]
        result["ratio_wall_to_bare_train_assign"] = round(p["wall_s"] / b["train_plus_assign_s"], 3)
        result["ratio_wall_to_train_numpy_assign"] = round(
            p["wall_s"] / b["train_plus_numpy_assign_s"], 3
        )
    result["load_after"] = os.getloadavg()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[1_000_000])
    ap.add_argument("--k", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dedup-eps", type=float, default=0.002)
    ap.add_argument("--limit", default="2.5G")
    ap.add_argument("--dir", type=Path, default=Path("bench-out/prune-scale"))
    ap.add_argument("--ray", action="store_true", help="also the first N under --engine ray")
    ap.add_argument("--results", type=Path, default=None)
    ap.add_argument("--child", choices=["gen", "bare"], default=None)
    ap.add_argument("--data", type=Path, default=None)
    args = ap.parse_args()
    if args.child == "gen":
        generate(args.data, args.n[0], seed=args.seed)
        print(json.dumps({}))
        return
    if args.child == "bare":
        print(json.dumps(bare(args.data, args.k, args.seed)))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    results_path = args.results or args.dir / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for n in args.n:
        results[str(n)] = run_one(n, args)
        results_path.write_text(json.dumps(results, indent=2))
        print(json.dumps(results[str(n)]), flush=True)
    if args.ray:
        n = args.n[0]
        data, out = args.dir / f"pool-{n}", args.dir / f"pruned-{n}-ray"
        results[f"{n}-ray"] = {
            "n": n,
            "pipeline": pipeline(data, out, args, engine="ray"),
            "load": os.getloadavg(),
        }
        results_path.write_text(json.dumps(results, indent=2))
        print(json.dumps(results[f"{n}-ray"]), flush=True)


if __name__ == "__main__":
    main()
