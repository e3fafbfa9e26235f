"""`curate relabel` with its defaults, as a new user runs it: the first N Fashion-MNIST training
images (28 px, their own clean labels), inside a cgroup-v1 memory limit.

Reports the wall time, the peak anonymous memory (:mod:`_cgroup`), the longest silence between
two output lines (the first line counts from the start), the teacher and input size chosen,
and the share of the clean labels whose top-1 changed. ``--code DIR`` runs another checkout of
curate (e.g. ``git archive <commit> | tar -x -C DIR`` for the code before a change) with the
same interpreter; ``--timeout`` stops a run that would take hours and reports what it printed.

    python benchmarks/relabel_defaults.py --rows 300 --limit 8G --out bench-out/rd-300.json
    python benchmarks/relabel_defaults.py --rows 10000 --limit 2G
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cgroup import limited, parse_size
from relabel_noise import load, write

#: Runs the command, writes each output line with its time since the start (merged streams).
STAMP = """
import subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[2:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
with open(sys.argv[1], "w") as log:
    for line in p.stdout:
        log.write(f"{time.perf_counter() - t0:.1f}\\t{line}")
        log.flush()
sys.exit(p.wait())
"""


def silences(stamped: list[tuple[float, str]], wall: float) -> float:
    """The longest time without a line: start to first, between lines, last to the end."""
    times = [0.0, *(t for t, _ in stamped), wall]
    return max(b - a for a, b in zip(times, times[1:], strict=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=300)
    ap.add_argument("--limit", default="8G")
    ap.add_argument("--work", default="/tmp/relabel-defaults")
    ap.add_argument("--code", default=None, help="a curate checkout to run instead of this one")
    ap.add_argument("--timeout", type=float, default=None, help="seconds; stop the run then")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    args.out = args.out and Path(args.out).resolve()  # before the chdir below
    xtr, ytr, *_, names = load("fashion")
    work = Path(args.work).resolve()
    manifest = write(xtr[: args.rows], ytr[: args.rows], names, work / f"first{args.rows}")
    out, log = work / f"out{args.rows}", work / f"log{args.rows}.txt"
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    if args.code:
        env["PYTHONPATH"] = str(Path(args.code).resolve())  # before the editable install
    cli = [sys.executable, "-m", "curate.cli.app"]
    cmd = [*cli, "relabel", str(manifest), "-o", str(out), "--overwrite"]
    if args.timeout:
        cmd = ["timeout", str(args.timeout), *cmd]
    load0 = Path("/proc/loadavg").read_text().split()[:3]
    os.chdir(work)  # not the repository: ``python -m`` puts the working directory first
    res = limited([sys.executable, "-c", STAMP, str(log), *cmd], parse_size(args.limit), env=env)
    stamped = []
    for raw in log.read_text().splitlines():
        t, _, text = raw.partition("\t")
        stamped.append((float(t), text))
    result = {
        "rows": args.rows, "code": args.code or "this checkout", "returncode": res.returncode,
        "wall_s": res.wall_s, "peak_anon_gb": res.gb("peak_anon_bytes"),
        "limit": args.limit, "oom_killed": res.oom_killed,
        "longest_silence_s": round(silences(stamped, res.wall_s), 1),
        "first_line_s": stamped[0][0] if stamped else None, "lines": len(stamped),
        "loadavg_before": load0, "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }  # fmt: skip
    if res.returncode == 0:
        result.update(outcome(out, ytr[: args.rows]))
    result["tail"] = [text for _, text in stamped[-4:]]
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def outcome(out: Path, labels: np.ndarray) -> dict:
    """The teacher, its input, and how many clean labels the top-1 changed."""
    info = json.loads((out / "run.json").read_text())
    counts = info["counts"]
    changed = counts.get("top1_differs", 0)
    return {
        "teacher": info["teacher"]["name"],
        "input_size": info["teacher"].get("input_size"),
        "input_reason": info.get("input", {}).get("reason"),
        "grid": info["map"]["grid"],
        "top1_differs": changed,
        "top1_differs_share": round(changed / len(labels), 4),
        "teacher_choice": info.get("teacher_choice"),
        "evidence": {k: v for k, v in info.get("evidence", {}).items() if k != "noise_matrix"},
        "timings": info.get("timings"),
    }


if __name__ == "__main__":
    main()
