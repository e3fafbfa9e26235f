"""Which built-in predictor should the demo's label-issues stage use? Out-of-sample accuracy
against the given labels (5-fold, the stage's own cross-validation) and wall/CPU time of each
candidate on the demo set (10,000 Fashion-MNIST test images), each in its own process.

    python benchmarks/label_issues_predictors.py --work /tmp/li-pred
    python benchmarks/label_issues_predictors.py --work /tmp/li-pred --predictors logreg cnn

The embedded demo set (EfficientNet-Lite0 at 64 px, as the demo embeds) is built once in
``--work``; ``cnn`` trains on the pixels, the others on the embedding.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _embedded(work: Path) -> Path:
    from curate.demo import DEMO_DATA, DEMO_IMAGE_SIZE
    from curate.manifests.ingest import ingest
    from curate.pipelines.embed import embed

    out = work / "embedded"
    if not (out / "run.json").exists():
        src = ingest(DEMO_DATA, work / "ingested", overwrite=True).path
        embed(src, out, model="efficientnet_lite0", image_size=DEMO_IMAGE_SIZE, overwrite=True)
    return out


def _child(work: Path, predictor: str) -> dict:
    from curate.pipelines.label_issues import label_issues
    from curate.pipelines.label_issues.summary import predictor_accuracy

    t0 = time.perf_counter()
    result = label_issues(
        work / "embedded", work / f"li-{predictor}", predictor=predictor, overwrite=True
    )
    wall = time.perf_counter() - t0
    r = resource.getrusage(resource.RUSAGE_SELF)
    flagged = int(sum(1 for v in result.column("is_label_issue").to_pylist() if v))
    return {
        "predictor": predictor,
        "accuracy": round(predictor_accuracy(result), 4),
        "label_issues": flagged,
        "wall_s": round(wall, 1),
        "cpu_s": round(r.ru_utime + r.ru_stime, 1),
        "peak_rss_mb": round(r.ru_maxrss / 1024),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/li-pred"))
    ap.add_argument("--predictors", nargs="+", default=["logreg", "mlp", "cnn", "logreg+cnn"])
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.child:
        print(json.dumps(_child(a.work, a.child)))
        return
    _embedded(a.work)
    rows = []
    for p in a.predictors:
        load = Path("/proc/loadavg").read_text().split()[0]
        out = (
            subprocess.run(
                [sys.executable, __file__, "--work", str(a.work), "--child", p],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        rows.append({**json.loads(out), "load_1min": float(load)})
        print(json.dumps(rows[-1]), flush=True)
    print("| predictor | accuracy vs given | label issues | wall s | CPU s | peak RSS MB | load |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['predictor']} | {r['accuracy']:.4f} | {r['label_issues']} | {r['wall_s']} "
            f"| {r['cpu_s']} | {r['peak_rss_mb']} | {r['load_1min']} |"
        )


if __name__ == "__main__":
    main()
