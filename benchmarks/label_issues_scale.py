"""Speed and memory of label-issue ranking at scale: 1M x 1000 pred_probs, and streaming Parquet.

Each measured run happens in a fresh subprocess so its peak RSS (ru_maxrss) is its own.

    nice python benchmarks/label_issues_scale.py --rows 1000000 --classes 1000 \
        --stream-rows 2000000 --check-rows 100000 --workdir /tmp/li_scale
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _synthetic_chunk(rng, n: int, k: int):
    """Softmax of noisy logits with a boosted true class; 10% of labels flipped."""
    true = rng.integers(0, k, n)
    logits = rng.standard_normal((n, k), dtype=np.float32)
    logits[np.arange(n), true] += rng.uniform(2, 9, n).astype(np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    labels = true.copy()
    flip = rng.random(n) < 0.1
    labels[flip] = rng.integers(0, k, int(flip.sum()))
    return labels, logits


def make_npy(path: Path, n: int, k: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    pp = np.lib.format.open_memmap(path / "pp.npy", mode="w+", dtype=np.float32, shape=(n, k))
    labels = np.empty(n, dtype=np.int64)
    step = max(1, (1 << 24) // k)
    for start in range(0, n, step):
        y, p = _synthetic_chunk(rng, min(step, n - start), k)
        pp[start : start + len(y)], labels[start : start + len(y)] = p, y
    pp.flush()
    del pp
    np.save(path / "labels.npy", labels)


def make_parquet(path: Path, n: int, k: int, seed: int = 1) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    schema = pa.schema([("label", pa.int64()), ("pred_probs", pa.list_(pa.float32(), k))])
    path.mkdir(parents=True, exist_ok=True)
    step = max(1, (1 << 24) // k)
    with pq.ParquetWriter(path / "part-00000.parquet", schema, compression="none") as w:
        for start in range(0, n, step):
            y, p = _synthetic_chunk(rng, min(step, n - start), k)
            arr = pa.FixedSizeListArray.from_arrays(pa.array(p.ravel()), k)
            w.write_table(pa.table({"label": y, "pred_probs": arr}, schema=schema))


# -- measured phases (each in its own process) -------------------------------------------------
def _labels_manifest(work: Path) -> Path:
    import pyarrow as pa

    from curate.manifests.io import write_manifest

    out = work / "labels.parquet"
    if not out.exists():
        labels = np.load(work / "labels.npy")
        ids = pa.array(np.char.add("r", np.arange(len(labels)).astype(str)))
        write_manifest(pa.table({"id": ids, "label": labels}), out)
    return out


def phase_api(work: Path, mode: str) -> dict:
    """curate.label_issues on the .npy: memory-mapped, or loaded into RAM first."""
    from curate.pipelines.label_issues import label_issues

    manifest = _labels_manifest(work)
    t0 = time.perf_counter()
    pp = np.load(work / "pp.npy", mmap_mode="r" if mode == "mmap" else None)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = label_issues(manifest, pred_probs=pp, method="low_self_confidence", overwrite=True)
    return {
        "load_s": round(t_load, 1),
        "rank_s": round(time.perf_counter() - t0, 1),
        "issues": int(np.sum(result.column("is_label_issue").to_numpy())),
        "array_gb": round(pp.nbytes / 1e9, 2),
    }


def phase_check(work: Path, rows: int, which: str) -> dict:
    """cleanlab vs curate's chunked ranking on the first ``rows`` rows (equality + cost)."""
    from curate.pipelines.label_issues.ranking import array_chunks, chunk_rows, rank_chunked

    pp = np.array(np.load(work / "pp.npy", mmap_mode="r")[:rows])
    labels = np.load(work / "labels.npy")[:rows]
    t0 = time.perf_counter()
    if which == "cleanlab":
        from cleanlab.filter import find_label_issues

        mask = find_label_issues(labels, pp, filter_by="low_self_confidence")
    else:
        k = pp.shape[1]
        mask = rank_chunked(
            array_chunks(labels, pp, chunk_rows(k, 65536)), rows, k, method="low_self_confidence"
        ).is_label_issue
    np.save(work / f"mask_{which}.npy", mask)
    return {"rank_s": round(time.perf_counter() - t0, 1), "issues": int(mask.sum())}


def phase_stream(work: Path) -> dict:
    from curate.pipelines.label_issues import rank_parquet

    t0 = time.perf_counter()
    ranking = rank_parquet(work / "stream")
    return {"rank_s": round(time.perf_counter() - t0, 1), "issues": ranking.num_issues}


def _peak_rss_bytes() -> int:
    """This process's peak RSS (VmHWM; ru_maxrss would carry the parent's over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _child(args) -> None:
    from threadpoolctl import threadpool_limits

    work = Path(args.workdir)
    with threadpool_limits(1):
        if args.phase.startswith("api-"):
            out = phase_api(work, args.phase[4:])
        elif args.phase.startswith("check-"):
            out = phase_check(work, args.check_rows, args.phase[6:])
        else:
            out = phase_stream(work)
    out["peak_rss_gb"] = round(_peak_rss_bytes() / 1e9, 2)
    print("RESULT " + json.dumps(out))


def _run(phase: str, args) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--workdir", args.workdir,
           "--check-rows", str(args.check_rows)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise SystemExit(f"{phase} failed:\n{proc.stdout}\n{proc.stderr}")
    res = json.loads(line[0][7:])
    print(phase, res, flush=True)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--stream-rows", type=int, default=2_000_000)
    ap.add_argument("--check-rows", type=int, default=100_000)
    ap.add_argument("--workdir", default="/tmp/label_issues_scale")
    ap.add_argument("--phase", default=None)
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    args = ap.parse_args()
    if args.phase:
        return _child(args)
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"rows": args.rows, "classes": args.classes}
    t0 = time.perf_counter()
    if not (work / "pp.npy").exists():
        make_npy(work, args.rows, args.classes)
    results["generate_npy_s"] = round(time.perf_counter() - t0, 1)
    for which in ("cleanlab", "curate"):
        results[f"check_{which}"] = _run(f"check-{which}", args)
    same = np.array_equal(np.load(work / "mask_cleanlab.npy"), np.load(work / "mask_curate.npy"))
    results["check_identical"] = bool(same)
    for mode in ("mmap", "ram"):
        results[f"api_{mode}"] = _run(f"api-{mode}", args)
    if args.stream_rows:
        t0 = time.perf_counter()
        if not (work / "stream").exists():
            make_parquet(work / "stream", args.stream_rows, args.classes)
        results["stream_rows"] = args.stream_rows
        results["generate_parquet_s"] = round(time.perf_counter() - t0, 1)
        results["stream_parquet_gb"] = round(
            sum(f.stat().st_size for f in (work / "stream").iterdir()) / 1e9, 2
        )
        results["stream"] = _run("stream", args)
    print(json.dumps(results, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(work)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
