"""curate report at scale: a generated N-row manifest with every report column, then the report
(single file and folder form) in their own processes, so each peak RSS (VmHWM) is its own.

Columns: id, label (10 classes), a small PNG per row, 64-d float16 embedding, cluster and
centroid_sim (100 clusters), label_quality / is_label_issue / suggested_label, keep and
prune_reason (dbp:over_quota and semdedup:dup_of=<id>), plus an error on 0.1% of rows.

    OMP_NUM_THREADS=1 python benchmarks/report.py --rows 1000000 --dir /tmp/curate-bench-report
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

BATCH = 65_536
DIM = 64
CLUSTERS = 100


def _vm_hwm_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _png_pool(rng, n: int = 256) -> list[bytes]:
    from PIL import Image

    out = []
    for _ in range(n):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _schema() -> pa.Schema:
    from curate.manifests.schema import embedding_field, with_class_names

    fields = [
        pa.field("id", pa.string()),
        pa.field("image", pa.binary()),
        pa.field("label", pa.int64()),
        pa.field("error", pa.string()),
        embedding_field("embedding", DIM, "float16", model="synthetic"),
        pa.field("cluster", pa.int32()),
        pa.field("centroid_sim", pa.float32()),
        pa.field("label_quality", pa.float32()),
        pa.field("is_label_issue", pa.bool_()),
        pa.field("suggested_label", pa.int64()),
        pa.field("keep", pa.bool_()),
        pa.field("prune_reason", pa.string()),
    ]
    return with_class_names(pa.schema(fields), [f"class_{i}" for i in range(10)])


def _batch(rng, start: int, n: int, pool: list[bytes], schema: pa.Schema) -> pa.Table:
    ids = np.char.add("r", np.char.zfill(np.arange(start, start + n).astype(str), 8))
    label = rng.integers(0, 10, n)
    cluster = rng.integers(0, CLUSTERS, n).astype(np.int32)
    centers = np.random.default_rng(1).standard_normal((CLUSTERS, DIM)).astype(np.float32)
    emb = centers[cluster] + 0.5 * rng.standard_normal((n, DIM), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    quality = rng.beta(5, 1, n).astype(np.float32)
    flagged = quality < 0.3
    suggested = np.where(flagged, (label + rng.integers(1, 10, n)) % 10, label)
    keep = rng.random(n) < 0.5
    dup = ~keep & (rng.random(n) < 0.2)
    reason = np.where(keep, None, "dbp:over_quota").astype(object)
    reason[dup] = [f"semdedup:dup_of=r{max(0, start + i - 1):08d}" for i in np.flatnonzero(dup)]
    error = np.full(n, None, object)
    error[rng.random(n) < 0.001] = "decode: truncated image"
    cols = {
        "id": ids, "image": [pool[i] for i in rng.integers(0, len(pool), n)], "label": label,
        "error": error, "cluster": cluster, "centroid_sim": rng.random(n).astype(np.float32),
        "label_quality": quality, "is_label_issue": flagged, "suggested_label": suggested,
        "keep": keep, "prune_reason": reason,
    }  # fmt: skip
    arrays = {k: pa.array(v, schema.field(k).type) for k, v in cols.items()}
    arrays["embedding"] = pa.FixedSizeListArray.from_arrays(
        pa.array(emb.astype(np.float16).ravel()), DIM
    )
    return pa.table({f.name: arrays[f.name] for f in schema}, schema=schema)


def phase_generate(path: Path, rows: int) -> dict:
    from curate.manifests import ManifestWriter

    rng = np.random.default_rng(0)
    pool, schema = _png_pool(rng), _schema()
    t0 = time.perf_counter()
    with ManifestWriter(path, schema=schema, overwrite=True) as w:
        for start in range(0, rows, BATCH):
            w.write(_batch(rng, start, min(BATCH, rows - start), pool, schema))
        w.close()
    size = sum(f.stat().st_size for f in path.rglob("*.parquet"))
    return {"seconds": time.perf_counter() - t0, "mb_on_disk": size / 1e6}


def phase_report(path: Path, out: Path) -> dict:
    from curate.reporting import report

    t0 = time.perf_counter()
    page = report([path], out, overwrite=True)
    weight = sum(f.stat().st_size for f in out.rglob("*")) if out.is_dir() else page.stat().st_size
    return {
        "seconds": time.perf_counter() - t0,
        "page_mb": weight / 1e6,
        "peak_rss_mb": _vm_hwm_mb(),
    }


def _run_phase(name: str, *args: str) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--phase", name, *args], capture_output=True, text=True
    )
    if res.returncode:
        raise SystemExit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/curate-bench-report"))
    ap.add_argument("--phase", default=None)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", action="store_true", help="keep (and reuse) the generated manifest")
    a = ap.parse_args()
    manifest = a.dir / "manifest"
    if a.phase == "generate":
        print(json.dumps(phase_generate(manifest, a.rows)))
        return
    if a.phase == "report":
        print(json.dumps(phase_report(manifest, a.out)))
        return
    a.dir.mkdir(parents=True, exist_ok=True)
    results: dict = {"rows": a.rows}
    if not (a.keep and manifest.exists()):
        results["generate"] = _run_phase("generate", "--rows", str(a.rows), "--dir", str(a.dir))
    for form, out in (("file", a.dir / "report.html"), ("folder", a.dir / "report-folder")):
        results[form] = _run_phase("report", "--dir", str(a.dir), "--out", str(out))
        print(form, json.dumps(results[form]), flush=True)
    print(json.dumps(results, indent=2))
    if not a.keep:
        shutil.rmtree(manifest)


if __name__ == "__main__":
    main()
