"""Training progress on stderr: a tqdm bar on a terminal, plain periodic lines in a log.

A bar's carriage-return updates turn a redirected log (``make demo > log 2>&1``) into hundreds of
overwritten fragments, so when stderr is not a terminal :class:`PlainProgress` prints one line
every 10 % of the steps (and at least every minute) instead. Both start after the first step:
its time (XLA compilation included) is reported on its own line, so the rate and ETA count only
compiled steps.
"""

from __future__ import annotations

import sys
import time


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class PlainProgress:
    """``tqdm``'s ``update``/``set_postfix_str``/``close`` as plain lines.

    Args:
      total: the last step.
      initial: the step the bar starts at.
      stream: where lines go (default stderr).
      fraction: print when another ``fraction`` of the steps is done.
      seconds: print at least this often.
    """

    def __init__(self, total: int, initial: int = 0, stream=None, *, fraction: float = 0.1,
                 seconds: float = 60.0):
        self.total, self.n, self.start_n = total, initial, initial
        self.stream = stream or sys.stderr
        self.every = max(1, int(total * fraction))
        self.seconds = seconds
        self.postfix = ""
        self.t0 = self.t_last = time.perf_counter()
        self.n_last = initial

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if (self.n // self.every > self.n_last // self.every or now - self.t_last >= self.seconds
                or self.n >= self.total):
            self._line(now)

    def _line(self, now: float) -> None:
        done, spent = self.n - self.start_n, now - self.t0
        rate = done / spent if spent > 0 else float("nan")
        eta = (self.total - self.n) / rate if rate > 0 else float("nan")
        text = (f"step {self.n}/{self.total} ({100 * self.n / self.total:.0f}%)"
                + (f" {self.postfix}" if self.postfix else "")
                + f" | {rate:.3g} steps/s, elapsed {_clock(spent)}"
                + (f", eta {_clock(eta)}" if eta == eta and self.n < self.total else ""))
        print(text, file=self.stream, flush=True)
        self.t_last, self.n_last = now, self.n

    def close(self) -> None:
        if self.n != self.n_last:
            self._line(time.perf_counter())


def make_progress(total: int, initial: int, first_step_s: float | None = None, stream=None):
    """A progress display from step ``initial`` to ``total``: tqdm when ``stream`` (default
    stderr) is a terminal, else :class:`PlainProgress`; first a line with the first step's time."""
    stream = stream or sys.stderr
    if first_step_s is not None:
        print(f"first step (XLA compilation included) took {first_step_s:.1f} s", file=stream,
              flush=True)
    isatty = getattr(stream, "isatty", None)
    if isatty is not None and isatty():
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, dynamic_ncols=True, leave=True, file=stream,
                    unit="step")
    return PlainProgress(total, initial, stream)
