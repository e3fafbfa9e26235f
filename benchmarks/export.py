"""Memory and speed of string-label ingest and of ``curate export``, inside a memory limit.

Builds (once) a Parquet source of N rows larger than the limit: Fashion-MNIST images resized to
SIZE px as JPEG bytes (Debian's dataset-fashion-mnist; mirrored copies past 70k), the class
*name* as a string label, a caption and a seeded unit 256-d float32 embedding list. Then, each
inside a cgroup-v1 memory limit (``_cgroup.py``: peak anonymous memory, page cache excluded):

1. ``curate ingest`` with string labels (the first pass over the label column, then the rows),
   against the same source with integer labels (the ingest that existed before);
2. ``curate prune --method random --keep 0.5`` (the ``keep`` column an export follows);
3. ``curate export`` of the kept rows as imagefolder, webdataset and parquet.

    python benchmarks/export.py --n 300000 --limit 400M --setup-limit 2G --work /tmp/export-bench
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _cgroup import limited, parse_size
from _fashion import fashion_mnist

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle-boot"]  # fmt: skip
CHUNK = 10_000


def build_source(path: Path, n: int, size: int, *, string_labels: bool) -> Path:
    """Write the source Parquet once, chunk by chunk (a marker file makes later runs reuse it)."""
    from PIL import Image

    marker = path.with_name(path.name + ".complete")
    if marker.exists():
        return path
    parts = [fashion_mnist("train"), fashion_mnist("test")]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    rng = np.random.default_rng(0)
    writer = None
    for start in range(0, n, CHUNK):
        idx = np.arange(start, min(n, start + CHUNK))
        images = []
        for i in idx:
            img = x[i % len(x)] if i < len(x) else x[i % len(x)][:, ::-1]
            im = Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.BILINEAR)
            buf = io.BytesIO()
            im.save(buf, format="JPEG", quality=90)
            images.append(buf.getvalue())
        labels = y[idx % len(y)]
        emb = rng.normal(size=(len(idx), 256)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        table = pa.table(
            {
                "key": [f"fashion/{i:07d}.jpg" for i in idx],
                "image": pa.array(images, pa.binary()),
                "label": [CLASSES[c] for c in labels] if string_labels else labels.astype(np.int64),
                "caption": [f"a photo of a {CLASSES[c]}" for c in labels],
                "emb": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 256),
            }
        )
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()
    marker.touch()
    return path


def run(name: str, cmd: list[str], limit: int, results: dict) -> None:
    res = limited(cmd, limit, stdout=sys.stderr)
    results[name] = {
        "rc": res.returncode,
        "wall_s": res.wall_s,
        "peak_anon_mb": round(res.peak_anon_bytes / 2**20),
        "max_usage_mb": round(res.max_usage_bytes / 2**20),
        "oom_killed": res.oom_killed,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
    }
    print(name, json.dumps(results[name]), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--limit", default="400M", help="memory limit of each export")
    ap.add_argument("--setup-limit", default="2G", help="memory limit of the ingests and prune")
    ap.add_argument("--work", type=Path, default=Path("/tmp/export-bench"))
    args = ap.parse_args()
    limit, setup_limit = parse_size(args.limit), parse_size(args.setup_limit)
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    names = build_source(work / f"names-{args.n}.parquet", args.n, args.size, string_labels=True)
    ints = build_source(work / f"ints-{args.n}.parquet", args.n, args.size, string_labels=False)
    print(f"sources ready in {time.perf_counter() - t0:.0f} s: {names.stat().st_size / 1e6:.0f} MB")
    curate = str(Path(sys.executable).with_name("curate"))
    results: dict = {
        "n": args.n,
        "limit": args.limit,
        "setup_limit": args.setup_limit,
        "source_mb": names.stat().st_size // 10**6,
    }
    for out in ("m-names", "m-ints", "pruned", "if", "wds", "subset.parquet"):
        shutil.rmtree(work / out, ignore_errors=True)
    (work / "subset.parquet").unlink(missing_ok=True)
    ingest = [curate, "ingest", "--embedding-column", "emb", "-j", str(os.cpu_count())]
    for name, src, out in (("string", names, "m-names"), ("int", ints, "m-ints")):
        run(
            f"ingest {name} labels",
            [*ingest, str(src), "-o", str(work / out)],
            setup_limit,
            results,
        )
    prune = [curate, "prune", str(work / "m-names"), "-o", str(work / "pruned")]
    run("prune random 0.5", [*prune, "--method", "random", "--keep", "0.5"], setup_limit, results)
    for fmt, out in (("imagefolder", "if"), ("webdataset", "wds"), ("parquet", "subset.parquet")):
        cmd = [curate, "export", str(work / "pruned"), "-o", str(work / out), "-f", fmt]
        run(f"export {fmt}", cmd, limit, results)
        if results[f"export {fmt}"]["rc"] != 0:
            continue
        record = work / "subset.run.json" if fmt == "parquet" else work / out / "run.json"
        info = json.loads(record.read_text())
        results[f"export {fmt}"]["counts"] = info["counts"]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
