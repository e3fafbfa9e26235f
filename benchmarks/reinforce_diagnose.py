"""Why is the reinforced student under-confident? Measurements behind the reinforce calibration.

Run after ``benchmarks/reinforce.py`` (it reuses its teachers and reinforced manifest in
``--work``). Three measurements, all choices made on the held-out ``val`` rows (rows neither
the teachers nor the students trained on); the test split is printed for reference only:

1. The teacher ensemble on the stored views, against the given labels: accuracy, mean
   confidence, ECE by split and by view strength (crop area, erasing), and the temperature
   that calibrates it on the held-out views; and on the clean images.
2. Students (seed 0, the benchmark's protocol) under variants of the targets and the training:
   raw soft labels; targets tempered (T 0.8, and the teacher's view temperature); more epochs;
   a wider student; clean images mixed in with the teacher's label or a one-hot; the one-hot
   label mixed into every target. Each is measured on its training views, the clean training
   and held-out images, and the test split, before and after its own temperature fit on the
   held-out rows (``curate.train.calibration.calibrate_student``).

    OMP_NUM_THREADS=1 nice python benchmarks/reinforce_diagnose.py --dataset fashion --work W
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import reinforce as rb

import curate
from curate.train.calibration import (
    calibrate_student,
    expected_calibration_error,
    fit_temperature,
    temper,
)

#: name -> (target temperature, share of clean images, their target, one-hot weight, epochs,
#: width); "teacherT" is the teacher's temperature on the held-out views.
VARIANTS = {
    "raw": (1.0, 0.0, None, 0.0, 16, 32),
    "target-T0.8": (0.8, 0.0, None, 0.0, 16, 32),
    "target-teacherT": ("teacherT", 0.0, None, 0.0, 16, 32),
    "epochs48": (1.0, 0.0, None, 0.0, 48, 32),
    "width64": (1.0, 0.0, None, 0.0, 16, 64),
    "clean0.25-teacher": (1.0, 0.25, "teacher", 0.0, 16, 32),
    "clean0.25-onehot": (1.0, 0.25, "onehot", 0.0, 16, 32),
    "clean0.5-onehot": (1.0, 0.5, "onehot", 0.0, 16, 32),
    "label-weight0.3": (1.0, 0.0, None, 0.3, 16, 32),
    "label-weight0.5": (1.0, 0.0, None, 0.5, 16, 32),
}


def _arrays(plus, augs: int, k: int):
    t = plus.read(["label", "split", "aug_params", "soft_classes", "soft_probs"])
    t = t.filter(np.asarray(~np.asarray(t.column("soft_probs").is_null())))

    def flat(name, width, dtype):
        values = t.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        return values.astype(dtype).reshape(-1, width)

    labels = np.repeat(t.column("label").to_numpy(), augs)
    splits = np.repeat(np.array(t.column("split").to_pylist()), augs)
    params = flat("aug_params", 19, np.float32)
    return (
        flat("soft_classes", k, np.int64),
        flat("soft_probs", k, np.float32),
        labels,
        splits,
        params,
    )


def _stats(classes, probs, labels, temperature: float = 1.0) -> dict:
    q = temper(probs, temperature)
    top = q.argmax(1)
    pred = classes[np.arange(len(q)), top]
    conf = q.max(1) / q.sum(1)
    ok = pred == labels
    return {"views": int(len(q)), "accuracy": round(float(ok.mean()), 4),
            "confidence": round(float(conf.mean()), 4),
            "ece": round(expected_calibration_error(conf, ok), 4)}  # fmt: skip


def teacher_on_views(plus, augs: int, k: int) -> dict:
    """Measurement 1: the teacher's calibration on the stored views."""
    classes, probs, labels, splits, params = _arrays(plus, augs, k)
    area = params[:, 2] * params[:, 3]
    erased = params[:, 11] > 0
    out = {}
    for split in ("train", "val"):
        m = splits == split
        temperature, _ = fit_temperature(classes[m], probs[m], labels[m], 10)
        rows = {"all": _stats(classes[m], probs[m], labels[m]), "temperature": temperature}
        for lo, hi in ((0.0, 0.5), (0.5, 0.75), (0.75, 1.01)):
            s = m & (area >= lo) & (area < hi)
            rows[f"crop_area_{lo}-{min(hi, 1.0)}"] = _stats(classes[s], probs[s], labels[s])
        for name, s in (("erased", m & erased), ("not_erased", m & ~erased)):
            rows[name] = _stats(classes[s], probs[s], labels[s])
        out[split] = rows
    return out


class Variant:
    """ReplayDataset of the ``train`` rows with a variant's targets."""

    def __init__(self, plus, clean_probs: dict, *, temperature, clean, clean_target, weight):
        import torch

        from curate.train.replay import ReplayDataset

        self.ds = ReplayDataset(plus, seed=0, split="train", temperature=temperature)
        self.clean_probs, self.clean, self.clean_target, self.weight = (
            clean_probs, clean, clean_target, weight,
        )  # fmt: skip
        self.epoch, self.torch = 0, torch

    def __len__(self) -> int:
        return len(self.ds)

    def set_epoch(self, epoch: int) -> None:
        self.ds.set_epoch(epoch)
        self.epoch = epoch

    def __getitem__(self, i: int):
        from curate.train.augment import decode_image

        torch, row = self.torch, self.ds.rows[i]
        one_hot = torch.zeros(10)
        one_hot[row["label"]] = 1.0
        if self.clean and np.random.default_rng([7, self.epoch, i]).random() < self.clean:
            x = decode_image(self.ds.images[row["id"]]).float() / 255
            return x, one_hot if self.clean_target == "onehot" else self.clean_probs[row["id"]]
        x, target = self.ds[i]
        return x, (1 - self.weight) * target + self.weight * one_hot


def _probs(net, x):
    import torch

    with torch.inference_mode():
        return torch.cat([net(x[i : i + 1000]).softmax(1) for i in range(0, len(x), 1000)]).numpy()


def _calibration(p, y) -> dict:
    ok = p.argmax(1) == y
    return {"accuracy": round(float(ok.mean()), 4), "confidence": round(float(p.max(1).mean()), 4),
            "ece": round(expected_calibration_error(p.max(1), ok), 4)}  # fmt: skip


def measure_student(net, ds, plus, clean, xe, yte) -> dict:
    """Measurement 2 for one trained student."""
    import torch

    replay = ds.ds
    xs, ys = [], []
    for i in range(len(replay)):
        for aug in range(0, replay.augs, 4):  # a quarter of its training views
            xs.append(replay.view(i, aug))
            ys.append(replay.rows[i]["label"])
    out = {"training_views": _calibration(_probs(net, torch.stack(xs)), np.array(ys))}
    for split in ("train", "val"):
        x, y = clean[split]
        out[f"clean_{split}"] = _calibration(_probs(net, x), y)
    out["test"] = _calibration(_probs(net, xe), yte)
    temperature, _ = calibrate_student(net, plus)
    with torch.inference_mode():
        q = torch.cat([(net(xe[i : i + 1000]) / temperature).softmax(1)
                       for i in range(0, len(xe), 1000)]).numpy()  # fmt: skip
    out["student_temperature"] = temperature
    out["test_with_student_temperature"] = _calibration(q, yte)
    return out


def main() -> None:
    import torch

    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["fashion", "mnist"], default="fashion")
    ap.add_argument("--work", default="/tmp/reinforce-bench")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    plus = curate.open_manifest(work / f"{args.dataset}-plus")
    meta = plus.schema.field("aug_params").metadata
    augs, k = int(meta[b"curate.augs"]), int(meta[b"curate.top_k"])
    out_path = work / f"diagnose-{args.dataset}.json"
    res = json.loads(out_path.read_text()) if out_path.exists() else {}
    res["teacher_on_views"] = views = teacher_on_views(plus, augs, k)
    print(json.dumps(views, indent=1), flush=True)
    res["teacher_on_clean"], clean, clean_probs = _teacher_on_clean(plus, work, args.dataset)
    print("teacher on clean images", res["teacher_on_clean"], flush=True)
    _, _, xte, yte, _ = rb.load(args.dataset)
    xe = torch.from_numpy(xte.copy()).unsqueeze(1).float().div(255)
    for name in args.variants:
        temperature, share, target, weight, epochs, width = VARIANTS[name]
        if temperature == "teacherT":
            temperature = views["val"]["temperature"]
        ds = Variant(plus, clean_probs, temperature=temperature, clean=share,
                     clean_target=target, weight=weight)  # fmt: skip
        net = _train(ds, epochs=epochs, width=width)
        res.setdefault("students", {})[name] = measure_student(net, ds, plus, clean, xe, yte)
        print(name, json.dumps(res["students"][name]), flush=True)
        out_path.write_text(json.dumps(res, indent=1))
    out_path.write_text(json.dumps(res, indent=1))
    print("->", out_path)


def _teacher_on_clean(plus, work: Path, dataset: str):
    """The teacher ensemble on the clean images of the train and val rows."""
    import torch

    from curate.pipelines.teachers import build_teacher
    from curate.train.augment import decode_image, to_rgb

    spec = "+".join(f"classifier:timm:test_resnet={work}/{dataset}-teacher{k}.pth" for k in (0, 1))
    teacher = build_teacher(spec, plus, image_size=32, device="cpu")
    t = plus.read(["id", "image", "label", "split"])
    x = torch.stack([decode_image(b) for b in t.column("image").to_pylist()]).float() / 255
    with torch.inference_mode():
        p = torch.cat([teacher.logits(to_rgb(x[i : i + 500])).softmax(1)
                       for i in range(0, len(x), 500)])  # fmt: skip
    splits, labels = np.array(t.column("split").to_pylist()), t.column("label").to_numpy()
    summary, clean = {}, {}
    for split in ("train", "val"):
        m = splits == split
        summary[split] = _calibration(p[m].numpy(), labels[m])
        clean[split] = (x[m], labels[m])
    return summary, clean, dict(zip(t.column("id").to_pylist(), p, strict=True))


def _train(ds, *, epochs: int, width: int):
    """The benchmark's student protocol (seed 0), returning the network."""
    import torch

    from curate.train.convnet import seeded_convnet
    from curate.train.losses import kl_divergence

    net = seeded_convnet(0, channels=1, num_classes=10, image_size=28, width=width)
    loader = torch.utils.data.DataLoader(
        ds, batch_size=64, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=epochs * len(loader))
    net.train()
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for x, target in loader:
            loss = kl_divergence(net(x), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


if __name__ == "__main__":
    main()
