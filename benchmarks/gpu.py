"""Every GPU path of curate in one run (at most ~8 minutes on one H100), one results file.

Sections, each timed, each written to the results file as soon as it ends (a failure is
recorded with its error and the next section runs):

* ``kmeans``: spherical k-means (torch backend) on the prune's bounded sample and assignment of
  10M x 512 float16 rows, the prune's GPU path (``SphericalKMeans(backend="torch")``);
* ``semdedup``: duplicate groups inside clusters on the GPU (``duplicate_groups(device=
  "cuda")``): 200 clusters of 5,000 rows and one of 100,000;
* ``prune``: ``curate.prune`` end to end at 1M x 512 rows (dbp with ``--dedup-eps``), which
  puts k-means, assignment and the per-cluster similarities on the GPU when one is present;
* ``embed``: ``curate embed`` of 256 x 256 JPEGs with GPU decode (nvjpeg) and a timm
  ViT-B/16 (random weights, bf16): images/s end to end and model only;
* ``reinforce``: views/s of ``curate reinforce`` with its CNN teacher on the GPU;
* ``distill``: DM iterations/s on the GPU.

The GPU box has Python 3.12, torch + CUDA, torchvision, timm and pyarrow, but not every
package curate imports. ``bash benchmarks/gpu_wheels.sh DIR`` downloads the missing ones as
Python 3.12 wheels (scipy, duckdb, typer, rich, ...) to carry there; then, on the GPU box:

    pip install --no-deps DIR/*.whl && pip install --no-deps -e . \\
        && python benchmarks/gpu.py --out $OUT/gpu.json

``--small --device cpu`` runs every section at toy sizes on a CPU (how the script is tested).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

SIZES = {
    "full": {
        "n": 10_000_000,
        "k": 2000,
        "clusters": 200,
        "per": 5000,
        "big": 100_000,
        "prune_n": 1_000_000,
        "images": 4096,
        "reinforce": 2000,
        "iters": 200,
        "ipc": 10,
    },
    "small": {
        "n": 20_000,
        "k": 20,
        "clusters": 4,
        "per": 300,
        "big": 1000,
        "prune_n": 5000,
        "images": 48,
        "reinforce": 60,
        "iters": 3,
        "ipc": 1,
    },
}


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _clustered(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """float16 unit rows around ``k`` directions, generated in 1M-row pieces."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, d), np.float16)
    for i in range(0, n, 1_000_000):
        m = min(1_000_000, n - i)
        x = centres[rng.integers(0, k, m)] + 0.04 * rng.standard_normal((m, d), np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[i : i + m] = x
    return out


def kmeans(size: dict, device: str) -> dict:
    from curate.pipelines._kmeans import SphericalKMeans
    from curate.pipelines.cluster import sample_rows

    n, k = size["n"], size["k"]
    t0 = time.perf_counter()
    x = _clustered(n, 512, k)
    gen = time.perf_counter() - t0
    rows = sample_rows(k)
    sample = x[np.sort(np.random.default_rng(0).choice(n, min(n, rows), replace=False))]
    backend = "torch"
    km = SphericalKMeans(k, backend=backend)
    t0 = time.perf_counter()
    km.fit_unit(sample.astype(np.float32))
    _sync(device)
    train = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(0, n, 1_000_000):
        chunk = x[i : i + 1_000_000].astype(np.float32)
        km.assign_unit(chunk)
    _sync(device)
    assign = time.perf_counter() - t0
    return {
        "n": n,
        "d": 512,
        "k": k,
        "sample_rows": len(sample),
        "generate_s": round(gen, 1),
        "train_s": round(train, 2),
        "assign_s": round(assign, 2),
        "assign_rows_per_s": round(n / assign),
        "backend": km.backend_,
    }


def semdedup(size: dict, device: str) -> dict:
    from curate.pipelines.prune.similarity import GPU_BLOCK_ELEMS, duplicate_groups

    out = {}
    for label, clusters, per in (
        ("many", size["clusters"], size["per"]),
        ("one_big", 1, size["big"]),
    ):
        x = _clustered(clusters * per, 512, clusters, seed=1)
        t0 = time.perf_counter()
        groups = 0
        for c in range(clusters):
            g = duplicate_groups(
                x[c * per : (c + 1) * per], 0.998, device=device, block_elems=GPU_BLOCK_ELEMS
            )
            groups += len(np.unique(g))
        _sync(device)
        dt = time.perf_counter() - t0
        out[label] = {
            "clusters": clusters,
            "rows_per_cluster": per,
            "seconds": round(dt, 2),
            "rows_per_s": round(clusters * per / dt),
            "groups": groups,
        }
    return out


def prune(size: dict, device: str, work: Path) -> dict:
    import pyarrow as pa

    from curate.manifests import schema as S
    from curate.manifests.io import write_manifest
    from curate.pipelines.prune import prune as run_prune

    n = size["prune_n"]
    x = _clustered(n, 512, 2000 if n >= 100_000 else 20, seed=2)
    field = S.embedding_field(S.EMBEDDING, 512, "float16", model="generated")
    emb = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 512)
    t = pa.table(
        {"id": [f"r{i}" for i in range(n)], "embedding": emb},
        schema=pa.schema([pa.field("id", pa.string()), field]),
    )
    src = write_manifest(t, work / "pool", overwrite=True)
    t0 = time.perf_counter()
    m = run_prune(
        src,
        work / "pruned",
        keep=0.27,
        method="dbp",
        dedup_eps=0.002,
        k=2000 if n >= 100_000 else 20,
        overwrite=True,
        progress="off",
    )
    wall = time.perf_counter() - t0
    return {"n": n, "wall_s": round(wall, 1), "timings": m.run_info["timings"]}


def embed(size: dict, device: str, work: Path) -> dict:
    import io

    import pyarrow as pa
    from PIL import Image

    from curate.manifests.io import write_manifest
    from curate.pipelines.embed import embed as run_embed

    rng = np.random.default_rng(3)
    images = []
    for _ in range(size["images"]):
        arr = (rng.random((256, 256, 3)) * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
        images.append(buf.getvalue())
    src = write_manifest(
        pa.table({"id": [str(i) for i in range(len(images))], "image": images}),
        work / "jpegs",
        overwrite=True,
    )
    t0 = time.perf_counter()
    m = run_embed(
        src,
        work / "emb",
        model="timm:vit_base_patch16_224",
        device=device,
        batch_size=256,
        overwrite=True,
        progress=False,
    )
    wall = time.perf_counter() - t0
    return {
        "images": len(images),
        "wall_s": round(wall, 1),
        "images_per_s": round(len(images) / wall, 1),
        "timings": m.run_info["timings"],
    }


def _fashion(n: int, work: Path):
    import pyarrow.parquet as pq

    from curate.demo import DEMO_DATA
    from curate.manifests.io import write_manifest

    return write_manifest(
        pq.read_table(DEMO_DATA).slice(0, n), work / f"fashion-{n}", overwrite=True
    )


def reinforce(size: dict, device: str, work: Path) -> dict:
    import curate

    src = _fashion(size["reinforce"], work)
    t0 = time.perf_counter()
    m = curate.reinforce(
        src, work / "reinforced", augs=8, device=device, overwrite=True, progress="off"
    )
    wall = time.perf_counter() - t0
    views = size["reinforce"] * 8
    return {
        "rows": size["reinforce"],
        "views": views,
        "wall_s": round(wall, 1),
        "views_per_s": round(views / wall, 1),
        "timings": m.run_info.get("timings"),
    }


def distill(size: dict, device: str, work: Path) -> dict:
    import curate

    src = _fashion(2000 if size["iters"] > 10 else 100, work)
    t0 = time.perf_counter()
    curate.distill(
        src,
        work / "distilled",
        method="dm",
        ipc=size["ipc"],
        iterations=size["iters"],
        device=device,
        overwrite=True,
        split="",
    )
    wall = time.perf_counter() - t0
    return {
        "iterations": size["iters"],
        "wall_s": round(wall, 1),
        "iterations_per_s": round(size["iters"] / wall, 2),
    }


def _info(device: str) -> dict:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench-out/gpu.json"))
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="toy sizes (tests the script)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these sections")
    args = ap.parse_args()
    size = SIZES["small" if args.small else "full"]
    work = Path(tempfile.mkdtemp(prefix="curate-gpu-"))
    results: dict = {"info": _info(args.device)}
    sections: dict[str, Callable[[], dict]] = {
        "kmeans": lambda: kmeans(size, args.device),
        "semdedup": lambda: semdedup(size, args.device),
        "prune": lambda: prune(size, args.device, work),
        "embed": lambda: embed(size, args.device, work),
        "reinforce": lambda: reinforce(size, args.device, work),
        "distill": lambda: distill(size, args.device, work),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name, fn in sections.items():
        if args.only and name not in args.only:
            continue
        t0 = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as exc:  # record and go on: one section must not hide the others
            results[name] = {
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-2000:],
            }
        results[name]["section_s"] = round(time.perf_counter() - t0, 1)
        args.out.write_text(json.dumps(results, indent=2))
        print(name, json.dumps(results[name])[:300], flush=True)


if __name__ == "__main__":
    main()
