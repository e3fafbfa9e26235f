"""Keep BLAS from oversubscribing the cores where curate runs matrix work of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

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
