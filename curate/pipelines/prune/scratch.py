"""What a prune keeps in its scratch directory: the plan's key (resume or refuse), saved
arrays, and streams over the per-cluster files for the radix-selected cut-offs."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.engines.spill import Spill
from curate.errors import InputError
from curate.pipelines.prune import groups as G
from curate.pipelines.prune.space import check_writable


def _diff(before: dict, now: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(before) | set(now)):
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def open_scratch(scratch: Path, key: dict, *, overwrite: bool) -> None:
    """Make ``scratch`` hold a plan with ``key``: resume one with the same key; refuse one
    with another (naming what differs) unless ``overwrite``, which clears it."""
    check_writable(scratch)
    marker = scratch / "plan.json"
    if marker.exists():
        changed = _diff(json.loads(marker.read_text()), json.loads(json.dumps(key, default=str)))
        if not changed:
            return
        if not overwrite:
            raise InputError(
                f"{scratch}: holds an interrupted prune with other options "
                f"({'; '.join(changed)}); rerun with the same options to resume it, or "
                "pass --overwrite to start over."
            )
    for child in scratch.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    tmp = scratch / ".plan.json.tmp"
    tmp.write_text(json.dumps(key, default=str))
    os.replace(tmp, marker)


def recorded(scratch: Path, name: str, make):
    """``make()``'s JSON-able layout (row ranges, work items), recorded in the scratch the
    first time, so a resumed plan cuts its work exactly as the interrupted one did."""
    path = scratch / f"{name}.json"
    if not path.exists():
        tmp = scratch / f".{name}.json.tmp"
        tmp.write_text(json.dumps(make()))
        os.replace(tmp, path)
    return json.loads(path.read_text())


def save_array(scratch: Path, name: str, values: np.ndarray) -> str:
    """Save a decision array in the scratch (atomically); returns its path."""
    path = scratch / f"{name}.npy"
    tmp = scratch / f".{name}.npy.tmp"
    with open(tmp, "wb") as f:
        np.save(f, values)
    os.replace(tmp, path)
    return str(path)


def forest_edges(scratch: Path) -> int:
    """Edges of the near-neighbour forest written by the forest pass."""
    return sum(int(np.load(p, mmap_mode="r").shape[0]) for p in (scratch / G.FOREST).glob("*.npy"))


def stream_forest(scratch: Path):
    """(merge similarity, 0) over the forest's edges."""
    paths = sorted((scratch / G.FOREST).glob("b*.npy"))

    def stream():
        for p in paths:
            w = np.load(p)
            yield w.astype(np.float64), np.zeros(len(w), np.int64)

    return stream


def stream_decided(scratch: Path, what: str, *, dup: bool):
    """(key, row) over the decided members (duplicates or not): ``dup_sim`` or ``-sim``."""
    paths = sorted((scratch / G.DECIDE).glob("b*.arrow"))

    def stream():
        for p in paths:
            with pa.memory_map(str(p)) as src:
                t = pa.ipc.open_file(src).read_all()
            mask = t.column("dup").to_numpy(zero_copy_only=False) == dup
            if what == "dup_sim":
                key = t.column("dup_sim").to_numpy()[mask].astype(np.float64)
            else:
                key = -t.column("sim").to_numpy()[mask].astype(np.float64)
            yield key, t.column("row").to_numpy()[mask]

    return stream


def stream_keys(scratch: Path, chunks: list[tuple[int, int]], *, negate: bool):
    """(key, row) of the rows with a finite key (clip_score), from the spill runs."""
    spill = Spill(scratch / "spill", 1)

    def stream():
        for run in spill.runs():
            key = spill.section(run, "key")
            ok = np.flatnonzero(np.isfinite(key))
            yield (-key[ok] if negate else key[ok]), ok + chunks[run][0]

    return stream
