"""Progress of a long run, owned by the engine: a rich bar on a terminal; in logs (CI, pipes)
one line per shard and a status line at least every 25 seconds however long a shard takes;
nothing when asked to be quiet."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

from curate.engines.options import PROGRESS_MODES, progress_mode

#: In log mode, the longest silence between two lines while work is being done.
LINE_EVERY_S = 25.0


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}"


class Progress:
    """Rows done, rows/s and ETA for one step run.

    Parameters
    ----------
    label
        What runs (``"embed efficientnet_lite0"``).
    total
        Rows to process in this run (finished shards of a resumed run excluded); None when
        they are counted only as they are read (ingest of a folder of images).
    mode
        ``"auto"`` (a bar when stderr is a terminal, else shard lines), ``"bar"``,
        ``"lines"`` or ``"off"``.
    stream
        Where lines go (default stderr).
    unit
        What is counted (``"rows"``; distill counts ``"iterations"``).
    """

    MODES = PROGRESS_MODES
    #: In log mode, a line at least this often (seconds), however large the shards.
    INTERVAL = LINE_EVERY_S

    def __init__(
        self,
        label: str,
        total: int | None,
        *,
        mode: bool | str = "auto",
        stream: TextIO | None = None,
        unit: str = "rows",
    ) -> None:
        mode = progress_mode(mode)  # one rule for every step's progress argument
        self.label, self.total, self.unit = label, total, unit
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if getattr(self.stream, "isatty", lambda: False)() else "lines"
        self.mode = mode
        self.done = 0
        self._t0 = self._last = time.perf_counter()
        self._bar = None
        self._task = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def __enter__(self) -> Progress:
        if self.mode == "bar":
            self._start_bar()
        elif self.mode == "lines":
            if self.total is None:
                self.line(f"{self.unit} counted as they are read")
            else:
                self.line(f"{self.total:,} {self.unit} to process")
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            self._bar.stop()

    def _tick(self) -> None:
        """Log mode: a status line whenever nothing was printed for :attr:`INTERVAL` s."""
        while not self._stop.wait(min(1.0, self.INTERVAL / 4)):
            if time.perf_counter() - self._last >= self.INTERVAL:
                self.line(self.status())

    def status(self) -> str:
        """``done/total rows, rate, elapsed, ETA`` (or just the elapsed time before any row)."""
        elapsed = _clock(time.perf_counter() - self._t0)
        if not self.done:
            return f"working, elapsed {elapsed}"
        rate = f"{self.rate:,.0f} {self.unit}/s, elapsed {elapsed}"
        if self.total is None:
            return f"{self.done:,} {self.unit}, {rate}"
        eta = self.eta()
        left = "--" if eta != eta else _clock(eta)  # NaN before the first rows
        return f"{self.done:,}/{self.total:,} {self.unit}, {rate}, ETA {left}"

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
        )
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=self.total, rate=f"-- {self.unit}/s")

    @property
    def rate(self) -> float:
        dt = time.perf_counter() - self._t0
        return self.done / dt if dt > 0 else 0.0

    def eta(self) -> float:
        rate = self.rate
        if self.total is None or rate <= 0:
            return float("nan")
        return (self.total - self.done) / rate

    def advance(self, rows: int) -> None:
        """``rows`` more rows are done."""
        self.done += rows
        if self._bar is not None:
            self._bar.update(self._task, advance=rows, rate=f"{self.rate:,.0f} {self.unit}/s")

    def shard_done(self, index: int, shards: int) -> None:
        """One line per finished shard in log mode (the bar shows it already)."""
        if self.mode != "lines":
            return
        self.line(f"shard {index + 1}/{shards}: {self.status()}")

    def line(self, text: str) -> None:
        """A message that is not a shard line (a fit stage starting, a resume)."""
        if self.mode == "off":
            return
        self._last = time.perf_counter()
        if self._bar is not None:
            self._bar.console.print(f"{self.label}: {text}", highlight=False)
        else:
            print(f"{self.label}: {text}", file=self.stream, flush=True)


class Heartbeat:
    """``log(message)`` at most every ``seconds``: a loop inside a fit calls it on every step
    and a log still gets a line at least that often, not thousands.

    ``log`` None makes it a no-op.
    """

    def __init__(self, log: Callable[[str], None] | None, seconds: float = LINE_EVERY_S) -> None:
        self.log, self.seconds = log, seconds
        self._last = time.perf_counter()

    def __call__(self, message: str) -> None:
        if self.log is None or time.perf_counter() - self._last < self.seconds:
            return
        self._last = time.perf_counter()
        self.log(message)
