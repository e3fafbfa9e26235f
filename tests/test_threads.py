"""``import curate`` makes torch's idle OpenMP threads sleep instead of spin, unless the user
chose a policy."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

READ = "import curate, os; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize(("given", "expected"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_curate_sets_a_passive_wait_policy_unless_one_is_set(given, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given is not None:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", READ], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected
