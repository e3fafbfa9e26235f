"""Run ``curate prune`` and SIGKILL the process at a chosen point of a chosen phase.

``python -m tests.pipelines._kill_prune PHASE N -- PRUNE ARGS...``: the N-th call of the
phase's work function kills the whole process with signal 9, as ``kill -9`` would (PHASE
``none``: no kill, the same settings). Used by the resume tests; curate has no such hook.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import curate.pipelines.cluster as cluster
import curate.pipelines.prune.groups as groups
import curate.pipelines.prune.plan as plan
import curate.pipelines.prune.step as step

TARGETS = {
    "sample": (cluster, "_sample_range"),
    "scan": (plan, "scan_chunk"),
    "per-cluster": (groups, "decide_item"),
    "finalize": (plan, "finalize_runs"),
    "write": (step.PruneDecision, "process_rows"),
}


def _kill_at(owner, name: str, after: int) -> None:
    real = getattr(owner, name)
    calls = [0]
    lock = threading.Lock()

    def killing(*args, **kwargs):
        with lock:
            calls[0] += 1
            if calls[0] >= after:
                os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(owner, name, killing)


def main() -> None:
    phase, after = sys.argv[1], int(sys.argv[2])
    if phase in TARGETS:
        _kill_at(*TARGETS[phase], after)
    plan.CHUNK_ROWS = 1000  # many runs and items, so a kill lands between finished ones
    plan.ITEM_ROWS = 500
    plan.JOIN_RUNS = 1
    from curate.cli.app import main as cli

    cli(sys.argv[4:] if sys.argv[3] == "--" else sys.argv[3:])


if __name__ == "__main__":
    main()
