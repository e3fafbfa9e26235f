"""Reinforce 200 Fashion-MNIST images (the demo data) and replay one view with its soft label.

Run: python examples/reinforce_fashion.py  (offline; about a minute on 2 CPU cores)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow.parquet as pq

from curate.demo import DEMO_DATA
from curate.manifests.io import write_manifest
from curate.pipelines.reinforce import reinforce
from curate.train.replay import ReplayDataset

tmp = Path(tempfile.mkdtemp(prefix="curate-reinforce-"))
source = write_manifest(pq.read_table(DEMO_DATA).slice(0, 200), tmp / "fashion")
plus = reinforce(source, tmp / "fashion-plus", augs=8, top_k=5, mix="cutmix", progress="off")
counts = plus.run_info["counts"]
print(f"{counts['views']} views of {counts['reinforced']} images -> {plus.path}")

ds = ReplayDataset(plus)
view, target = ds[0]
names = plus.class_names
top = target.topk(3)
print(f"row {ds.rows[0]['id']} ({names[ds.rows[0]['label']]}): a {tuple(view.shape)} view,")
print("  teacher says " + ", ".join(f"{names[c]} {p:.2f}" for p, c in zip(*top, strict=True)))
