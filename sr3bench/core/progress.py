"""Progress of a long loop: a tqdm bar on the terminal, and plain lines in the log.

A stage's log file gets no carriage-return bar updates: every ``log_every_s`` seconds, and
when the loop ends, one line such as ``train: 1200/3000 (40%), 2:01 elapsed, 9.9 it/s,
loss=0.0712``. The bar goes to stderr as usual (tqdm's own documentation: it writes
``\\r`` updates to its ``file``, which is why it must not be the log).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from tqdm import tqdm

log = logging.getLogger("sr3bench.progress")


class progress(tqdm):  # noqa: N801 (used like tqdm)
    def __init__(self, *args, log_every_s: float = 60.0, **kwargs):
        super().__init__(*args, **kwargs)
        self._log_every_s, self._logged_at, self._logged_n = log_every_s, time.monotonic(), None

    def update(self, n=1):
        shown = super().update(n)
        if not self.disable and time.monotonic() - self._logged_at >= self._log_every_s:
            self.log_line()
        return shown

    def __iter__(self):  # through update(), so that the log lines see the count (loops of images, not of millions)
        if self.disable:
            yield from self.iterable
            return
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    @contextmanager
    def batch(self, size: int):
        """For a batch of ``size`` items done in steps (a sampler's): yields the callback
        that advances the bar by a fraction of the batch, never past it; the batch ends on
        the whole count (fractions summed in floats miss it by a rounding)."""
        end = self.n + size
        yield lambda fraction: self.update(min(fraction * size, end - self.n))
        self.n = end
        self.refresh()

    def close(self):
        if not self.disable and self._logged_n != self.n:
            self.log_line()
        super().close()

    def log_line(self) -> None:
        self._logged_at, self._logged_n = time.monotonic(), self.n
        done = self.format_dict
        total = f"/{done['total']:g} ({100 * done['n'] / done['total']:.0f}%)" if done["total"] else ""
        elapsed = self.format_interval(done["elapsed"])
        this_run = done["n"] - done["initial"]  # a resumed loop's earlier steps took no time here
        rate = f", {this_run / done['elapsed']:.3g} {done['unit']}/s" if done["elapsed"] > 0 and this_run else ""
        postfix = f", {done['postfix']}" if done.get("postfix") else ""
        log.info("%s: %g%s, %s elapsed%s%s", done["prefix"] or "progress", done["n"], total, elapsed, rate, postfix)
