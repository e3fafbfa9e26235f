"""Diagnose a distillation run: how far the synthetic images moved from their real start, and
the size of each method's first-iteration loss and pixel gradient.

    python benchmarks/distill_moved.py --work /tmp/distill-bench   # after benchmarks/distill.py
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

import curate
from curate.pipelines.distill.output import read_pixels


def moved(work: Path) -> dict[str, float]:
    """RMS change (normalised units) of every finished synthetic set from its real init."""
    out, cache = {}, {}
    for path in sorted(glob.glob(str(work / "*-ipc*"))):
        p = Path(path)
        if (
            "eval" in p.name
            or not (p / "run.json").exists()
            or (p / "_CURATE_IN_PROGRESS").exists()
        ):
            continue
        m = curate.open_manifest(p)
        px, _, norm = read_pixels(m)
        src = m.read(["source_id"]).column("source_id").to_pylist()
        ds = p.name.split("-")[0]
        if ds not in cache:
            t = curate.open_manifest(work / f"{ds}.parquet").read(["id", "image"])
            cache[ds] = dict(
                zip(t.column("id").to_pylist(), t.column("image").to_pylist(), strict=True)
            )
        x0 = np.stack([np.asarray(Image.open(io.BytesIO(cache[ds][s])), np.float32) for s in src])
        x0 = (x0[:, None] / 255 - norm["mean"][0]) / norm["std"][0]
        out[p.name] = round(float(np.sqrt(((px - x0) ** 2).mean())), 4)
    return out


def first_gradients(real_path: Path, real_per_class: int) -> dict[str, list[float]]:
    """Per method, [loss, mean |d loss / d pixel|] at iteration 1, IPC 1, on CPU."""
    from curate.pipelines.distill.config import DistillConfig
    from curate.pipelines.distill.data import load_real
    from curate.pipelines.distill.loop import MatchingLoop, initial_state

    real = load_real(curate.open_manifest(real_path), split="train")
    out = {}
    for method in ("dm", "datadam"):
        cfg = DistillConfig(
            method=method, ipc=1, real_per_class=real_per_class, device="cpu", lr=1.0
        )
        loop = MatchingLoop(real, cfg, initial_state(real, cfg, "cpu"), "cpu")
        loss = loop.step(0)
        out[method] = [round(loss, 4), float(loop.syn.grad.abs().mean())]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/distill-bench")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--real-per-class", type=int, default=16)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    work = Path(args.work)
    print(json.dumps({"moved_rms": moved(work)}, indent=1))
    grads = first_gradients(work / f"{args.dataset}.parquet", args.real_per_class)
    print(json.dumps({"first_iteration_loss_and_mean_abs_grad": grads}, indent=1))


if __name__ == "__main__":
    main()
