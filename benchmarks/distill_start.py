"""How much of a distilled set's accuracy is its real start: evaluate the untouched start draws.

For each synthetic set named, a copy whose ``pixels`` are the real images it started from
(``source_id``, normalised the same way) is written as ``<set>-start`` and evaluated with the
random-real baseline under ``curate.distill_eval`` (the protocol and seeds of
``benchmarks/distill.py``, so the random-real row repeats its draws; compare the start rows with
the sets' own rows in its results JSON).

    OMP_NUM_THREADS=1 nice python benchmarks/distill_start.py --work bench-out/distill \
        --dataset fashion --ipc 10 --sets dm datadam --epochs 50 --nets 3
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

import curate
from curate.evaluation.distill_eval import distill_eval
from curate.manifests.io import ManifestWriter


def start_copy(syn: Path, real: Path) -> Path:
    """``syn`` with its pixels replaced by the real images it started from."""
    out = syn.with_name(syn.name + "-start")
    shutil.rmtree(out, ignore_errors=True)
    m = curate.open_manifest(syn)
    table = m.read()
    field = m.schema.field("pixels")
    norm = json.loads(field.metadata[b"curate.normalization"])
    sources = table.column("source_id").to_pylist()
    src = curate.open_manifest(real).read(["id", "image"])
    keep = np.flatnonzero(np.isin(np.array(src.column("id").to_pylist()), sources))
    ids, blobs = src.column("id").take(keep), src.column("image").take(keep)
    images = dict(zip(ids.to_pylist(), blobs.to_pylist(), strict=True))
    x = np.stack([np.asarray(Image.open(io.BytesIO(images[s])), np.float32) for s in sources])
    mean, std = np.array(norm["mean"], np.float32), np.array(norm["std"], np.float32)
    x = (x[:, None] / 255 - mean[:, None, None]) / std[:, None, None]
    flat = pa.array(x.reshape(len(x), -1).ravel(), pa.float32())
    col = pa.FixedSizeListArray.from_arrays(flat, field.type.list_size)
    table = table.set_column(m.schema.get_field_index("pixels"), field, col)
    info = dict(m.run_info)
    info["method"] = f"{info['method']}{'+fyi' if info['config'].get('fyi') else ''} start"
    info["config"] = {**info["config"], "fyi": False}
    writer = ManifestWriter(out, resume=False, schema=m.schema)
    writer.write(table)
    writer.close(info)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="bench-out/distill")
    ap.add_argument("--dataset", default="fashion")
    ap.add_argument("--ipc", type=int, default=10)
    ap.add_argument("--sets", nargs="+", default=["dm", "datadam"])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--nets", type=int, default=3)
    ap.add_argument("--test-rows", type=int, default=1000)
    args = ap.parse_args()
    work = Path(args.work)
    real = work / f"{args.dataset}.parquet"
    syns = [work / f"{args.dataset}-{s}-ipc{args.ipc}" for s in args.sets]
    starts = [start_copy(s, real) for s in syns]
    table = distill_eval(
        starts,
        real=real,
        epochs=args.epochs,
        nets=args.nets,
        draws=args.nets,
        test_rows=args.test_rows,
        seed=0,
    )
    for r in table.to_pylist():
        accs = " / ".join(f"{a * 100:.1f}" for a in r["accuracies"])
        print(
            args.dataset,
            args.ipc,
            r["method"],
            f"{r['accuracy_mean'] * 100:.1f} +- {r['accuracy_std'] * 100:.1f}",
            f"[{accs}]",
            flush=True,
        )


if __name__ == "__main__":
    main()
