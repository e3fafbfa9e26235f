"""Quality benchmark: a linear probe on efficientnet_lite0 embeddings of Fashion-MNIST vs pixels.

Train and test images come from Debian's ``dataset-fashion-mnist``
(``/usr/share/datasets/fashion-mnist``, the official splits). Both go through the real step:
PNG bytes in a manifest -> ``curate embed`` -> embeddings read back from the output manifest.
A multinomial logistic regression is trained on the train embeddings and scored on the test
split; the same probe on raw pixels (scaled to [0, 1]) is the baseline, on the same training
rows and on all 60k.

Run: ``nice python benchmarks/embed_probe.py --train 10000 --image-size 64`` (JSON on stdout).
The full 60k train split at 224 px takes over an hour on 2 CPU cores; use a subset there.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _fashion import fashion_mnist, png_bytes


def png_table(x: np.ndarray, y: np.ndarray, split: str) -> pa.Table:
    ids = [f"{split}-{i:05d}" for i in range(len(x))]
    return pa.table({"id": ids, "image": [png_bytes(a) for a in x], "label": y})


def embed_table(table: pa.Table, tmp: Path, name: str, args) -> tuple[np.ndarray, float]:
    from curate.manifests.io import write_manifest
    from curate.pipelines.embed import embed

    src = write_manifest(table, tmp / f"{name}-in", overwrite=True)
    out = embed(
        src,
        tmp / f"{name}-emb",
        model="efficientnet_lite0",
        image_size=args.image_size,
        device=args.device,
        batch_size=args.batch_size,
        overwrite=True,
        progress=False,
    )
    emb = out.read(columns=["embedding"]).column("embedding").combine_chunks()
    x = emb.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(emb), -1)
    return x, out.run_info["timings"]["images_per_s"]


def probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, c: float) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=3000, C=c)
    return float(clf.fit(xtr, ytr).score(xte, yte))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", type=int, default=10_000, help="train rows (60000 = all)")
    ap.add_argument("--test", type=int, default=10_000)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch-size", type=int, default=256)
    args = ap.parse_args()
    xtr_all, ytr_all = fashion_mnist("train")
    xte, yte = (a[: args.test] for a in fashion_mnist("test"))
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(xtr_all), size=min(args.train, len(xtr_all)), replace=False))
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        train = png_table(xtr_all[idx], ytr_all[idx], "train")
        etr, rate_tr = embed_table(train, Path(d), "train", args)
        ete, rate_te = embed_table(png_table(xte, yte, "test"), Path(d), "test", args)
    embed_s = time.perf_counter() - t0
    xte_pix = xte.reshape(len(xte), -1) / 255.0
    pix = xtr_all.reshape(len(xtr_all), -1) / 255.0
    t1 = time.perf_counter()
    result = {
        "train_rows": len(idx),
        "test_rows": args.test,
        "image_size": args.image_size,
        "probe_efficientnet_lite0": probe(etr, ytr_all[idx], ete, yte, c=10.0),
        "probe_pixels_same_rows": probe(pix[idx], ytr_all[idx], xte_pix, yte, c=1.0),
    }
    if args.train < len(xtr_all):
        result["probe_pixels_all_60k"] = probe(pix, ytr_all, xte_pix, yte, c=1.0)
    result |= {
        "embed_images_per_s": [round(rate_tr, 1), round(rate_te, 1)],
        "embed_wall_s": round(embed_s, 1),
        "probe_wall_s": round(time.perf_counter() - t1, 1),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
