"""Local embed: the overlapped pipeline (``embed()``: decode in worker processes ahead of the
model) against the same encoder as an ``EmbedStep`` on the local engine (what ``--engine ray``
runs per actor), alternating A/B/B/A, on demo images at 64 px; checks the embeddings are equal.

    python benchmarks/embed_engine.py [--n 1500]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

import curate
from curate.manifests.io import open_manifest, write_manifest
from curate.manifests.runinfo import Timer
from curate.pipelines.embed import runner as R
from curate.pipelines.embed.config import EmbedConfig
from curate.pipelines.embed.registry import load_encoder

DEMO = Path(curate.__file__).parent / "data" / "fashion_mnist_test.parquet"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1500)
    a = ap.parse_args()
    opts = {"model": "efficientnet_lite0", "image_size": 64, "progress": False}
    cfg = EmbedConfig(**opts)
    enc = load_encoder(cfg.model, cfg.pretrained, device=cfg.device, image_size=64).setup()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = write_manifest(pq.read_table(DEMO).slice(0, a.n), d / "in")
        m = open_manifest(src)
        schema = R.output_schema(m.schema, enc, cfg, False)
        for rep, order in enumerate([("pipeline", "engine-step"), ("engine-step", "pipeline")]):
            for kind in order:
                out, t0 = d / f"{kind}{rep}", time.perf_counter()
                if kind == "pipeline":
                    R.embed(src, out, **opts)
                else:
                    R._embed_on_engine(
                        m, out, cfg, schema, None, enc, Timer(), overwrite=True, resume=False
                    )
                load = Path("/proc/loadavg").read_text().split()[0]
                print(f"{kind} {rep}: {time.perf_counter() - t0:.1f} s wall (load {load})")
        a_, b_ = (open_manifest(d / f"{k}0").read().column("embedding") for k in order[::-1])
        print("embeddings equal:", a_.equals(b_))


if __name__ == "__main__":
    main()
