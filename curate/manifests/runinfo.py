"""run.json: what step wrote a manifest, with which config, versions, inputs, counts, timings."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RUN_JSON = "run.json"


def run_json_path(manifest: str | os.PathLike) -> Path:
    """``DIR/run.json`` for a directory manifest, ``name.run.json`` beside a single file."""
    p = Path(manifest)
    if p.suffix == ".parquet":
        return p.with_name(p.stem + ".run.json")
    return p / RUN_JSON


def read_run_json(manifest: str | os.PathLike) -> dict | None:
    path = run_json_path(manifest)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        from curate.errors import ManifestError

        raise ManifestError(
            f"{path}: not readable JSON ({' '.join(str(exc).split())}); it records the run "
            "that wrote the manifest: rerun that step (with --overwrite), or delete the file."
        ) from exc


def fingerprint(manifest: str | os.PathLike) -> str:
    """A cheap content fingerprint: shard names, sizes and Parquet footers (no full read)."""
    from curate.manifests.io import open_manifest

    m = open_manifest(manifest)
    h = hashlib.sha256()
    for f in m.files:
        size = f.stat().st_size
        h.update(f"{f.relative_to(m.path) if m.path.is_dir() else f.name}:{size}".encode())
        with open(f, "rb") as fh:
            fh.seek(max(0, size - 65_536))
            h.update(fh.read())
    return h.hexdigest()[:16]


def versions() -> dict[str, str]:
    import duckdb
    import numpy
    import pyarrow

    from curate import __version__

    return {
        "curate": __version__,
        "python": platform.python_version(),
        "pyarrow": pyarrow.__version__,
        "duckdb": duckdb.__version__,
        "numpy": numpy.__version__,
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    return obj


def make_run_info(
    step: str,
    *,
    config: dict,
    inputs: dict[str, str | os.PathLike] | None = None,
    counts: dict | None = None,
    timings: dict | None = None,
    **extra: Any,
) -> dict:
    """Build the run.json record; ``inputs`` maps a role ("manifest") to a path."""
    inputs = inputs or {}
    history: list[dict] = []
    in_records = {}
    for role, path in inputs.items():
        rec: dict[str, Any] = {"path": str(path)}
        try:
            rec["fingerprint"] = fingerprint(path)
            prev = read_run_json(path)
            if prev:
                history = list(prev.get("history", []))
        except Exception:  # a foreign input (raw folder, tar) has no manifest fingerprint
            pass
        in_records[role] = rec
    now = datetime.now(UTC).isoformat(timespec="seconds")
    history.append({"step": step, "at": now})
    return _jsonable(
        {
            "step": step,
            "created": now,
            "config": config,
            "inputs": in_records,
            "versions": versions(),
            "counts": counts or {},
            "timings": timings or {},
            "history": history,
            **extra,
        }
    )


def write_run_json(manifest: str | os.PathLike, info: dict) -> Path:
    path = run_json_path(manifest)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(_jsonable(info), indent=2, sort_keys=False))
    os.replace(tmp, path)
    return path


class Timer:
    """Collect named wall-clock timings: ``with timer("embed"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str) -> _Span:
        return _Span(self, name)


class _Span:
    def __init__(self, timer: Timer, name: str) -> None:
        self.timer, self.name = timer, name

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        dt = time.perf_counter() - self.t0
        self.timer.seconds[self.name] = round(self.timer.seconds.get(self.name, 0.0) + dt, 4)
