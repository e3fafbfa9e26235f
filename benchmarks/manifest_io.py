"""Manifest I/O at scale, layout against layout: write and read back N rows with a 512-d
float16 embedding, read the vectors into numpy, and run DuckDB queries over them.

Layouts (``--layouts``, all measured in one run on the same data):

* ``list``: the layout before raw-bytes vectors: ``FixedSizeList<float16, 512>`` in Parquet,
  no dictionary on floats, statistics and snappy on every column (written here with pyarrow
  exactly as ``ShardStream`` used to write it; read through today's library);
* ``list-plain``: the same column without statistics and without compression;
* ``binary``: what :class:`curate.manifests.ManifestWriter` writes now, one
  ``fixed_size_binary(1024)`` per row (``curate.manifests.vectors``);
* ``npy``: scalar columns in Parquet plus the vectors in a ``.npy`` sidecar per shard (the
  clip-retrieval layout); DuckDB cannot read it, so its SQL columns stay empty.

Every phase of every layout runs in its own process, so each peak RSS is that phase's own.
The files of a layout are read right after they are written (page cache warm for all).

    python benchmarks/manifest_io.py --rows 1000000 --layouts list list-plain binary npy
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

BATCH = 65_536
SHARD = 1_000_000
DIM = 512
LAYOUTS = ("list", "list-plain", "binary", "npy")
VECTOR_ROWS = 1_000_000  # rows read into numpy by the "vectors" phase


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _schema(with_embedding: bool = True) -> pa.Schema:
    from curate.manifests.schema import embedding_field, with_class_names

    fields = [
        pa.field("id", pa.string()),
        pa.field("label", pa.int64()),
        pa.field("cluster", pa.int32()),
    ]
    if with_embedding:
        fields.append(embedding_field("embedding", DIM, "float16", model="synthetic"))
    return with_class_names(pa.schema(fields), [f"c{i}" for i in range(100)])


def _batches(rows: int):
    """The same seeded rows for every layout: scalars and unit float16 vectors."""
    rng = np.random.default_rng(0)
    for start in range(0, rows, BATCH):
        n = min(BATCH, rows - start)
        emb = rng.standard_normal((n, DIM), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        scalars = {
            "id": pa.array(np.char.add("r", np.arange(start, start + n).astype(str))),
            "label": pa.array(rng.integers(0, 100, n)),
            "cluster": pa.array(rng.integers(0, 1000, n).astype(np.int32)),
        }
        yield start, scalars, emb.astype(np.float16)


class _ListWriter:
    """Shards of the old layout, written by pyarrow as ``ShardStream`` wrote them."""

    def __init__(self, path: Path, *, plain: bool) -> None:
        self.path, self.plain, self.writer, self.shard = path, plain, None, -1
        path.mkdir(parents=True)
        self.schema = _schema()

    def write(self, start: int, table: pa.Table) -> None:
        if start // SHARD != self.shard:
            self.close()
            self.shard = start // SHARD
            opts = {"use_dictionary": ["id", "label", "cluster"]}
            if self.plain:
                opts["write_statistics"] = ["id", "label", "cluster"]
                opts["compression"] = {"id": "snappy", "label": "snappy", "cluster": "snappy"}
                opts["compression"]["embedding"] = "none"
            out = self.path / f"part-{self.shard:05d}.parquet"
            self.writer = pq.ParquetWriter(out, self.schema, **opts)
        self.writer.write_table(table, row_group_size=BATCH)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def phase_write(path: Path, rows: int, layout: str) -> dict:
    from curate.manifests import ManifestWriter

    schema = _schema(layout != "npy")
    spent = 0.0
    if layout in ("list", "list-plain"):
        writer = _ListWriter(path, plain=layout == "list-plain")
    else:
        writer = ManifestWriter(path, schema=schema, overwrite=True, rows_per_shard=SHARD)
    sidecar = None
    for start, scalars, emb in _batches(rows):
        t0 = time.perf_counter()
        if layout == "npy":
            if start % SHARD == 0:
                sidecar = _open_npy(path, start // SHARD, min(SHARD, rows - start))
            sidecar[start % SHARD : start % SHARD + len(emb)] = emb
            writer.write(pa.table(scalars, schema=schema))
        else:
            flat = pa.array(emb.reshape(-1))
            scalars["embedding"] = pa.FixedSizeListArray.from_arrays(flat, DIM)
            table = pa.table(scalars, schema=schema)
            if isinstance(writer, _ListWriter):
                writer.write(start, table)
            else:
                writer.write(table)
        spent += time.perf_counter() - t0
    t0 = time.perf_counter()
    if sidecar is not None:
        sidecar.flush()
    writer.close()
    return {"seconds": spent + time.perf_counter() - t0}


def _open_npy(path: Path, shard: int, n: int) -> np.memmap:
    path.mkdir(parents=True, exist_ok=True)
    out = path / f"emb-{shard:05d}.npy"
    return np.lib.format.open_memmap(out, mode="w+", dtype=np.float16, shape=(n, DIM))


def phase_read(path: Path, rows: int, layout: str) -> dict:
    """Stream the embedding column (``FixedSizeList`` arrays, as steps get them), then every
    column, through the library."""
    from curate.manifests import open_manifest

    m = open_manifest(path)
    t0 = time.perf_counter()
    if layout == "npy":  # the vectors live beside the Parquet
        seen = sum(len(np.load(f)) for f in sorted(path.glob("emb-*.npy")))
    else:
        seen = sum(b.num_rows for b in m.iter_batches(["embedding"]))
    t1 = time.perf_counter()
    assert seen == rows and sum(b.num_rows for b in m.iter_batches()) == rows
    return {"embedding_s": t1 - t0, "all_columns_s": time.perf_counter() - t1}


def phase_vectors(path: Path, rows: int, layout: str) -> dict:
    """The first ``VECTOR_ROWS`` vectors into one float16 numpy array (what cluster and prune
    need); bounded so that a 10M run does not hold 10 GB on a shared machine."""
    from curate.manifests.vectors import read_vectors

    rows = min(rows, VECTOR_ROWS)
    t0 = time.perf_counter()
    if layout == "npy":
        parts, have = [], 0
        for f in sorted(path.glob("emb-*.npy")):
            if have < rows:
                parts.append(np.array(np.load(f, mmap_mode="r")[: rows - have]))
                have += len(parts[-1])
        vec = np.concatenate(parts)
    else:
        vec, present = read_vectors(path, "embedding", rows=(0, rows))
        assert present.all()
    seconds = time.perf_counter() - t0
    assert vec.shape == (rows, DIM) and vec.dtype == np.float16
    checksum = float(vec[:: max(1, rows // 1000)].astype(np.float64).sum())
    return {"seconds": seconds, "checksum": checksum}


def phase_sql(path: Path, rows: int, layout: str) -> dict:
    import curate

    if layout == "npy":
        return {}
    t0 = time.perf_counter()
    by_cluster = curate.sql(
        "SELECT cluster, count(*) AS n, avg(label) AS mean_label FROM m GROUP BY cluster", m=path
    )
    t1 = time.perf_counter()
    by_label = curate.sql("SELECT label, avg(embedding[1]) AS e0 FROM m GROUP BY label", m=path)
    t2 = time.perf_counter()
    nearest = curate.sql(
        "SELECT b.id, array_cosine_similarity(a.embedding, b.embedding) AS sim "
        "FROM m a, m b WHERE a.id = 'r0' ORDER BY sim DESC, b.id LIMIT 5",
        m=path,
    )
    t3 = time.perf_counter()
    assert sum(by_cluster.column("n").to_pylist()) == rows and by_label.num_rows == 100
    return {
        "groupby_cluster_s": t1 - t0,
        "groupby_label_embedding_s": t2 - t1,
        "cosine_scan_s": t3 - t2,
        "nearest": [[i, round(s, 4)] for i, s in zip(*nearest.to_pydict().values(), strict=True)],
    }


PHASES = {"write": phase_write, "read": phase_read, "vectors": phase_vectors, "sql": phase_sql}


def _run_layout(args: argparse.Namespace, layout: str) -> dict:
    path = args.dir / layout
    shutil.rmtree(path, ignore_errors=True)
    out = {}
    for phase in PHASES:
        cmd = [sys.executable, __file__, "--rows", str(args.rows), "--dir", str(args.dir)]
        cmd += ["--layouts", layout, "--phase", phase]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"{layout} {phase} failed:\n{res.stderr}")
        out[phase] = json.loads(res.stdout.strip().splitlines()[-1])
        if phase == "write":
            out["bytes_on_disk"] = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    if not args.keep:
        shutil.rmtree(path)
    return out


def _table(report: dict) -> str:
    rows = [
        "| layout | write s | write RSS MB | read embedding s | read all columns s | read RSS MB "
        "| vectors to numpy s | GB on disk | GROUP BY cluster s | avg(embedding[1]) s "
        "| cosine scan s | SQL RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for layout, r in report["layouts"].items():
        sql = r["sql"]

        def q(key: str, sql: dict = sql) -> str:
            return f"{sql[key]:.2f}" if key in sql else "n/a"

        rows.append(
            f"| {layout} | {r['write']['seconds']:.2f} | {r['write']['peak_rss_mb']:.0f} | "
            f"{r['read']['embedding_s']:.2f} | {r['read']['all_columns_s']:.2f} | "
            f"{r['read']['peak_rss_mb']:.0f} | "
            f"{r['vectors']['seconds']:.2f} | {r['bytes_on_disk'] / 1e9:.2f} | "
            f"{q('groupby_cluster_s')} | {q('groupby_label_embedding_s')} | "
            f"{q('cosine_scan_s')} | {sql['peak_rss_mb']:.0f} |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/curate-bench-io"))
    ap.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    ap.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    ap.add_argument("--keep", action="store_true", help="keep the written manifests")
    args = ap.parse_args()
    if args.phase:
        result = PHASES[args.phase](args.dir / args.layouts[0], args.rows, args.layouts[0])
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    report = {"rows": args.rows, "dim": DIM, "cpus": len(os.sched_getaffinity(0)), "layouts": {}}
    for layout in args.layouts:
        report["layouts"][layout] = _run_layout(args, layout)
        print(layout, json.dumps(report["layouts"][layout]), file=sys.stderr, flush=True)
    print(_table(report))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
