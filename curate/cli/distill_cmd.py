"""``curate distill`` and ``curate distill-eval``: parse options, call the library, print."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from curate.cli.params import argument, command, option

DISTILL_PARAMS = [
    argument("manifest", Path, help="Labelled manifest with image bytes."),
    option("out", Path, ..., "--out", "-o", help="Synthetic manifest to write (a directory)."),
    option("method", str, "dm", help="dm (distribution matching) or datadam (attention)."),
    option("ipc", int, 10, help="Synthetic images per class."),
    option("fyi", bool, False, help="Match each synthetic batch joined with its flips (FYI)."),
    option("iterations", int, 20_000, help="Optimisation steps (20k in the DM paper)."),
    option("real_per_class", int, 256, help="Real images per class per iteration."),
    option("init", str, "real", help="real (random real images) or noise."),
    option("lr", float, 1.0, help="SGD learning rate on the pixels."),
    option("momentum", float, 0.5, help="SGD momentum on the pixels."),
    option("split", str, "train", help="Rows of this split ('' for every row)."),
    option("image_size", int | None, None, help="Resize every image to N x N."),
    option("checkpoint_every", int, 100, help="Checkpoint every K iterations (resume)."),
    option("device", str, "auto", help="auto, cpu, cuda or cuda:N."),
    option("seed", int, 0, help="Seed of the initial draw and every iteration."),
    option("overwrite", bool, False, help="Replace an existing output."),
]

EVAL_PARAMS = [
    argument("synthetic", list[Path], help="One or more synthetic manifests (same IPC)."),
    option("real", Path, ..., help="The real manifest (train and test splits)."),
    option("out", Path | None, None, "--out", "-o", help="Results directory (default SYN-eval)."),
    option("test_split", str, "test", help="Split to test on."),
    option("train_split", str, "train", help="Split the random baseline draws from."),
    option("whole", bool, False, help="Also train on the whole train split."),
    option("epochs", int, 1000, help="Training epochs per net (fewer: a reduced protocol)."),
    option("nets", int, 10, help="Nets per set (fewer: a reduced protocol)."),
    option("draws", int, 5, help="Random real draws; net i uses draw i mod draws."),
    option("test_rows", int | None, None, help="Test on a seeded subset (reduced)."),
    option("device", str, "auto", help="auto, cpu, cuda or cuda:N."),
    option("seed", int, 0, help="Seed of the draws and the nets."),
    option("overwrite", bool, False, help="Replace an existing results directory."),
]


def distill_cmd(**options: Any) -> None:
    """Condense a labelled manifest into a few synthetic images per class (DM, DataDAM, FYI);
    a rerun resumes an interrupted run from its last checkpoint."""
    from curate.cli.app import console, err_console
    from curate.pipelines.distill import distill

    last = [0.0]

    def progress(it: int, total: int, loss: float) -> None:
        if time.monotonic() - last[0] > 10 or it == total:
            last[0] = time.monotonic()
            err_console.print(f"iteration {it}/{total}  loss {loss:.4g}", highlight=False)

    manifest, out = options.pop("manifest"), options.pop("out")
    options["split"] = options["split"] or None
    m = distill(manifest, out, progress=progress, **options)
    info = m.run_info or {}
    t = info.get("timings", {})
    resumed = info.get("resumed_from")
    console.print(
        f"wrote {m.num_rows} synthetic images ({info.get('method')}, ipc "
        f"{options['ipc']}) to {m.path}; {t.get('s_per_iteration')} s/iteration, peak "
        f"{t.get('peak_memory_mb')} MB" + (f"; resumed from iteration {resumed}" if resumed else "")
    )


def distill_eval_cmd(**options: Any) -> None:
    """Train fresh ConvNet-3s on synthetic sets and on random real images at the same IPC
    (one pinned protocol), and print test accuracy mean ± std and the difference from random."""
    from curate.cli.app import console
    from curate.evaluate.distill_eval import distill_eval

    syn = options.pop("synthetic")
    out = options.pop("out") or Path(f"{syn[0]}-eval")
    keys = ("real", "test_split", "train_split", "whole", "overwrite")
    kw = {k: options.pop(k) for k in keys}
    table = distill_eval([str(s) for s in syn], out=out, **kw, **options)
    print_results(table)
    console.print(f"results, random draws and run.json in {out}")


def print_results(table) -> None:
    import json

    from curate.cli.app import console

    meta = json.loads(table.schema.metadata[b"curate.distill_eval"])
    reduced = meta["reduced"]
    title = "distill-eval" + (" (REDUCED protocol: " + ", ".join(reduced) + ")" if reduced else "")
    t = Table("method", "IPC", "nets", "accuracy", "vs random", title=title)
    for r in table.to_pylist():
        diff = r["diff_from_random"]
        t.add_row(
            r["method"],
            "all" if r["ipc"] is None else str(r["ipc"]),
            str(r["nets"]),
            f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}",
            "" if diff is None else f"{100 * diff:+.2f}",
        )
    console.print(t)
    console.print(f"tested on {meta['test_rows']} images; accuracy after the final epoch")


def register(app: typer.Typer) -> None:
    """Add ``distill`` and ``distill-eval`` to the app."""
    app.command("distill")(command(distill_cmd, DISTILL_PARAMS))
    app.command("distill-eval")(command(distill_eval_cmd, EVAL_PARAMS))
