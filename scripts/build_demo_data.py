"""Build curate/data/fashion_mnist_test.parquet from Debian's dataset-fashion-mnist files.

The Fashion-MNIST test set (10,000 28x28 grayscale images, MIT license, Zalando Research) as
PNG bytes with integer labels and the class names in the schema metadata. Run once by a
maintainer (`apt-get install dataset-fashion-mnist`); the result ships inside the package.
"""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

SRC = Path("/usr/share/datasets/fashion-mnist")
OUT = Path(__file__).resolve().parents[1] / "curate" / "data" / "fashion_mnist_test.parquet"
CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, mode="L").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def main() -> None:
    images = read_idx(SRC / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(SRC / "t10k-labels-idx1-ubyte.gz")
    from curate.manifests.schema import with_class_names

    table = pa.table(
        {
            "id": [f"fashion-mnist-test-{i:05d}" for i in range(len(labels))],
            "image": pa.array([png_bytes(im) for im in images], pa.binary()),
            "label": pa.array(labels.astype(np.int64)),
            "split": ["test"] * len(labels),
        }
    )
    table = table.replace_schema_metadata(with_class_names(table.schema, CLASS_NAMES).metadata)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, OUT, compression="zstd")
    print(
        f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB, {table.num_rows} rows)", file=sys.stderr
    )


if __name__ == "__main__":
    main()
