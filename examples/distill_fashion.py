"""Distil the built-in Fashion-MNIST demo set to 1 image per class and compare with random real.

A reduced protocol that runs in a few minutes on a laptop CPU (the full one needs a GPU; see the
README's Distill section):

    python examples/distill_fashion.py [OUT_DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

import curate
from curate.pipelines.distill.output import read_pixels

DEMO = Path(curate.__file__).parent / "data" / "fashion_mnist_test.parquet"


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # the demo set is one split; hold out a seeded 20% as the test split
    t = curate.open_manifest(DEMO).read()
    split = np.where(np.random.default_rng(0).random(t.num_rows) < 0.2, "test", "train")
    t = t.set_column(t.schema.get_field_index("split"), "split", pa.array(split))
    real = out / "fashion.parquet"
    curate.write_manifest(t, real, overwrite=True)

    syn = curate.distill(
        real,
        out / "dm-ipc1",
        method="dm",
        ipc=1,
        iterations=40,
        real_per_class=32,
        overwrite=True,
    )
    pixels, labels, _ = read_pixels(syn)
    print(f"{len(pixels)} synthetic images {pixels.shape[1:]}, {syn.run_info['timings']}")
    table = curate.distill_eval(
        syn.path,
        real=real,
        epochs=100,
        nets=2,
        draws=2,
        test_rows=1000,
        out=out / "dm-ipc1-eval",
        overwrite=True,
    )
    for r in table.to_pylist():
        diff = "" if r["diff_from_random"] is None else f"{100 * r['diff_from_random']:+.1f}"
        print(
            f"{r['method']:12s} IPC {r['ipc']}: "
            f"{100 * r['accuracy_mean']:.1f} ± {100 * r['accuracy_std']:.1f} {diff}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "distill-example"))
