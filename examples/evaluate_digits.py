"""Does a curated subset train better than random rows at equal budget? sklearn's digits, 30% of
the training labels flipped: drop the flipped rows, prune with DBP, compare both with random.

Run: ``python examples/evaluate_digits.py`` (about 15 s on 2 cores; writes under /tmp).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
from sklearn.datasets import load_digits

import curate
from curate.evaluation.table import exclusion_notes, text_lines
from curate.manifests.schema import embedding_field, with_class_names
from curate.pipelines.prune import prune

out = Path("/tmp/curate-example-evaluate")
d = load_digits()
n, rng = len(d.target), np.random.default_rng(0)
is_test = np.arange(n) >= n - 397
flipped = (rng.random(n) < 0.3) & ~is_test
label = np.where(flipped, (d.target + rng.integers(1, 10, n)) % 10, d.target)
x = (d.data / np.linalg.norm(d.data, axis=1, keepdims=True)).astype(np.float32)
schema = with_class_names(
    pa.schema([("id", pa.string()), ("label", pa.int64()), ("flipped", pa.bool_()),
               ("split", pa.string()), embedding_field("embedding", 64, "float32")]),
    [str(k) for k in range(10)],
)  # fmt: skip
pool = curate.write_manifest(
    pa.table(
        {
            "id": [f"d{i:04d}" for i in range(n)],
            "label": label,
            "flipped": flipped,
            "split": np.where(is_test, "test", "train"),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 64),
        },
        schema=schema,
    ),
    out / "pool",
    overwrite=True,
)
# prune only the train split, so the test rows never enter a subset
train = curate.write_manifest(curate.sql("SELECT * FROM p WHERE split = 'train'", p=pool),
                              out / "train", overwrite=True)  # fmt: skip
prune(train, out / "dbp", keep=0.5, method="dbp", k=20, overwrite=True)
result = curate.evaluate(
    pool,
    subsets={"clean": "NOT flipped AND split = 'train'", "dbp-0.5": out / "dbp"},
    test_split="test",
    out=out / "evaluate.json",
    overwrite=True,
)
print("\n".join([*text_lines(result), *exclusion_notes(result)]))
print(f"per-class accuracy and the raw per-seed numbers: {out / 'evaluate.json'}")
