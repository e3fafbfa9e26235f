"""``curate cluster`` and ``curate prune``: parse options, call the library, print a summary."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

_SUMMARY_CLUSTERS = 15


def _opt(name: str, annotation: Any, default: Any, *decls: str, help: str) -> inspect.Parameter:
    info = typer.Option(*decls, help=help) if decls else typer.Option(help=help)
    kind = inspect.Parameter.KEYWORD_ONLY
    return inspect.Parameter(name, kind, annotation=Annotated[annotation, info], default=default)


def _arg(name: str, annotation: Any, help: str) -> inspect.Parameter:
    return inspect.Parameter(
        name,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        annotation=Annotated[annotation, typer.Argument(help=help)],
    )


def _command(fn, params: list[inspect.Parameter]):
    """Give ``fn(**options)`` a typer signature: one place lists a command's many options."""
    fn.__signature__ = inspect.Signature(params)
    return fn


_COMMON = [
    _arg("manifest", Path, "Input manifest with an embedding column."),
    _opt("out", Path, ..., "--out", "-o", help="Output manifest (all rows)."),
]
_TAIL = [
    _opt("seed", int, 0, help="Seed: same seed, same clusters and subset."),
    _opt("embedding_column", str, "embedding", help="The vector column to use."),
    _opt("overwrite", bool, False, help="Replace existing outputs."),
]

CLUSTER_PARAMS = [
    *_COMMON,
    _opt("k", int | None, None, help="Clusters (default: ~100 rows each, at most 1000)."),
    _opt("niter", int, 20, help="k-means iterations."),
    _opt("backend", str, "auto", help="auto, faiss, faiss-gpu or torch."),
    *_TAIL,
]

PRUNE_PARAMS = [
    *_COMMON,
    _opt("keep", float | None, None, help="Fraction of valid rows to keep, in (0, 1]."),
    _opt("method", str, "dbp", help="dbp, semdedup, prototypes, clip-score or random."),
    _opt("eps", float | None, None, help="semdedup: duplicates have cosine > 1 - eps."),
    _opt("kept_out", Path | None, None, help="Also write the kept rows here."),
    _opt("keep_easy", bool, False, help="prototypes/dbp: keep the easiest rows instead."),
    _opt("dedup_eps", float | None, None, help="dbp: run SemDeDup at this eps first."),
    _opt("k", int | None, None, help="Recluster with k clusters (default: reuse/auto)."),
    _opt("temperature", float, 0.1, help="dbp: softmax temperature on complexity."),
    *_TAIL,
]


def cluster_cmd(**options: Any) -> None:
    """Spherical k-means on the embedding column: adds cluster and centroid_sim."""
    from curate.cli.app import console
    from curate.pipelines.cluster import cluster

    m = cluster(options.pop("manifest"), options.pop("out"), **options)
    info = m.run_info or {}
    sizes = info.get("clusters", {}).get("sizes", [])
    counts = info.get("counts", {})
    console.print(
        f"wrote {m.num_rows} rows to {m.path}: {len(sizes)} clusters "
        f"(sizes {min(sizes, default=0)}..{max(sizes, default=0)}), "
        f"{counts.get('invalid', 0)} rows with an invalid embedding; "
        f"backend {info.get('config', {}).get('backend_used')}"
    )


def prune_cmd(**options: Any) -> None:
    """Mark rows to keep (keep, prune_reason) with dbp, semdedup, prototypes, clip-score or
    random; OUT holds every row."""
    from curate.pipelines.prune import prune

    manifest, out = options.pop("manifest"), options.pop("out")
    kept_out, overwrite = options.pop("kept_out"), options.pop("overwrite")
    m = prune(manifest, out, kept_out=kept_out, overwrite=overwrite, **options)
    print_summary(m.run_info or {}, out)


def print_summary(info: dict, out: Path) -> None:
    """Counts by reason and the largest clusters' size, complexity, quota and kept count."""
    from curate.cli.app import console

    counts, explain = info.get("counts", {}), info.get("explain", {})
    cfg = info.get("config", {})
    console.print(
        f"[bold]{cfg.get('method')}[/]: kept {counts.get('kept')} of {counts.get('rows')} rows "
        f"({counts.get('valid')} valid, target {counts.get('target')}) -> {out}"
    )
    if "eps" in explain:
        console.print(f"semdedup eps {explain['eps']}: {explain['duplicate_groups']} groups")
    reasons = Table("prune_reason", "rows", title="removed")
    for reason, n in counts.get("removed_by_reason", {}).items():
        reasons.add_row(reason, str(n))
    console.print(reasons)
    per = explain.get("per_cluster")
    if per:
        _cluster_table(per)


def _cluster_table(per: dict) -> None:
    from curate.cli.app import console

    cols = [c for c in ("size", "complexity", "quota", "duplicate_groups", "kept") if c in per]
    order = sorted(range(len(per["size"])), key=lambda i: -per["size"][i])
    t = Table("cluster", *cols, title=f"largest {_SUMMARY_CLUSTERS} of {len(order)} clusters")
    for i in order[:_SUMMARY_CLUSTERS]:
        t.add_row(str(per["cluster"][i]), *[f"{per[c][i]:.4g}" for c in cols])
    console.print(t)
    console.print("all clusters: run.json explain.per_cluster")


def register(app: typer.Typer) -> None:
    """Add ``cluster`` and ``prune`` to the app."""
    app.command("cluster")(_command(cluster_cmd, CLUSTER_PARAMS))
    app.command("prune")(_command(prune_cmd, PRUNE_PARAMS))
