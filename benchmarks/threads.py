"""OpenMP's wait policy and torch on a shared machine: curate's two torch workloads (the pixel
CNN teacher's training, a backbone's forward pass), each with OpenMP's default wait policy and
with PASSIVE (what ``import curate`` sets unless the user set one), alone and beside a
competitor (another process running 2-thread torch matrix products, as a second job, a decode
pool or a Ray worker would).

Each case runs in a fresh process that sets (or clears) ``OMP_WAIT_POLICY`` before torch loads
its OpenMP runtime, which reads it once. Wall and CPU seconds, 3 repeats, the median.

    python benchmarks/threads.py --out bench-out/threads.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import os, sys, time
policy, work = sys.argv[1], sys.argv[2]
for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
    os.environ.pop(name, None)
if policy != "default":  # PASSIVE, or NAME=VALUE
    name, _, value = policy.rpartition("=")
    os.environ[name or "OMP_WAIT_POLICY"] = value
import numpy as np, torch  # the OpenMP runtime reads the policy here
rng = np.random.default_rng(0)
if work == "cnn":
    from curate.pipelines.teachers.pixel import GapCNN
    X = rng.random((2000, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, 2000)
    run = lambda: GapCNN(n_classes=10, epochs=1).fit(X, y)
else:
    from curate.pipelines.teachers.models import Backbone
    bb = Backbone("efficientnet_lite0", None, image_size=128, device="cpu").setup()
    x = torch.from_numpy(rng.integers(0, 255, (256, 3, 128, 128), dtype=np.uint8))
    run = lambda: [bb.features(x[i : i + 64]) for i in range(0, 256, 64)]
run()  # warm-up: first-call allocations, weights paged in
t0, c0 = time.perf_counter(), time.process_time()
run()
print(time.perf_counter() - t0, time.process_time() - c0)
"""

COMPETITOR = r"""
import torch
torch.set_num_threads(2)
a = torch.rand(384, 384)
while True:
    a = torch.tanh(a @ a)
"""


def default_env() -> dict[str, str]:
    """This environment without any OpenMP wait setting: the runtime's own default."""
    return {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}


def case(policy: str, work: str) -> tuple[float, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, policy, work], env=default_env(),
                         capture_output=True, text=True, check=True)  # fmt: skip
    wall, cpu = map(float, out.stdout.split()[-2:])
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--work", nargs="+", default=["cnn", "backbone"])
    ap.add_argument(
        "--policies",
        nargs="+",
        default=["default", "PASSIVE"],
        help="default, PASSIVE, ACTIVE, or NAME=VALUE (GOMP_SPINCOUNT=10000)",
    )
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    for beside in ("alone", "beside a 2-thread torch process"):
        rival = None
        if beside != "alone":  # the competitor keeps its default policy: an ordinary job
            rival = subprocess.Popen([sys.executable, "-c", COMPETITOR], env=default_env())
            time.sleep(3)
        try:
            for work in args.work:
                for policy in args.policies:
                    runs = [case(policy, work) for _ in range(args.repeats)]
                    wall = statistics.median(r[0] for r in runs)
                    cpu = statistics.median(r[1] for r in runs)
                    row = {"work": work, "condition": beside, "policy": policy,
                           "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                           "walls": [round(r[0], 2) for r in runs],
                           "loadavg": Path("/proc/loadavg").read_text().split()[:3]}  # fmt: skip
                    print(json.dumps(row), flush=True)
                    rows.append(row)
        finally:
            if rival is not None:
                rival.kill()
                rival.wait()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cores": os.cpu_count(),
              "rows": rows}  # fmt: skip
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
