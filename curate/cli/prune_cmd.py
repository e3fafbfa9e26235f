"""``curate cluster`` and ``curate prune``: parse options, call the library, print a summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from curate.cli.params import ENGINE_PARAMS, argument, command, option, pop_engine
from curate.pipelines.cluster import ClusterConfig
from curate.pipelines.prune.base import PruneConfig

_SUMMARY_CLUSTERS = 15


_C, _P = ClusterConfig(), PruneConfig(keep=0.5)  # the defaults the library uses
_IN = argument("manifest", Path, help="Input manifest (or Parquet) with an embedding column.")
_TAIL = [
    option("seed", int, _P.seed, help="Seed: same seed, same clusters and subset."),
    option("embedding_column", str, _P.embedding_column, help="The vector column to use."),
    option("overwrite", bool, False, help="Replace existing outputs."),
]

CLUSTER_PARAMS = [
    _IN,
    option("out", Path | None, None, "--out", "-o",
           help="Output manifest (all rows); default: NAME-clustered."),
    option("k", int | None, _C.k, help="Clusters (default: ~100 rows each up to 100k rows, "
           "then sqrt(rows), at most 4096)."),
    option("niter", int, _C.niter, help="k-means iterations."),
    option("backend", str, _C.backend, help="auto, faiss, faiss-gpu or torch."),
    *_TAIL,
    *ENGINE_PARAMS,
]  # fmt: skip

PRUNE_PARAMS = [
    _IN,
    option("out", Path | None, None, "--out", "-o",
           help="Output manifest (all rows); default: NAME-pruned beside the input."),
    option("keep", float | None, None, help="Fraction of valid rows to keep, in (0, 1]."),
    option("method", str, _P.method, help="dbp, semdedup, prototypes, clip-score or random."),
    option("eps", float | None, None, help="semdedup: duplicates have cosine > 1 - eps."),
    option("kept_out", Path | None, None, help="Also write the kept rows here."),
    option("keep_easy", bool, _P.keep_easy,
           help="prototypes/dbp: keep the easiest rows instead."),
    option("dedup_eps", float | None, None, help="dbp: run SemDeDup at this eps first."),
    option("k", int | None, None, help="Recluster with k clusters (default: reuse/auto)."),
    option("temperature", float, _P.temperature,
           help="dbp: softmax temperature on complexity (the DBP authors' 0.5)."),
    option("cluster_balance", float, _P.cluster_balance,
           help="dbp: each cluster keeps at least this x target / k rows (0: no floor)."),
    option("scratch", Path | None, None,
           help="Spill directory (default: beside the output; removed on success)."),
    *_TAIL,
    *ENGINE_PARAMS,
]  # fmt: skip


def cluster_cmd(**options: Any) -> None:
    """Spherical k-means on the embedding column: adds cluster and centroid_sim."""
    from curate.cli.app import console
    from curate.pipelines.cluster import cluster

    engine = pop_engine(options)
    m = cluster(options.pop("manifest"), options.pop("out"), **options, **engine)
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
    overwrite = options.pop("overwrite")
    engine = pop_engine(options)
    m = prune(manifest, out, overwrite=overwrite, **engine, **options)
    print_summary(m.run_info or {}, m.path)


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
    app.command("cluster")(command(cluster_cmd, CLUSTER_PARAMS))
    app.command("prune")(command(prune_cmd, PRUNE_PARAMS))
