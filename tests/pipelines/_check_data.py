"""A small manifest with planted issues for the check tests: Fashion-MNIST test images (the
bundled demo data) in a train and a test split, copies of some test images in train, dark,
light, blank, odd-sized, oddly shaped and corrupt images, and a real vector column."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from curate.manifests import schema as S
from curate.manifests.io import write_manifest


def fashion(n: int, offset: int = 0) -> np.ndarray:
    """``n`` Fashion-MNIST test images (28 x 28 uint8) from the bundled demo data."""
    path = resources.files("curate").joinpath("data", "fashion_mnist_test.parquet")
    table = pq.read_table(str(path), columns=["image"]).slice(offset, n)
    return np.stack([np.asarray(Image.open(io.BytesIO(b))) for b in table.column(0).to_pylist()])


def png(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "PNG")
    return buf.getvalue()


def jpeg(a: np.ndarray, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def pixel_vectors(images: list[np.ndarray], dim: int = 49, seed: int = 0) -> np.ndarray:
    """A real, cheap image embedding: the 7 x 7 area-downscaled grayscale pixels, centred and
    L2-normalised (copies and re-encodes land within a cosine of ~0.99)."""
    out = []
    for a in images:
        g = Image.fromarray(a).convert("L").resize((7, 7), Image.Resampling.BOX)
        v = np.asarray(g, np.float32).ravel()
        v = v - v.mean() + 1e-3
        out.append(v / np.linalg.norm(v))
    return np.stack(out)


@dataclass
class Planted:
    """What was planted, by id."""

    path: Path
    ids: list[str]
    exact_leaks: dict[str, str] = field(default_factory=dict)  # test id -> train copy id
    jpeg_leaks: dict[str, str] = field(default_factory=dict)
    dups: dict[str, str] = field(default_factory=dict)  # later train id -> earlier train id
    corrupt: str = ""
    kinds: dict[str, str] = field(default_factory=dict)  # id -> dark/light/blank/wide/big


def build(
    path: Path, *, n_train: int = 160, n_test: int = 40, embeddings: bool = True,
    images: bool = True, model: str = "pixels-7x7",
) -> Planted:  # fmt: skip
    """Write the manifest to ``path``; return what was planted."""
    base = fashion(n_train + n_test)
    rows: list[tuple[str, bytes | None, str, np.ndarray | None]] = []
    planted = Planted(path, [])
    for i in range(n_train):
        rows.append((f"train-{i:04d}", png(base[i]), "train", base[i]))
    for i in range(n_test):
        rows.append((f"test-{i:04d}", png(base[n_train + i]), "test", base[n_train + i]))
    for j in range(3):  # exact copies of test images in train (re-encoded: same pixels)
        a = base[n_train + j]
        rows.append((f"train-copy-{j}", png(a), "train", a))
        planted.exact_leaks[f"test-{j:04d}"] = f"train-copy-{j}"
    for j in range(3, 6):  # JPEG copies of test images in train
        b = jpeg(base[n_train + j])
        rows.append((f"train-jpeg-{j}", b, "train", np.asarray(Image.open(io.BytesIO(b)))))
        planted.jpeg_leaks[f"test-{j:04d}"] = f"train-jpeg-{j}"
    rows.append(("train-dup-0", png(base[7]), "train", base[7]))  # duplicate inside train
    planted.dups["train-dup-0"] = "train-0007"
    specials = {
        "dark": (base[10] // 8).astype(np.uint8),
        "light": np.full((28, 28), 250, np.uint8),
        "blank": np.zeros((28, 28), np.uint8),
        "wide": np.asarray(Image.fromarray(base[11]).resize((112, 20))),
        "big": np.asarray(Image.fromarray(base[12]).resize((300, 300))),
    }
    for kind, a in specials.items():
        rows.append((f"train-{kind}", png(a), "train", a))
        planted.kinds[f"train-{kind}"] = kind
    rows.append(("train-corrupt", b"\x89PNG\r\n\x1a\n not a png", "train", None))
    planted.corrupt = "train-corrupt"
    planted.ids = [r[0] for r in rows]
    cols: dict[str, pa.Array] = {
        S.ID: pa.array([r[0] for r in rows]),
        S.SPLIT: pa.array([r[2] for r in rows]),
        S.LABEL: pa.array(np.arange(len(rows)) % 10, pa.int64()),
    }
    if images:
        cols[S.IMAGE] = pa.array([r[1] for r in rows], pa.binary())
    fields = [pa.field(k, v.type) for k, v in cols.items()]
    if embeddings:
        blank = np.zeros((28, 28), np.uint8)
        vec = pixel_vectors([r[3] if r[3] is not None else blank for r in rows])
        field_ = S.embedding_field(S.EMBEDDING, vec.shape[1], "float32", model=model)
        flat = pa.array(vec.ravel().astype(np.float32))
        valid = np.array([r[3] is not None for r in rows])
        cols[S.EMBEDDING] = pa.FixedSizeListArray.from_arrays(
            flat, vec.shape[1], mask=pa.array(~valid)
        )
        fields.append(field_)
    table = pa.table(cols, schema=pa.schema(fields))
    write_manifest(table, path)
    return planted
