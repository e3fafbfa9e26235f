"""A run killed with SIGKILL resumes from its finished shards and writes the same manifest."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pyarrow.parquet as pq
import pytest

from curate.errors import InputError, ManifestError
from curate.manifests.io import IN_PROGRESS, Manifest
from curate.pipelines.embed import embed
from tests.pipelines import _embed_data as D

N, SHARD = 240, 40


@pytest.fixture
def src(tmp_path):
    images = [D.jpeg(96, 128, seed=i % 50) for i in range(N)]
    return D.write_images(tmp_path / "in", images, text=[f"caption {i}" for i in range(N)])


def _cli(src, out, model) -> list[str]:
    code = "from curate.cli.app import main; main()"
    args = ["embed", str(src), "-o", str(out), "--model", model, "--shard-rows", str(SHARD)]
    return [sys.executable, "-c", code, *args, "--batch-size", "20", "--workers", "1"]


def _kill_after_first_shard(cmd: list[str], out) -> int:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not (out / "part-00000.parquet").exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no shard after 120 s"
            time.sleep(0.01)
        children = psutil.Process(proc.pid).children(recursive=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        _, alive = psutil.wait_procs(children, timeout=10)  # decode workers die with it
        assert not alive, f"decode workers outlived the killed run: {alive}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    return len(list(out.glob("part-*.parquet")))


def test_sigkill_then_rerun_equals_uninterrupted_run(tmp_path, src):
    model = D.tiny_clip_config(tmp_path)
    out = tmp_path / "out"
    done = _kill_after_first_shard(_cli(src, out, model), out)
    assert (out / IN_PROGRESS).exists() and 1 <= done < N // SHARD
    with pytest.raises(ManifestError, match="incomplete manifest"):
        Manifest(out)
    first = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}

    again = embed(src, out, model=model, shard_rows=SHARD, batch_size=20, workers=1, progress=False)
    assert again.run_info["counts"]["shards_resumed"] == done
    for name, mtime in first.items():  # finished shards were not recomputed
        assert (out / name).stat().st_mtime_ns == mtime

    whole = embed(
        src,
        tmp_path / "whole",
        model=model,
        shard_rows=SHARD,
        batch_size=20,
        workers=1,
        progress=False,
    )
    resumed = Manifest(out)
    assert resumed.num_rows == N and len(resumed.files) == len(whole.files)
    assert resumed.read().equals(whole.read())
    assert resumed.schema.equals(whole.schema, check_metadata=True)


def test_resume_with_other_options_is_refused(tmp_path, src, monkeypatch):
    from curate.engines.local import ShardedRun

    model = D.tiny_clip_config(tmp_path)
    out = tmp_path / "out"

    def crash(*a, **k):
        raise KeyboardInterrupt  # every shard written, the run not closed

    opts = {"model": model, "shard_rows": SHARD, "batch_size": 20, "progress": False}
    with monkeypatch.context() as mp:
        mp.setattr(ShardedRun, "close", crash)
        with pytest.raises(KeyboardInterrupt):
            embed(src, out, **opts)
    assert (out / IN_PROGRESS).exists()
    with pytest.raises(InputError, match="different dtype.*--overwrite"):
        embed(src, out, **{**opts, "dtype": "float32"})
    finished = embed(src, out, **opts)  # nothing left to compute: just closes
    assert finished.run_info["counts"]["shards_resumed"] == N // SHARD
    fresh = embed(src, out, **{**opts, "shard_rows": SHARD * 3}, overwrite=True)
    assert pq.read_metadata(fresh.files[0]).num_rows == SHARD * 3
