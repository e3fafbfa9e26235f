"""Benchmark ``ingest`` of an ImageFolder tree of small images: images/s per worker count.

Builds (once) N JPEGs of SIZE x SIZE under ROOT from Fashion-MNIST (Debian's
dataset-fashion-mnist; train + test, mirrored copies past 70k), in ImageFolder layout by class,
then times ``curate.manifests.ingest.ingest`` with each worker count, after one untimed pass
that warms the page cache, so the figures measure decoding and writing rather than the disk.

    nice -n 10 python benchmarks/ingest.py --n 100000 --workers 1 2
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np
from _fashion import fashion_mnist

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat",
           "sandal", "shirt", "sneaker", "bag", "ankle-boot"]  # fmt: skip


def build_tree(root: Path, n: int, size: int) -> Path:
    """Write the ImageFolder tree once; a marker file makes later runs reuse it."""
    from PIL import Image

    marker = root / f".complete-{n}-{size}"
    if marker.exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    parts = [fashion_mnist("train"), fashion_mnist("test")]
    x = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    for name in CLASSES:
        (root / name).mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    for i in range(n):
        img = x[i % len(x)]
        if i >= len(x):
            img = img[:, ::-1]
        im = Image.fromarray(np.ascontiguousarray(img)).resize((size, size), Image.BILINEAR)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        (root / CLASSES[y[i % len(y)]] / f"{i:06d}.jpg").write_bytes(buf.getvalue())
    marker.touch()
    print(f"built {n} images in {time.perf_counter() - t0:.0f} s under {root}")
    return root


def warm(root: Path) -> tuple[int, int]:
    files, nbytes = 0, 0
    for p in root.rglob("*.jpg"):
        nbytes += len(p.read_bytes())
        files += 1
    return files, nbytes


def _cpu(who: int) -> float:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime


def run(root: Path, out: Path, workers: int, verify: bool) -> dict:
    """One timed ingest; CPU seconds of this process and of the (reaped) worker processes."""
    from curate.manifests.ingest import ingest

    main0, kids0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    m = ingest(root, out, workers=workers, overwrite=True, verify_images=verify)
    seconds = time.perf_counter() - t0
    main_cpu = _cpu(resource.RUSAGE_SELF) - main0
    worker_cpu = _cpu(resource.RUSAGE_CHILDREN) - kids0
    return {
        "workers": workers,
        "verify_images": verify,
        "rows": m.num_rows,
        "seconds": round(seconds, 2),
        "images_per_s": round(m.num_rows / seconds),
        "error_rows": m.run_info["counts"]["error_rows"],
        "manifest_mb": round(m.nbytes_on_disk / 2**20, 1),
        "main_cpu_s": round(main_cpu, 2),
        "worker_cpu_s": round(worker_cpu, 2),
        "main_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "load_avg_1min": round(os.getloadavg()[0], 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--root", type=Path, default=Path("/tmp/curate-bench/imagefolder"))
    ap.add_argument("--out", type=Path, default=Path("/tmp/curate-bench/ingest-out"))
    args = ap.parse_args()
    root = build_tree(args.root, args.n, args.size)
    files, nbytes = warm(root)
    print(f"{files} files, {nbytes / 2**20:.0f} MB, mean {nbytes / files / 1024:.1f} KB")
    results = [run(root, args.out, 1, verify=False)]  # reading only: the I/O + write floor
    results += [run(root, args.out, w, verify=True) for w in args.workers]
    for r in results:
        print(json.dumps(r))
    base = next(r for r in results if r["verify_images"] and r["workers"] == args.workers[0])
    print("\n| workers | decode+check | images/s | speed-up | wall s | main CPU s | worker CPU s "
          "| load avg |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        speed = f"{r['images_per_s'] / base['images_per_s']:.2f}x" if r["verify_images"] else "-"
        verify = "yes" if r["verify_images"] else "no (read only)"
        print(f"| {r['workers']} | {verify} | {r['images_per_s']:,} | {speed} | {r['seconds']} "
              f"| {r['main_cpu_s']} | {r['worker_cpu_s']} | {r['load_avg_1min']} |")  # fmt: skip
    shutil.rmtree(args.out, ignore_errors=True)


if __name__ == "__main__":
    main()
