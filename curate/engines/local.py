"""The local engine: runs any step over a manifest in this process, shard by shard, resumable.

Rows are cut into shards of about ``shard_rows`` rows at row-group starts; each shard is read
in batches, passed through the step and written atomically (a temporary file renamed when
whole, with its counts beside it), so a killed run resumes from the shards it finished. A
thread-safe step runs several shards at once on threads; the output is the same whatever
their number.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from curate.config import resolve_config
from curate.engines.base import FitStep, Step
from curate.engines.options import RunOptions
from curate.engines.progress import Progress
from curate.errors import InputError
from curate.manifests import parallel as P
from curate.manifests.io import Manifest, ManifestWriter, open_manifest
from curate.manifests.runinfo import fingerprint, make_run_info

#: Resume record inside an output directory that is still in progress.
RESUME_MARKER = "_CURATE_RESUME.json"


def plan_shards(m: Manifest, shard_rows: int, workers: int) -> list[tuple[int, int]]:
    """Row ranges, one per output shard: about ``shard_rows`` rows each (cuts move to the
    nearest row-group start, so no two shards decode one row group), and at least ``workers``
    of them when the manifest is large enough to share out."""
    n = m.num_rows
    parts = max(workers, math.ceil(n / shard_rows)) if n else 0
    return P.row_ranges(n, parts, max_rows=shard_rows, starts=m.row_group_starts())


def _resume_key(step: Step, m: Manifest, shards: list) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {
                "step": step.name,
                "config": step.config_record(),
                "input": fingerprint(m.path),
                "rows": m.num_rows,
                "shards": [list(s) for s in shards],
            },
            default=str,
        )
    )


def check_resume(out: Path, key: dict[str, Any]) -> list[tuple[int, int]]:
    """Record this run's key in ``out``; a resumed run must match it. Returns the shard plan
    to use (the recorded one when resuming, so a different worker count changes nothing)."""
    marker = out / RESUME_MARKER
    if marker.exists():
        before = json.loads(marker.read_text())
        same = {k: before.get(k) == key[k] for k in ("step", "config", "input", "rows")}
        if not all(same.values()):
            diff = [k if k != "input" else "input manifest" for k, ok in same.items() if not ok]
            raise InputError(
                f"{out}: holds an interrupted {before.get('step')} run with a different "
                f"{', '.join(diff)}; rerun with the same options to resume, or pass "
                "--overwrite to start over."
            )
        return [tuple(s) for s in before["shards"]]
    if any(out.glob("part-*.parquet")):
        raise InputError(
            f"{out}: holds shards this run did not write; pass --overwrite to replace them."
        )
    tmp = out / f".{RESUME_MARKER}.tmp"
    tmp.write_text(json.dumps(key))
    os.replace(tmp, marker)
    return [tuple(s) for s in key["shards"]]


def _counts_path(writer: ManifestWriter, index: int) -> Path:
    return writer.out / f"_part-{index:05d}.counts.json"


def _run_shard(step: Step, m: Manifest, writer: ManifestWriter, index: int, rows, opts) -> None:
    counts: Counter = Counter()
    stream = writer.open_shard(index)
    try:
        for batch in m.iter_batches(batch_size=opts["batch_size"], rows=rows, prefetch=1):
            out = step(batch)
            stream.write(out)
            counts.update(step.count(out))
            opts["progress"].advance(batch.num_rows)
        # counts land first: a shard that exists (the rename below) always has them
        tmp = _counts_path(writer, index).with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(counts)))
        os.replace(tmp, _counts_path(writer, index))
    except BaseException:
        stream.abort()
        raise
    stream.finish(keep_empty=True)
    opts["progress"].shard_done(index, opts["shards"])


def _gather_counts(writer: ManifestWriter, shards: int) -> dict[str, int]:
    total: Counter = Counter()
    for i in range(shards):
        path = _counts_path(writer, i)
        if path.exists():
            total.update(json.loads(path.read_text()))
            path.unlink()
    return dict(total)


def run_local(
    step: Step,
    manifest: str | os.PathLike | Manifest,
    out: str | os.PathLike,
    *,
    options: RunOptions | None = None,
    run_info: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Manifest:
    """Run ``step`` over every row of ``manifest`` into the directory ``out``.

    Parameters
    ----------
    step
        A :class:`Step` (a :class:`FitStep` is fitted first unless already fitted).
    manifest, out
        Input manifest; output directory (``part-NNNNN.parquet`` shards and run.json).
    options, **kwargs
        A :class:`~curate.engines.options.RunOptions`, or its fields as keywords
        (``overwrite``, ``resume``, ``shard_rows``, ``batch_size``, ``workers``, ``progress``).
        ``workers`` threads run a ``thread_safe`` step; other steps run on this thread.
    run_info
        Extra fields for run.json.

    Returns
    -------
    Manifest
        The output; its run.json holds the step, config, counts (summed :meth:`Step.count`)
        and timings.
    """
    opt = resolve_config(RunOptions, options, kwargs, step="run")
    m = open_manifest(manifest).validate()
    workers = (opt.workers or P.default_workers()) if step.thread_safe else 1
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    if isinstance(step, FitStep) and not step.fitted:
        step.fit(m)
        timings["fit"] = round(time.perf_counter() - t0, 4)
    t1 = time.perf_counter()
    step.setup()
    timings["setup"] = round(time.perf_counter() - t1, 4)
    writer = ManifestWriter(
        out,
        overwrite=opt.overwrite,
        resume=opt.resume and not opt.overwrite,
        schema=step.output_schema(m.schema),
    )
    shards = plan_shards(m, opt.shard_rows, workers)
    shards = check_resume(writer.out, _resume_key(step, m, shards))
    done = writer.completed_shards()
    todo = [i for i in range(len(shards)) if i not in done]
    rows_todo = sum(shards[i][1] - shards[i][0] for i in todo)
    t2 = time.perf_counter()
    with Progress(step.name, rows_todo, mode=opt.progress) as bar:
        if done:
            bar.line(f"resuming: {len(done)} of {len(shards)} shards already done")
        opts = {"batch_size": opt.batch_size, "progress": bar, "shards": len(shards)}
        try:
            P.ordered_map(lambda i: _run_shard(step, m, writer, i, shards[i], opts), todo, workers)
        except BaseException:
            writer.abort()
            raise
    timings["process"] = round(time.perf_counter() - t2, 4)
    timings["rows_per_s"] = round(rows_todo / timings["process"], 2) if rows_todo else 0.0
    counts = {"rows": m.num_rows, **_gather_counts(writer, len(shards))}
    counts["shards"], counts["shards_resumed"] = len(shards), len(done)
    info = make_run_info(
        step.name,
        config=step.config_record(),
        inputs={"manifest": m.path},
        counts=counts,
        timings=timings,
        engine="local",
        **step.run_info(),
        **(run_info or {}),
    )
    writer.close(info)
    (writer.out / RESUME_MARKER).unlink(missing_ok=True)
    return Manifest(writer.out)
