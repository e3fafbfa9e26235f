"""Reinforce 200 Fashion-MNIST images (the demo data) and replay stored views with their labels.

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
names = plus.class_names
labels = {r["id"]: r["label"] for r in ds.rows}
row = ds.rows[0]
print(f"row {row['id']} ({names[row['label']]}), its first 4 stored views:")
for aug in range(4):
    view, target = ds.view(0, aug), ds.soft_target(0, aug)  # re-made from the stored params
    partner = row["aug_partner"][aug]
    mixed = f"cutmix with a {names[labels[partner]]}" if partner else "not mixed"
    top = ", ".join(f"{names[c]} {p:.2f}" for p, c in zip(*target.topk(2), strict=True))
    print(f"  view {aug} {tuple(view.shape)}, {mixed}: teacher says {top}")
