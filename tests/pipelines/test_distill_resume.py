"""A distillation killed with SIGKILL resumes from its last checkpoint, to the same result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import curate  # noqa: E402
from curate.manifests.io import IN_PROGRESS  # noqa: E402
from curate.pipelines.distill import read_pixels  # noqa: E402
from tests.pipelines._distill_data import FAST, fashion_table, one_thread, write  # noqa: E402,F401

REPO = Path(__file__).resolve().parents[2]
SETTINGS = dict(method="dm", ipc=2, checkpoint_every=2, seed=3, **FAST)


def _child(src: Path, out: Path) -> subprocess.Popen:
    code = (
        "import torch; torch.set_num_threads(1); import curate; "
        f"curate.distill({str(src)!r}, {str(out)!r}, iterations=100000, **{SETTINGS!r})"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE)


def _checkpoint_iteration(out: Path) -> int:
    path = out / "_distill_checkpoint.pt"
    if not path.exists():
        return -1
    return torch.load(path, weights_only=False)["iteration"]


@pytest.mark.slow  # a fresh interpreter importing torch: ~20-60 s on a loaded 2-core machine
def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(tmp_path):
    src = write(fashion_table(2, 12), tmp_path / "m.parquet")
    out = tmp_path / "syn"
    child = _child(src, out)
    deadline = time.monotonic() + 120
    try:
        while _checkpoint_iteration(out) < 4:
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert (out / IN_PROGRESS).exists()
    with pytest.raises(curate.errors.ManifestError, match="incomplete"):
        curate.open_manifest(out)
    done = _checkpoint_iteration(out)
    total = done + 4
    resumed = curate.distill(src, out, iterations=total, **SETTINGS)
    assert resumed.run_info["resumed_from"] == done
    assert resumed.run_info["timings"]["iterations_run"] == 4
    whole = curate.distill(src, tmp_path / "whole", iterations=total, **SETTINGS)
    assert whole.run_info["resumed_from"] is None
    np.testing.assert_allclose(read_pixels(resumed)[0], read_pixels(whole)[0], atol=1e-5)


class _Stop(Exception):
    pass


def test_an_interrupted_run_resumes_from_its_checkpoint_to_the_same_pixels(tmp_path):
    src = write(fashion_table(2, 12), tmp_path / "m.parquet")
    out = tmp_path / "syn"

    def interrupt(it, total, loss):
        if it == 5:
            raise _Stop  # as a Ctrl-C would, between checkpoints (last one: iteration 4)

    with pytest.raises(_Stop):
        curate.distill(src, out, iterations=8, progress=interrupt, **SETTINGS)
    assert _checkpoint_iteration(out) == 4
    resumed = curate.distill(src, out, iterations=8, **SETTINGS)
    assert resumed.run_info["resumed_from"] == 4
    whole = curate.distill(src, tmp_path / "whole", iterations=8, **SETTINGS)
    np.testing.assert_allclose(read_pixels(resumed)[0], read_pixels(whole)[0], atol=1e-5)


def test_resuming_with_other_settings_is_refused(tmp_path):
    src = write(fashion_table(2, 12), tmp_path / "m.parquet")
    out = tmp_path / "syn"
    with pytest.raises(curate.pipelines.distill.DivergedError):
        curate.distill(src, out, iterations=20, lr=1e38, **SETTINGS)
    with pytest.raises(curate.errors.InputError, match=r"other settings \(\{'ipc': \(2, 1\)"):
        curate.distill(src, out, iterations=2, **{**SETTINGS, "ipc": 1})
    m = curate.distill(src, out, iterations=2, overwrite=True, **{**SETTINGS, "ipc": 1})
    assert m.num_rows == 2 and m.run_info["resumed_from"] is None
