"""Ray for the engine tests: imported (CI installs the [ray] extra, so a missing ray fails
there instead of skipping) and one local session per test module."""

from __future__ import annotations

import os

import pytest

if os.environ.get("CI") == "true":
    import ray
else:
    ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def ray_local():
    """One local Ray for the module: loopback, no dashboard, 4 logical CPUs on 2 cores."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()
