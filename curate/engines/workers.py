"""The work a fit hands out, as an engine service: threads locally, Ray tasks under Ray.

A :class:`~curate.step.FitStep` whose fit has independent pieces of work (a range of
rows to assign and spill, a batch of clusters to deduplicate) does not loop over them itself:
the engine hands ``fit(manifest, workers)`` a :class:`Workers` and the fit calls
``workers.map(fn, items)``. Locally the items run on worker threads (largest first, one BLAS
thread each); under ``engine="ray"`` each item is a Ray task on the cluster. Either way the
results come back in item order and are the same values.

Items and results travel between processes under Ray: keep them small (a row range, a list of
cluster ids; counts and per-cluster sums back) and put bulk data in files every worker sees
(the fit's scratch directory).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

from curate.manifests import parallel as P
from curate.step import FitStep

ItemFn = Callable[[Any], Any]
DoneFn = Callable[[int, Any], None]


@contextlib.contextmanager
def _one_thread_each() -> Iterator[None]:
    """BLAS and OpenMP (FAISS) at one thread inside: the workers are the parallelism."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1):
        yield


class Workers:
    """Runs independent items of a fit; ``map`` returns their results in item order.

    Parameters of :meth:`map`
    -------------------------
    fn
        ``fn(item) -> result``; under Ray it is pickled with cloudpickle (closures work) and
        must only touch files on storage every node sees.
    items
        The work items.
    cost
        Optional weight per item (rows): heavier items start first.
    gpus
        GPUs each item needs (Ray); locally a GPU is shared by the threads.
    on_done
        ``on_done(index, result)`` in the caller's thread as each item finishes (progress).
    keep_results
        ``False``: results are only handed to ``on_done`` and not kept (a fit that copies
        each piece into place as it arrives then never holds them all at once).
    one_thread_each
        Locally, hold BLAS and OpenMP to one thread per item (numpy work: the items are the
        parallelism). ``False`` leaves them as they are, for FAISS calls whose results depend
        on its thread count (a k-means assignment then equals one made outside the workers).
    """

    name = "workers"

    def map(
        self,
        fn: ItemFn,
        items: Sequence[Any],
        *,
        cost: Sequence[float] | None = None,
        gpus: float = 0.0,
        on_done: DoneFn | None = None,
        keep_results: bool = True,
        one_thread_each: bool = True,
    ) -> list[Any]:
        results: list[Any] = [None] * len(items)
        order = list(range(len(items)))
        if cost is not None:
            order.sort(key=lambda i: -cost[i])

        def done(i: int, result: Any) -> None:
            if keep_results:
                results[i] = result
            if on_done:
                on_done(i, result)

        self._run(fn, items, order, done, gpus=gpus, one_thread_each=one_thread_each)
        return results

    def _run(self, fn, items, order, done, *, gpus: float, one_thread_each: bool) -> None:
        """Run ``fn`` on ``items`` in ``order``; call ``done(i, result)`` as each finishes."""
        raise NotImplementedError

    @property
    def size(self) -> int:
        """How many items run at once."""
        raise NotImplementedError


class ThreadWorkers(Workers):
    """Items on ``n`` threads of this process (default: the cores it may use)."""

    name = "threads"

    def __init__(self, n: int | None = None) -> None:
        self.n = max(1, n or P.default_workers())

    @property
    def size(self) -> int:
        return self.n

    def _run(self, fn, items, order, done, *, gpus: float, one_thread_each: bool) -> None:
        if self.n == 1 or len(items) <= 1:
            for i in order:
                done(i, fn(items[i]))
            return
        with (
            _one_thread_each() if one_thread_each else contextlib.nullcontext(),
            ThreadPoolExecutor(min(self.n, len(items)), thread_name_prefix="curate-fit") as ex,
        ):
            pending = {ex.submit(fn, items[i]): i for i in order}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        done(pending.pop(fut), fut.result())
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise


def _call(fn: ItemFn, item: Any) -> Any:
    return fn(item)


class RayWorkers(Workers):
    """Each item is a Ray task (one CPU, ``gpus`` GPUs); at most ``2 x`` the cluster's CPUs
    are in flight, so a million items never sit in the scheduler at once."""

    name = "ray"

    def __init__(self) -> None:
        import ray

        self._ray = ray
        self._cpus = int(ray.cluster_resources().get("CPU", 1))

    @property
    def size(self) -> int:
        return max(1, self._cpus - 1)

    def _run(self, fn, items, order, done, *, gpus: float, one_thread_each: bool) -> None:
        ray = self._ray
        remote = ray.remote(num_cpus=1, num_gpus=gpus or None)(_call)
        fn_ref = ray.put(fn)
        queue = order[::-1]
        flight: dict[Any, int] = {}
        limit = max(2, 2 * self._cpus)
        try:
            while queue or flight:
                while queue and len(flight) < limit:
                    i = queue.pop()
                    flight[remote.remote(fn_ref, items[i])] = i
                ready, _ = ray.wait(list(flight), num_returns=1)
                for ref in ready:
                    done(flight.pop(ref), ray.get(ref))
        except BaseException:
            for ref in flight:
                ray.cancel(ref, force=True)
            raise


@contextlib.contextmanager
def workers_for(engine: str, ray_address: str | None = None) -> Iterator[Workers]:
    """The workers of ``engine`` for a fit made outside ``run`` (a step fitted first so its
    caller can read what it learned): threads for ``"local"``, Ray tasks in one Ray session
    (started here unless one is running) for ``"ray"``."""
    from curate.engines import check_engine

    if check_engine(engine) != "ray":
        yield ThreadWorkers()
        return
    from curate.engines.ray_engine import ray_session

    with ray_session(ray_address):
        yield RayWorkers()


def fit_step(step: FitStep, manifest, workers: Workers) -> FitStep:
    """``step.fit(manifest, workers)``, or ``step.fit(manifest)`` for a step whose ``fit``
    takes no workers (steps written before the workers service)."""
    import inspect

    params = inspect.signature(step.fit).parameters
    if "workers" in params or len(params) > 1:
        return step.fit(manifest, workers)
    return step.fit(manifest)
