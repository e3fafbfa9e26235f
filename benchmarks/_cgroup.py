"""Run a command inside a cgroup-v1 memory limit and report its peak anonymous memory.

RSS alone overstates what a process needs (it counts file pages it mapped, which the kernel
reclaims under pressure); a memory cgroup with ``memory.limit_in_bytes`` set is the honest
check: the process is killed (exit 137) when its anonymous memory passes the limit, while
file pages are reclaimed instead. Needs root and the v1 memory controller
(``/sys/fs/cgroup/memory``), as on the project's machines.

    python benchmarks/_cgroup.py --limit 2.5G -- curate prune pool -o out --keep 0.27

Python: ``limited(cmd, limit_bytes)`` -> :class:`Limited` (exit code, wall seconds, peak
anonymous memory sampled from ``memory.stat``, the cgroup's ``max_usage_in_bytes`` (which
also counts page cache), the children's peak RSS and whether the limit killed it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup/memory")


@dataclass
class Limited:
    returncode: int
    wall_s: float
    limit_bytes: int
    peak_anon_bytes: int  # max over samples of memory.stat's total_rss (anonymous memory)
    max_usage_bytes: int  # the cgroup's own peak, page cache included
    peak_rss_bytes: int  # ru_maxrss of the children (counts mapped file pages)
    oom_killed: bool
    failcnt: int

    def gb(self, name: str) -> float:
        return round(getattr(self, name) / 1e9, 3)


def available() -> bool:
    """True where a memory cgroup can be made here (v1 controller mounted, root)."""
    return (ROOT / "memory.limit_in_bytes").exists() and os.geteuid() == 0


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text))


def _stat(group: Path) -> dict[str, int]:
    out = {}
    for line in (group / "memory.stat").read_text().splitlines():
        key, value = line.split()
        out[key] = int(value)
    return out


def _anon(stat: dict[str, int]) -> int:
    return stat.get("total_rss", stat.get("rss", 0))  # includes transparent huge pages


def limited(
    cmd: list[str],
    limit_bytes: int,
    *,
    env: dict[str, str] | None = None,
    interval: float = 0.1,
    stdout=None,
    stderr=None,
) -> Limited:
    """Run ``cmd`` in a fresh memory cgroup limited to ``limit_bytes``; no swap (memsw = limit)."""
    if not available():
        raise RuntimeError("needs root and the cgroup v1 memory controller at " + str(ROOT))
    group = ROOT / f"curate-bench-{uuid.uuid4().hex[:8]}"
    group.mkdir()
    try:
        (group / "memory.limit_in_bytes").write_text(str(limit_bytes))
        memsw = group / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(str(limit_bytes))
        procs = str(group / "cgroup.procs")

        def enter() -> None:  # runs in the child before exec: the command starts inside
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                with contextlib.suppress(OSError):
                    peak[0] = max(peak[0], _anon(_stat(group)))
                done.wait(interval)

        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        proc = subprocess.Popen(cmd, preexec_fn=enter, env=env, stdout=stdout, stderr=stderr)
        rc = proc.wait()
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        oom = "oom_kill 1" in (group / "memory.oom_control").read_text() or rc == -9
        return Limited(
            returncode=rc,
            wall_s=round(wall, 3),
            limit_bytes=limit_bytes,
            peak_anon_bytes=peak[0],
            max_usage_bytes=int((group / "memory.max_usage_in_bytes").read_text()),
            peak_rss_bytes=max(after, before) * 1024,
            oom_killed=oom or rc in (137, -9),
            failcnt=int((group / "memory.failcnt").read_text()),
        )
    finally:
        for _ in range(50):  # the cgroup can be removed once its last task has exited
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", required=True, help="e.g. 2.5G, 800M")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    res = limited(cmd, parse_size(args.limit))
    print(json.dumps({**asdict(res), "peak_anon_gb": res.gb("peak_anon_bytes")}, indent=2))
    raise SystemExit(0 if res.returncode == 0 else 1)


if __name__ == "__main__":
    main()
