"""Report on real data: sklearn's 1,797 digits, label issues from cross-validated predictions on
pixels, then SemDeDup + DBP on the same pixel vectors; writes one HTML page and prints its path.

    python examples/report_digits.py [OUT_DIR]
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image
from sklearn.datasets import load_digits

import curate
from curate.manifests.schema import embedding_field, with_class_names
from curate.pipelines.prune import prune
from curate.reporting import report


def digits_manifest(path: Path) -> Path:
    """The digits as a manifest: PNG image, label, and the pixels as a unit-norm embedding."""
    d = load_digits()
    pngs = []
    for img in d.images:
        buf = io.BytesIO()
        Image.fromarray((img * 255 / 16).astype(np.uint8)).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    emb = d.images.reshape(len(d.images), -1).astype(np.float32) + 1e-3
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    fields = [
        pa.field("id", pa.string()),
        pa.field("image", pa.binary()),
        pa.field("label", pa.int64()),
        embedding_field("embedding", 64, "float32", model="pixels"),
    ]
    schema = with_class_names(pa.schema(fields), [str(k) for k in range(10)])
    table = pa.table(
        {
            "id": [f"digit{i:04d}" for i in range(len(pngs))],
            "image": pngs,
            "label": d.target.astype(np.int64),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.ravel()), 64),
        },
        schema=schema,
    )
    curate.write_manifest(table, path, overwrite=True)
    return path


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    src = digits_manifest(out / "digits.parquet")
    curate.label_issues(src, out / "label-issues", features="embedding", overwrite=True)
    prune(out / "label-issues", out / "pruned", keep=0.5, method="dbp", k=10, dedup_eps=0.02,
          overwrite=True)  # fmt: skip
    page = report([out / "label-issues", out / "pruned"], out / "report.html", overwrite=True)
    print(f"{page} ({page.stat().st_size / 1e6:.2f} MB): open file://{page.resolve()}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "example-out/report-digits"))
