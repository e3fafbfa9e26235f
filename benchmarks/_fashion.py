"""Fashion-MNIST for the benchmarks: Debian's dataset-fashion-mnist idx files, and PNG encoding."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np

FASHION = Path("/usr/share/datasets/fashion-mnist")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]  # fmt: skip


def read_idx(path: Path) -> np.ndarray:
    """An idx file (the MNIST format) as a uint8 array of its recorded shape."""
    with gzip.open(path) as fh:
        data = fh.read()
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def fashion_mnist(split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of the ``train`` or ``test`` split."""
    prefix = {"train": "train", "test": "t10k", "t10k": "t10k"}[split]
    images = read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz")
    labels = read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return images, labels


def png_bytes(image: np.ndarray) -> bytes:
    """A uint8 image array as PNG bytes."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()
