"""Small real inputs for the ingest tests, built from sklearn's digits (8x8, 10 classes)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

DIGIT_NAMES = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
]  # fmt: skip


def digits(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` sklearn digits as uint8 images (n, 8, 8) scaled to 0-255, and labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images[:n] * (255 / 16)).round().astype(np.uint8)
    return images, d.target[:n].astype(np.int64)


def png_bytes(img: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format=fmt)
    return buf.getvalue()


def digits_folder(root: Path, n: int = 60, *, fmt: str = "png") -> Path:
    """An ImageFolder tree ``root/<digit name>/<i>.png`` of the first ``n`` digits."""
    images, labels = digits(n)
    for i, (img, y) in enumerate(zip(images, labels, strict=True)):
        d = root / DIGIT_NAMES[y]
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:04d}.{fmt}").write_bytes(png_bytes(img, "JPEG" if fmt == "jpg" else "PNG"))
    return root


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def digits_tar(path: Path, n: int = 20, *, start: int = 0) -> Path:
    """A WebDataset shard as img2dataset writes it: KEY.jpg, KEY.txt, KEY.json per sample."""
    images, labels = digits(start + n)
    with tarfile.open(path, "w") as tar:
        for i in range(start, start + n):
            key = f"{i:09d}"
            meta = {
                "url": f"https://example.org/{key}.jpg",
                "caption": f"a handwritten {DIGIT_NAMES[labels[i]]}",
                "key": key,
                "status": "success",
                "width": 8,
                "height": 8,
                "original_width": 32,
                "original_height": 32,
                "similarity": 0.25 + i / 1000,
            }
            add_tar_member(tar, f"{key}.jpg", png_bytes(images[i], "JPEG"))
            add_tar_member(tar, f"{key}.txt", meta["caption"].encode())
            add_tar_member(tar, f"{key}.json", json.dumps(meta).encode())
    return path


def laion_table(n: int = 50) -> pa.Table:
    """A LAION-400M-style metadata table: SAMPLE_ID, URL, TEXT, WIDTH, HEIGHT, similarity."""
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "SAMPLE_ID": pa.array(np.arange(1000, 1000 + n), pa.int64()),
            "URL": [f"https://example.org/img/{i}.jpg" for i in range(n)],
            "TEXT": [f"photo number {i}" for i in range(n)],
            "WIDTH": pa.array(rng.integers(64, 1024, n), pa.int64()),
            "HEIGHT": pa.array(rng.integers(64, 1024, n), pa.int64()),
            "similarity": pa.array(rng.uniform(0.2, 0.4, n), pa.float64()),
        }
    )


def write_laion(path: Path, n: int = 50) -> Path:
    pq.write_table(laion_table(n), path)
    return path
