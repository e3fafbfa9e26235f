"""Manifest I/O at scale: write and read back N rows with a 512-d float16 embedding, then
DuckDB GROUP BYs over it; each phase runs in its own process so its peak RSS is its own.

    python benchmarks/manifest_io.py --rows 10000000 --dir /tmp/curate-bench
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

BATCH = 65_536
DIM = 512


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_write(path: Path, rows: int) -> dict:
    from curate.manifests import ManifestWriter
    from curate.manifests.schema import embedding_field, with_class_names

    schema = pa.schema(
        [
            pa.field("id", pa.string()),
            pa.field("label", pa.int64()),
            pa.field("cluster", pa.int32()),
            embedding_field("embedding", DIM, "float16", model="synthetic"),
        ]
    )
    schema = with_class_names(schema, [f"c{i}" for i in range(100)])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with ManifestWriter(path, schema=schema, overwrite=True) as w:
        for start in range(0, rows, BATCH):
            n = min(BATCH, rows - start)
            emb = rng.standard_normal((n, DIM), dtype=np.float32)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            batch = pa.table(
                {
                    "id": pa.array(np.char.add("r", np.arange(start, start + n).astype(str))),
                    "label": pa.array(rng.integers(0, 100, n)),
                    "cluster": pa.array(rng.integers(0, 1000, n).astype(np.int32)),
                    "embedding": pa.FixedSizeListArray.from_arrays(
                        pa.array(emb.astype(np.float16).ravel()), DIM
                    ),
                },
                schema=schema,
            )
            w.write(batch)
        w.close()
    return {"seconds": time.perf_counter() - t0}


def phase_read(path: Path, rows: int) -> dict:
    from curate.manifests import open_manifest

    m = open_manifest(path)
    t0 = time.perf_counter()
    seen, norm_sum = 0, 0.0
    for batch in m.iter_batches():
        emb = batch.column("embedding").values.to_numpy(zero_copy_only=False).reshape(-1, DIM)
        norm_sum += float(np.einsum("ij,ij->", emb[:64], emb[:64], dtype=np.float32))
        seen += batch.num_rows
    assert seen == rows, (seen, rows)
    return {"seconds": time.perf_counter() - t0, "rows": seen}


def phase_groupby(path: Path, rows: int) -> dict:
    import curate

    t0 = time.perf_counter()
    by_cluster = curate.sql(
        "SELECT cluster, count(*) AS n, avg(label) AS mean_label FROM m GROUP BY cluster", m=path
    )
    t1 = time.perf_counter()
    by_label = curate.sql("SELECT label, avg(embedding[1]) AS e0 FROM m GROUP BY label", m=path)
    t2 = time.perf_counter()
    assert sum(by_cluster.column("n").to_pylist()) == rows and by_label.num_rows == 100
    return {"groupby_cluster_seconds": t1 - t0, "groupby_label_embedding_seconds": t2 - t1}


PHASES = {"write": phase_write, "read": phase_read, "groupby": phase_groupby}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/curate-bench-io"))
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the written manifest")
    args = ap.parse_args()
    path = args.dir / "manifest"
    if args.phase:
        result = PHASES[args.phase](path, args.rows)
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    report = {"rows": args.rows, "dim": DIM}
    for phase in ("write", "read", "groupby"):
        cmd = [sys.executable, __file__, "--rows", str(args.rows), "--dir", str(args.dir)]
        out = subprocess.run([*cmd, "--phase", phase], check=True, capture_output=True, text=True)
        report[phase] = json.loads(out.stdout.strip().splitlines()[-1])
        if phase == "write":
            size = sum(f.stat().st_size for f in path.glob("*.parquet"))
            report["bytes_on_disk"] = size
        print(phase, report[phase], flush=True)
    gb = report["bytes_on_disk"] / 1e9
    print(
        f"{args.rows:,} rows, {gb:.2f} GB on disk: "
        f"write {report['write']['seconds']:.1f}s ({report['write']['peak_rss_mb']:.0f} MB peak), "
        f"read {report['read']['seconds']:.1f}s ({report['read']['peak_rss_mb']:.0f} MB peak), "
        f"GROUP BY cluster {report['groupby']['groupby_cluster_seconds']:.2f}s, "
        f"GROUP BY label avg(embedding[1]) "
        f"{report['groupby']['groupby_label_embedding_seconds']:.1f}s "
        f"({report['groupby']['peak_rss_mb']:.0f} MB peak)"
    )
    if not args.keep:
        shutil.rmtree(path)


if __name__ == "__main__":
    main()
