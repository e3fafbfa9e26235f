"""Relabel 400 Fashion-MNIST images (the demo data), 40 of them given a wrong label on purpose,
with the defaults (the teacher chosen by measured out-of-fold accuracy, the posterior soft
label), then draw one LabelPooling crop and its soft target.

Run: python examples/relabel_fashion.py  (offline; ~1 min of CPU, a few minutes on a busy 2-core VM)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.demo import DEMO_DATA
from curate.manifests.io import write_manifest
from curate.pipelines.relabel import relabel
from curate.train.labelpool import LabelPoolingDataset

tmp = Path(tempfile.mkdtemp(prefix="curate-relabel-"))
table = pq.read_table(DEMO_DATA).slice(0, 400)
truth = table.column("label").to_numpy()
rng = np.random.default_rng(0)
flipped = rng.choice(len(truth), 40, replace=False)
noisy = truth.copy()
noisy[flipped] = (truth[flipped] + rng.integers(1, 10, 40)) % 10
table = table.set_column(table.schema.get_field_index("label"), "label", pa.array(noisy))
source = write_manifest(table, tmp / "fashion")

# the default teacher: the pixel CNN, EfficientNet-Lite0 + a head, or both, whichever agrees
# best with the (noisy) labels out of fold; the soft label combines it with the given label
out = relabel(source, tmp / "relabeled", progress="off")
info = out.run_info
counts, evidence = info["counts"], info["evidence"]
print(
    f"teacher {info['teacher']['name']} at {info['input']['size']} px "
    f"({info['map']['grid']}x{info['map']['grid']} map): {evidence['teacher_accuracy']:.1%} "
    f"agreement with the given labels; labels estimated {evidence['estimated_label_accuracy']:.1%}"
    f" right. Top-1 differs from the given label on {counts['top1_differs']} rows"
)

soft = out.read(["soft_classes", "soft_probs"])
top1 = np.array([c[0] for c in soft.column("soft_classes").to_pylist()])
clean = np.setdiff1d(np.arange(len(truth)), flipped)
print(
    f"of the 40 wrong labels, {(top1[flipped] == truth[flipped]).sum()} get the true class "
    f"back as top-1; {(top1[clean] == truth[clean]).mean():.1%} of the 360 right labels stay; "
    f"{(top1 == truth).mean():.1%} of all rows have the true class as top-1"
)

names = out.class_names
row = int(flipped[0])
classes, probs = (soft.column(c)[row].as_py()[:3] for c in ("soft_classes", "soft_probs"))
teacher = ", ".join(f"{names[c]} {p:.2f}" for c, p in zip(classes, probs, strict=True))
print(f"row {row}: given {names[noisy[row]]}, true {names[truth[row]]}; teacher: {teacher}")

ds = LabelPoolingDataset(out, size=28, target="pooled", scale=(0.25, 1.0), seed=0)
image, target, label = ds[row]
top = target.topk(2)
print(
    f"a random crop of row {row}: {tuple(image.shape)}, pooled target "
    + ", ".join(f"{names[c]} {p:.2f}" for p, c in zip(*top, strict=True))
)
