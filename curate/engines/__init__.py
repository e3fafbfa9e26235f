"""How steps run: the step contract (:mod:`curate.step`) and the engines that map it
over a manifest. ``run(step, manifest, out, engine="local")`` is the one entry point."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.engines.local import run_local
from curate.engines.options import RunOptions
from curate.engines.progress import Progress
from curate.engines.ray_engine import ray_session, run_ray
from curate.engines.workers import RayWorkers, ThreadWorkers, Workers, workers_for
from curate.errors import InputError
from curate.manifests.io import Manifest, prepare_output, write_manifest
from curate.step import FitStep, Resources, Step, StepError, add_columns, extend_schema

__all__ = [
    "ENGINES",
    "FitStep",
    "Progress",
    "Resources",
    "RayWorkers",
    "RunOptions",
    "Step",
    "StepError",
    "ThreadWorkers",
    "UnknownEngineError",
    "Workers",
    "add_columns",
    "check_engine",
    "local_only",
    "extend_schema",
    "run",
    "run_local",
    "run_ray",
    "ray_session",
    "workers_for",
]

#: Engines by name: each takes ``(step, manifest, out, **options)`` and returns the Manifest.
ENGINES: dict[str, Callable[..., Any]] = {"local": run_local, "ray": run_ray}


class UnknownEngineError(InputError, ValueError):
    """``engine=`` names no engine."""


def check_engine(engine: str) -> str:
    """``engine`` if it names an engine, else an error listing them (call before any work)."""
    if engine not in ENGINES:
        raise UnknownEngineError(
            f"unknown engine {engine!r} (--engine); choose one of {', '.join(ENGINES)}"
        )
    return engine


def local_only(step: str, engine: str, ray_address: str | None, why: str) -> None:
    """For the calls that run in this process whatever the engine: ``engine="ray"`` (or a
    ``ray_address``) is an error saying why, before any work."""
    if check_engine(engine) != "local" or ray_address:
        raise InputError(
            f"{step} runs on the local engine only ({why}); pass --engine local, and "
            "--engine ray to the steps that write rows."
        )


def run(
    step: Step,
    manifest: str | os.PathLike,
    out: str | os.PathLike,
    *,
    engine: str = "local",
    **options: Any,
):
    """Run ``step`` over ``manifest`` into ``out`` with the named engine (see ``ENGINES``).

    ``out`` is a directory of shards, or one ``.parquet`` file: the engine then writes the
    shards into a hidden directory beside it and streams them into the file at the end (a
    single file cannot be resumed shard by shard).
    """
    fn = ENGINES[check_engine(engine)]
    address = options.pop("ray_address", None)
    if engine == "ray":
        options["ray_address"] = address
    elif address:
        raise ValueError(f"ray_address={address!r} needs engine='ray' (--engine ray)")
    if Path(out).suffix != ".parquet":
        return fn(step, manifest, out, **options)
    out = Path(out)
    if out.exists() and not options.get("overwrite"):
        prepare_output(out)  # the usual "exists: pass --overwrite" error
    parts = out.with_name(f".{out.name}.parts")
    options = {**options, "overwrite": True, "resume": False}
    try:
        done = fn(step, manifest, parts, **options)
        write_manifest(
            done.iter_batches(prefetch=1),
            out,
            overwrite=True,
            run_info=done.run_info,
            schema=done.schema,
        )
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return Manifest(out)
