"""Local embed before and after a change, on the same images: the code at ``--before`` (a git
revision, e.g. the one before embed moved onto the engine's prepare stage) against this
checkout, alternating A/B/B/A, each run a fresh process inside a cgroup-v1 memory limit.
Reports the embed phase's wall time (model load excluded, from run.json), the peak anonymous
memory of the process and its decode workers, and whether the embeddings are equal.

    python benchmarks/embed_engine.py --before 9c9a203 --after 802c9ff --n 10000 --limit 3G
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cgroup import limited, parse_size

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "curate" / "data" / "fashion_mnist_test.parquet"
CHILD = """
import sys, json
from curate.pipelines.embed import embed
m = embed(sys.argv[1], sys.argv[2], model="efficientnet_lite0", image_size=64, progress=False)
print(json.dumps(m.run_info["timings"]))
"""


def checkout(rev: str, where: Path) -> Path:
    """The tree of ``rev`` (its ``curate`` package) unpacked into ``where``."""
    where.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "curate"],
                             check=True, capture_output=True).stdout  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(where)], input=archive, check=True)
    return where


def one(code: Path, src: Path, out: Path, limit: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    run = limited([sys.executable, "-c", CHILD, str(src), str(out)], limit, env=env)
    if run.returncode:
        raise SystemExit(f"{code}: exit {run.returncode}")
    timings = json.loads((out / "run.json").read_text())["timings"]
    load = Path("/proc/loadavg").read_text().split()[0]
    return {"embed_s": timings["embed"], "peak_anon_mb": run.peak_anon_bytes >> 20, "load": load}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True, help="git revision of the code before")
    ap.add_argument("--after", default=None, help="git revision after (default: this tree)")
    ap.add_argument("--n", type=int, default=10_000, help="demo images (at most 10,000)")
    ap.add_argument("--limit", default="3G", help="memory limit of each run")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = d / "in.parquet"
        pq.write_table(pq.read_table(DEMO).slice(0, a.n), src)
        after = checkout(a.after, d / "after") if a.after else ROOT
        codes = {"before": checkout(a.before, d / "before"), "after": after}
        runs: dict[str, list] = {"before": [], "after": []}
        for i, kind in enumerate(["before", "after", "after", "before"]):
            out = d / f"{kind}{i}"
            runs[kind].append(one(codes[kind], src, out, parse_size(a.limit)))
            print(kind, runs[kind][-1], flush=True)
        emb = [pq.read_table(sorted((d / k).glob("*.parquet")), columns=["embedding"])
               for k in ("before0", "after1")]  # fmt: skip
        best = {k: min(r["embed_s"] for r in v) for k, v in runs.items()}
        print(json.dumps({"n": a.n, "runs": runs, "best_embed_s": best,
                          "after_over_before": round(best["after"] / best["before"], 3),
                          "embeddings_equal": emb[0].equals(emb[1])}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
