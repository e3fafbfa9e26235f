"""benchmarks/check.py's other stages: cleanvision agreement, the real splits, throughput."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from _check_data import (
    embedded,
    encode,
    fashion,
    full_manifest,
    nearest_reference,
    planted_manifest,
)

from curate.manifests import schema as S
from curate.manifests.io import open_manifest, write_manifest
from curate.pipelines.check import check

#: cleanvision issue type -> our flag column.
TYPES = {
    "dark": "is_dark", "light": "is_light", "blurry": "is_blurry",
    "low_information": "is_low_information", "odd_size": "is_odd_size",
    "odd_aspect_ratio": "is_odd_aspect_ratio", "grayscale": "is_grayscale",
}  # fmt: skip


def _load() -> str:
    return open("/proc/loadavg").read().split()[0]


def cleanvision_flags(ids: list[str], images: list[bytes], folder: Path) -> pd.DataFrame:
    """cleanvision 0.3's image-property flags for the images (written as files), by id."""
    from cleanvision import Imagelab

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(images):
        p = folder / f"{i:06d}.png"
        p.write_bytes(data)
        paths.append(str(p))
    lab = Imagelab(filepaths=paths)
    lab.find_issues({k: {} for k in TYPES}, n_jobs=2, verbose=False)
    flags = lab.issues.loc[paths, [f"is_{k}_issue" for k in TYPES]]
    flags.index = ids
    return flags


def agreement(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict:
    """Per issue type: cleanvision's flags, ours, and the share of theirs we also flag."""
    out = {}
    for kind, col in TYPES.items():
        t = theirs[f"is_{kind}_issue"].astype(bool)
        o = ours.loc[t.index, col].fillna(False).astype(bool)
        out[kind] = {
            "cleanvision": int(t.sum()), "ours": int(o.sum()), "both": int((t & o).sum()),
            "agree_on_theirs": round(float((t & o).sum() / t.sum()), 4) if t.sum() else None,
            "only_ours": int((o & ~t).sum()),
        }  # fmt: skip
    return out


def colour_set(work: Path, n: int = 3000, n_gray: int = 100) -> tuple[Path, dict]:
    """Fashion-MNIST tinted (a random colour per image), with grayscale images among them:
    ``n_gray`` stored as 8-bit gray PNGs (mode L) and ``n_gray`` as RGB PNGs of equal channels."""
    rng = np.random.default_rng(1)
    x, _ = fashion()["test"]
    ids, images, kinds = [], [], {}
    for i in range(n + 2 * n_gray):
        a = x[i]
        if i < n:
            tint = rng.uniform(0.25, 1.0, 3)
            data, kind = encode((a[..., None] * tint).astype(np.uint8)), "colour"
        elif i < n + n_gray:
            data, kind = encode(a), "gray_L"
        else:
            data, kind = encode(np.stack([a, a, a], axis=2)), "gray_RGB"
        ids.append(f"c{i:05d}")
        images.append(data)
        kinds[ids[-1]] = kind
    path = work / "colour-set"
    write_manifest(
        pa.table({S.ID: ids, S.IMAGE: pa.array(images, pa.binary())}), path, overwrite=True
    )
    return path, kinds


def stage_cleanvision(args) -> dict:
    work = Path(args.work)
    res: dict = {"load": [_load()]}
    checked = open_manifest(work / f"{args.dataset}-eval-checked")
    t = checked.read(["id", "image", *TYPES.values()]).to_pandas().set_index("id")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        theirs = cleanvision_flags(list(t.index), list(t.image), Path(tmp) / "pool")
        res["cleanvision_seconds"] = round(time.perf_counter() - t0, 1)
    res["pool"] = agreement(t, theirs)
    path, kinds = colour_set(work)
    ours = check(path, work / "colour-set-checked", overwrite=True, progress="off")
    o = ours.read(["id", "image", *TYPES.values()]).to_pandas().set_index("id")
    with tempfile.TemporaryDirectory() as tmp:
        theirs = cleanvision_flags(list(o.index), list(o.image), Path(tmp) / "colour")
    res["colour_set"] = agreement(o, theirs)
    k = pd.Series(kinds)
    res["colour_set_grayscale"] = {
        kind: {"ours": int(o.loc[k.index[k == kind], "is_grayscale"].fillna(False).sum()),
               "cleanvision": int(theirs.loc[k.index[k == kind], "is_grayscale_issue"].sum()),
               "rows": int((k == kind).sum())}
        for kind in ("colour", "gray_L", "gray_RGB")
    }  # fmt: skip
    res["load"].append(_load())
    return res


def signals_alone(m, threshold: float) -> dict:
    """Test rows whose nearest train row matches by each signal alone (exact search, all
    rows), beside the union: what ``leak_by``'s order (exact, phash, embedding) hides."""
    from curate.manifests.vectors import read_vectors

    df = m.read(["split", "pixel_hash", "phash"]).to_pandas()
    vec, _ = read_vectors(m, "embedding")
    vec = vec.astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    test = (df.split == "test").to_numpy()
    cos, ham, exact = nearest_reference(df, vec, test, ~test)
    alone = {"exact": exact, "phash": ham == 0, "embedding": cos >= threshold}
    out = {k: int(v.sum()) for k, v in alone.items()}
    out["union"] = int((alone["exact"] | alone["phash"] | alone["embedding"]).sum())
    out["embedding_max_cos_quantiles"] = {
        q: round(float(np.quantile(cos, q)), 4) for q in (0.5, 0.9, 0.99, 0.999)
    }
    return out


def leak_examples(m, per_signal: int = 5) -> list[dict]:
    """The closest leak pairs of each signal, with both rows' labels."""
    t = m.read(["id", "label", "is_leak", "leak_of", "leak_by", "leak_sim"]).to_pandas()
    label = t.set_index("id").label
    leaks = t[t.is_leak.fillna(False).astype(bool)].sort_values("leak_sim", ascending=False)
    picks = leaks.groupby("leak_by", sort=True).head(per_signal)
    names = m.class_names or [str(i) for i in range(10)]
    return [
        {"test": r.id, "train": r.leak_of, "by": r.leak_by, "cos": round(float(r.leak_sim), 4),
         "labels": [names[int(r.label)], names[int(label[r.leak_of])]]}
        for r in picks.itertuples()
    ]  # fmt: skip


def stage_real(args) -> dict:
    """The real train and test splits: what check finds (test against train), what each
    signal finds alone, the closest pairs per signal, and a report."""
    import curate.reporting as R
    from curate.pipelines.check import CheckConfig, summarize

    work = Path(args.work)
    full = embedded(
        full_manifest(work / f"{args.dataset}-full", args.dataset),
        work / f"{args.dataset}-full-emb",
    )
    out = work / f"{args.dataset}-real-checked"
    load0, t0 = _load(), time.perf_counter()
    m = check(full, out, overwrite=True, progress="lines")
    seconds = time.perf_counter() - t0
    load1 = _load()
    t = m.read(["is_leak", "leak_by", "label", "leak_of", "id"]).to_pandas()
    leaks = t[t.is_leak.fillna(False).astype(bool)]
    label = t.set_index("id").label
    page = R.report([m.path], work / f"{args.dataset}-real-report.html")
    return {
        "dataset": args.dataset, "rows": m.num_rows, "seconds": round(seconds, 1),
        "load": [load0, load1], "counts": m.run_info["counts"],
        "fit_timings": m.run_info.get("fit_timings"), "index": m.run_info.get("index"),
        "test_rows_checked": int(t.is_leak.notna().sum()),
        "leaks_by": leaks.leak_by.value_counts().to_dict(),
        "leak_pairs_same_label": int((leaks.label.to_numpy()
                                      == label.loc[leaks.leak_of].to_numpy()).sum()),
        "signals_alone": signals_alone(m, CheckConfig().near_dup_threshold),
        "leak_examples": leak_examples(m),
        "summary": summarize(m), "report": str(page),
    }  # fmt: skip


def _photos(n: int, side: int = 256) -> list[bytes]:
    """``n`` JPEG (q90) crops of sklearn's two sample photos, ``side`` px square."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(0)
    photos = load_sample_images().images
    out = []
    for _ in range(n):
        p = photos[int(rng.integers(len(photos)))]
        y, x = (int(rng.integers(0, d - side)) for d in p.shape[:2])
        out.append(encode(np.ascontiguousarray(p[y : y + side, x : x + side]), "JPEG", quality=90))
    return out


def stage_throughput(args) -> dict:
    """The pixel pass alone (decode, hashes, scores), images/s, one thread and all."""
    from curate.engines import run
    from curate.pipelines.check import CheckConfig, PixelChecks

    work = Path(args.work)
    small, _ = planted_manifest(work, args.dataset, "eval")
    photos = work / "photos-256"
    if not photos.exists():
        imgs = _photos(2000)
        write_manifest(pa.table({S.ID: [f"p{i}" for i in range(len(imgs))],
                                 S.IMAGE: pa.array(imgs, pa.binary())}), photos)  # fmt: skip
    res = {}
    for name, src in (("28px_png", small), ("256px_jpeg", photos)):
        for workers in (1, 2):
            load0 = _load()
            m = run(PixelChecks(CheckConfig()), src, work / "tp-out", overwrite=True,
                    progress="off", workers=workers)  # fmt: skip
            tm = m.run_info["timings"]
            res[f"{name}_workers{workers}"] = {
                "rows": m.num_rows, "images_per_s": tm["rows_per_s"], "process_s": tm["process"],
                "load": [load0, _load()],
            }  # fmt: skip
    return res


STAGES = {"cleanvision": stage_cleanvision, "real": stage_real, "throughput": stage_throughput}
