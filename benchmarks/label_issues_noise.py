"""Fashion-MNIST with injected label noise: precision, recall and AUROC of detected issues.

Noise: 10% and 30%, uniform (a random other class) and class-conditional (each class flips to
one fixed, visually close class: T-shirt<->Shirt, Pullover<->Coat, Sandal->Sneaker->Ankle boot
->Sandal, Trouser<->Dress, Bag->Pullover). Each predictor gives K-fold cross-validated
probabilities; cleanlab flags issues (default ``prune_by_noise_rate``); AUROC ranks rows by
``label_quality``. Features: raw pixels (default) or, with ``--embedded DIR``, the
``embedding`` column of an embedded manifest (e.g. the demo's DIR/embedded).

    nice python benchmarks/label_issues_noise.py --rows 6000 --folds 4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from _data import labels_manifest
from _fashion import fashion_mnist

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip
CONFUSABLE = {0: 6, 6: 0, 2: 4, 4: 2, 5: 7, 7: 9, 9: 5, 1: 3, 3: 1, 8: 2}


def read_embedded(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels, labels and embedding vectors from an embedded manifest with an image column."""
    import io

    from PIL import Image

    from curate.manifests.io import open_manifest
    from curate.models.features import list_to_numpy

    t = open_manifest(path).read(["image", "label", "embedding"])
    pixels = np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("L"))
                       for b in t.column("image").to_pylist()])  # fmt: skip
    dim = t.schema.field("embedding").type.list_size
    emb = list_to_numpy(t.column("embedding"), dim).astype(np.float32)
    return pixels, t.column("label").to_numpy(), emb


def inject(labels: np.ndarray, rate: float, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    if kind == "uniform":
        rows = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
        noisy[rows] = (labels[rows] + rng.integers(1, 10, len(rows))) % 10
    else:
        rows = np.flatnonzero(rng.random(len(labels)) < rate)
        noisy[rows] = np.vectorize(CONFUSABLE.get)(labels[rows])
    return noisy, noisy != labels


def scores(pp: np.ndarray, noisy: np.ndarray, flipped: np.ndarray, manifest: Path) -> dict:
    from sklearn.metrics import roc_auc_score

    from curate.pipelines.label_issues import label_issues

    r = label_issues(manifest, pred_probs=pp, overwrite=True)
    found = r.column("is_label_issue").to_numpy(zero_copy_only=False)
    quality = r.column("label_quality").to_numpy()
    tp = int((found & flipped).sum())
    return {
        "flagged": int(found.sum()),
        "precision": round(tp / max(1, found.sum()), 3),
        "recall": round(tp / max(1, flipped.sum()), 3),
        "auroc": round(float(roc_auc_score(flipped, -quality)), 3),
        "cv_accuracy_vs_true": None,
    }


def members(x_vec, x_pix, noisy, folds, seed, which, cnn_epochs) -> dict[str, np.ndarray]:
    from curate.models.cnn import SmallCNN
    from curate.pipelines.label_issues import predictors

    out = {}
    for name in which:
        t0 = time.perf_counter()
        if name == "cnn":
            pp = np.zeros((len(noisy), 10), np.float32)
            for i, (tr, te) in enumerate(predictors.fold_indices(noisy, folds, seed)):
                est = SmallCNN(n_classes=10, seed=seed + i, epochs=cnn_epochs).fit(
                    x_pix[tr], noisy[tr]
                )
                pp[te] = est.predict_proba(x_pix[te])
        else:
            pp = predictors.cross_val_pred_probs(name, x_vec, noisy, 10, folds=folds, seed=seed)
        out[name] = pp
        print(f"  {name}: {time.perf_counter() - t0:.0f}s", flush=True)
    return out


def run(args) -> dict:
    from curate.pipelines.label_issues.audit import ensemble

    if args.embedded:
        pixels, truth, vectors = read_embedded(args.embedded)
        feature_name = "embedding column of " + args.embedded
    else:
        pixels, truth = fashion_mnist("train")
        vectors = None
        feature_name = "pixels (784)"
    pixels, truth = pixels[: args.rows], truth[: args.rows]
    x_pix = (pixels.astype(np.float32) / 255.0)[:, None]
    x_vec = vectors[: args.rows] if vectors is not None else x_pix.reshape(len(truth), -1)
    which = args.predictors.split(",")
    results = {"rows": len(truth), "features": feature_name, "folds": args.folds, "settings": {}}
    work = Path(args.workdir)
    for kind in ("uniform", "class_conditional"):
        for rate in (0.1, 0.3):
            key = f"{kind}_{int(rate * 100)}"
            noisy, flipped = inject(truth, rate, kind, seed=args.seed)
            print(key, f"{flipped.mean():.3f} flipped", flush=True)
            manifest = labels_manifest(work / f"{key}.parquet", noisy, NAMES)
            probs = members(x_vec, x_pix, noisy, args.folds, args.seed, which, args.cnn_epochs)
            if len(probs) > 2:
                probs["+".join(which[:2])] = ensemble([probs[w] for w in which[:2]])
            if len(probs) > 1:
                probs["+".join(which)] = ensemble([probs[w] for w in which])
            setting = {}
            for name, pp in probs.items():
                s = scores(pp, noisy, flipped, manifest)
                s["cv_accuracy_vs_true"] = round(float((pp.argmax(1) == truth).mean()), 3)
                setting[name] = s
                print(f"  {name}: {s}", flush=True)
            results["settings"][key] = setting
    return results


def main() -> None:
    import shutil

    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=6000)
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--predictors", default="logreg,mlp,cnn")
    ap.add_argument("--cnn-epochs", type=int, default=4)
    ap.add_argument("--embedded", default=None, help="an embedded manifest to take features from")
    ap.add_argument("--workdir", default="/tmp/label_issues_noise")
    ap.add_argument("--out", default=None, help="write the results JSON here")
    args = ap.parse_args()
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    shutil.rmtree(args.workdir, ignore_errors=True)
    Path(args.workdir).mkdir(parents=True)
    with threadpool_limits(1):
        results = run(args)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    _ = pa  # pyarrow is used through curate
    main()
