"""``curate distill`` and ``curate distill-eval``: parse options, call the library, print."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from curate.cli.params import argument, command, option
from curate.errors import InputError
from curate.evaluation.distill_eval import EvalProtocol, distill_eval
from curate.pipelines.distill.config import DistillConfig

_D, _P = DistillConfig(), EvalProtocol()  # the library's defaults, shown by --help
_E = {k: p.default for k, p in inspect.signature(distill_eval).parameters.items()}

DISTILL_PARAMS = [
    argument("manifest", Path, help="Labelled manifest with image bytes."),
    option("out", Path | None, None, "--out", "-o",
           help="Synthetic manifest to write (a directory); default: NAME-distilled."),
    option("method", str, _D.method, help="dm (distribution matching) or datadam (attention)."),
    option("ipc", int, _D.ipc, help="Synthetic images per class."),
    option("fyi", bool, _D.fyi, help="Match each synthetic batch joined with its flips (FYI)."),
    option("iterations", int, _D.iterations, help="Optimisation steps (20k in the DM paper)."),
    option("real_per_class", int, _D.real_per_class, help="Real images per class per iteration."),
    option("init", str, _D.init, help="real (random real images) or noise."),
    option("lr", str, str(_D.lr),
           help="Pixel learning rate: a number; 'select' (chosen on a validation split cut "
           "from the training rows); 'auto': DM's paper value 1, chosen for DataDAM."),
    option("lr_grid", str, "", help="Learning rates to choose among, e.g. 1,10,100 "
           "(default: the method's)."),
    option("val_per_class", int, _D.val_per_class,
           help="Validation rows per class cut from train when choosing the lr (>= 20)."),
    option("select_iterations", int, _D.select_iterations, help="Iterations per lr candidate."),
    option("select_epochs", int, _D.select_epochs, help="Epochs of each candidate's nets."),
    option("select_nets", int, _D.select_nets, help="Nets scored per candidate."),
    option("momentum", float, _D.momentum, help="SGD momentum on the pixels."),
    option("split", str, _D.split, help="Rows of this split ('' for every row)."),
    option("image_size", int | None, None, help="Resize every image to N x N."),
    option("checkpoint_every", int, _D.checkpoint_every, help="Checkpoint every K iterations."),
    option("device", str, _D.device, help="auto, cpu, cuda or cuda:N."),
    option("seed", int, _D.seed, help="Seed of the initial draw and every iteration."),
    option("overwrite", bool, False, help="Replace an existing output."),
]  # fmt: skip

EVAL_PARAMS = [
    argument("synthetic", list[Path], help="One or more synthetic manifests (same IPC)."),
    option("real", Path, ..., help="The real manifest (train and test splits)."),
    option("out", Path | None, None, "--out", "-o", help="Results directory (default SYN-eval)."),
    option("test_split", str, _E["test_split"], help="Split to test on."),
    option("train_split", str, _E["train_split"], help="Split the random baseline draws from."),
    option("whole", bool, _E["whole"], help="Also train on the whole train split."),
    option("epochs", int, _P.epochs, help="Training epochs per net (fewer: a reduced protocol)."),
    option("nets", int, _P.nets, help="Nets per set (fewer: a reduced protocol)."),
    option("draws", int, _P.draws, help="Random real draws; net i uses draw i mod draws."),
    option("test_rows", int | None, _P.test_rows, help="Test on a seeded subset (reduced)."),
    option("device", str, _P.device, help="auto, cpu, cuda or cuda:N."),
    option("seed", int, _P.seed, help="Seed of the draws and the nets."),
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
    options["lr"] = _number_or_word(options["lr"], "--lr")
    options["lr_grid"] = tuple(
        _number_or_word(v, "--lr-grid") for v in options["lr_grid"].split(",") if v.strip()
    )

    def log(line: str) -> None:
        err_console.print(line, highlight=False)

    m = distill(manifest, out, progress=progress, log=log, **options)
    info = m.run_info or {}
    t = info.get("timings", {})
    resumed = info.get("resumed_from")
    chosen = " (chosen on the validation rows)" if info.get("lr_selection") else ""
    console.print(
        f"wrote {m.num_rows} synthetic images ({info.get('method')}, ipc "
        f"{options['ipc']}, lr {info.get('lr'):g}{chosen}) to {m.path}; "
        f"{t.get('s_per_iteration')} s/iteration, peak {t.get('peak_memory_mb')} MB"
        + (f"; resumed from iteration {resumed}" if resumed else ""),
        highlight=False,
    )


def _number_or_word(value: str, flag: str) -> float | str:
    """``1``, ``0.3`` -> float; ``auto``/``select`` (``--lr`` only) stay words."""
    value = value.strip()
    if flag == "--lr" and value in ("auto", "select"):
        return value
    try:
        return float(value)
    except ValueError:
        raise InputError(
            f"{flag} {value!r}: not a number" + (" (or auto, select)" if flag == "--lr" else "")
        ) from None


def distill_eval_cmd(**options: Any) -> None:
    """Train fresh ConvNet-3s on synthetic sets and on random real images at the same IPC
    (one pinned protocol), and print test accuracy mean ± std and the difference from random."""
    from curate.cli.app import console
    from curate.evaluation.distill_eval import distill_eval

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
