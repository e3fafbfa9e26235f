"""Engine overhead: the same steps under the local engine and the Ray engine, on one machine.

Generates ``--n`` rows (ids, labels, 64-d float16 unit vectors in 100 blobs) as a manifest,
then, alternating which engine goes first, ``--repeats`` times:

* ``prune``: ``curate.pipelines.prune.prune(method="dbp", keep=0.5)``: the fit stage (k-means,
  quotas) runs once on the driver either way; the engine writes every row's decision;
* ``attach``: :class:`~curate.engines.columns.AttachColumns` (one int column): a pure
  read-step-write pass, the engine's own cost with nearly no step work.

Ray starts once (4 logical CPUs, loopback, no dashboard) before the timings; its start-up is
reported on its own. Run: ``python benchmarks/engines.py --n 100000 --repeats 3``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa


def make_manifest(path: Path, n: int, d: int = 64, seed: int = 0) -> Path:
    from curate.manifests.io import write_manifest
    from curate.manifests.schema import embedding_field

    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(100, d)).astype(np.float32)
    x = centers[rng.integers(0, 100, n)] + rng.normal(0, 0.5, (n, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    field = embedding_field("embedding", d, "float16", model="blobs", pretrained="none")
    schema = pa.schema([pa.field("id", pa.string()), pa.field("label", pa.int64()), field])
    table = pa.table(
        {
            "id": [f"r{i:07d}" for i in range(n)],
            "label": pa.array(rng.integers(0, 10, n), pa.int64()),
            "embedding": pa.FixedSizeListArray.from_arrays(
                pa.array(x.astype(np.float16).ravel()), d
            ),
        },
        schema=schema,
    )
    return write_manifest(table, path)


def _timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def run(n: int, repeats: int) -> dict:
    import ray

    from curate.engines import run as run_step
    from curate.engines.columns import AttachColumns
    from curate.pipelines.prune import prune

    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    tmp = Path(tempfile.mkdtemp(prefix="curate-bench-engines-"))
    src = make_manifest(tmp / "in", n)
    t0 = time.perf_counter()
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    ray_start = time.perf_counter() - t0
    column = {"flag": pa.array(np.arange(n) % 7 == 0)}
    jobs = {
        "prune": lambda engine, out: prune(
            src, out, method="dbp", keep=0.5, engine=engine, progress="off", overwrite=True
        ),
        "attach": lambda engine, out: run_step(
            AttachColumns("attach", column), src, out, engine=engine, progress="off", overwrite=True
        ),
    }
    times: dict[str, dict[str, list[float]]] = {j: {"local": [], "ray": []} for j in jobs}
    for r in range(repeats):
        order = ("local", "ray") if r % 2 == 0 else ("ray", "local")
        for job, fn in jobs.items():
            for engine in order:
                times[job][engine].append(round(_timed(fn, engine, tmp / f"{job}-{engine}"), 3))
    ray.shutdown()
    out = {"rows": n, "repeats": repeats, "ray_start_s": round(ray_start, 2), "jobs": {}}
    for job, t in times.items():
        ratios = [round(b / a, 3) for a, b in zip(t["local"], t["ray"], strict=True)]
        out["jobs"][job] = {**t, "ratios": ratios, "median_ratio": statistics.median(ratios)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(json.dumps(run(args.n, args.repeats), indent=2))


if __name__ == "__main__":
    main()
