"""Keep thread pools from oversubscribing the cores: BLAS where curate runs matrix work of
its own, and OpenMP's waiting threads everywhere torch runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: OpenMP's wait policy for torch's intra-op threads unless the user set one. By default an
#: idle OpenMP thread spins for a while before it sleeps; beside another busy process (a decode
#: pool, a Ray worker, a second job) the spinning threads take the cores the working ones need.
#: Training the pixel CNN on 2,000 28-px images for one epoch on 2 cores, with one other
#: 2-thread process running: 9.2 s with the default policy, 2.5 s with PASSIVE; alone on the
#: machine 1.7 s either way (BENCHMARKS.md, "Threads").
OMP_WAIT_POLICY = "PASSIVE"


def passive_openmp() -> None:
    """Set ``OMP_WAIT_POLICY`` (unless already set) before torch loads its OpenMP runtime,
    which reads it once: a no-op where torch was imported before curate."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)


passive_openmp()  # on import: ``import curate`` imports this module before anything else

#: BLAS threads while scikit-learn fits the label-issues predictors: their products are small
#: (rows x features x classes), so BLAS threads mostly spin beside torch's and other pools'
#: (the logistic-regression folds measured 50x slower oversubscribed on 2 cores).
FIT_BLAS_THREADS = 1


@contextmanager
def limit_blas(n: int) -> Iterator[None]:
    """Limit BLAS (OpenBLAS, MKL) to ``n`` threads inside; a no-op without threadpoolctl."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield
