"""SIGINT/SIGTERM that work even while the main thread is blocked inside XLA.

Python runs a signal handler only when the main thread returns to the interpreter, so a process
waiting in ``block_until_ready`` (compiling, or a long step) never sees a plain handler, and a
``KeyboardInterrupt`` raised during start-up can land in a finaliser (JAX's ``_xla_gc_callback``)
where it is printed and swallowed. :class:`Interrupts` instead has the C-level handler write the
signal number to a pipe (``signal.set_wakeup_fd``), which a watcher thread reads at once:

* while the owner has not :meth:`Interrupts.arm`-ed it (before a run's first step completes, or in
  a command with nothing to save), a signal ends the process immediately, exit code 128 + signum;
* once armed, the first signal only sets :attr:`Interrupts.signal` (the training loop saves a
  checkpoint at the next step boundary and stops); a second signal ends the process immediately.
  Checkpoints and results files are written atomically, so an immediate exit loses only the
  work since the last checkpoint.

The ``hard`` mode is for the command line, which owns the process. A library caller (a notebook)
gets the soft mode: the first signal sets the flag, a second raises ``KeyboardInterrupt``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_current: Interrupts | None = None


class Interrupts:
    """The process's interrupt policy while installed (see the module docstring).

    Attributes:
      signal: name of the first signal received once armed (``"SIGINT"``/``"SIGTERM"``), else None.
    """

    def __init__(self, *, hard: bool, what: str = "lstm-jax"):
        self.hard = hard
        self.what = what
        self.signal: str | None = None
        self.count = 0
        self.armed = False
        self._lock = threading.Lock()

    def arm(self) -> None:
        """From now on the first signal is a request to stop at the next step boundary (each run
        that arms starts afresh: no signal or count carried over from an earlier one)."""
        with self._lock:
            self.signal, self.count, self.armed = None, 0, True

    def disarm(self) -> None:
        self.armed = False

    def _exit_now(self, signum: int) -> None:
        name = signal.Signals(signum).name
        why = "second signal" if self.armed else "nothing to save yet"
        try:
            sys.stdout.flush()
            sys.stderr.write(f"{self.what}: {name} ({why}): exiting now\n")
            sys.stderr.flush()
        finally:
            os._exit(128 + signum)

    def _received(self, signum: int) -> None:
        with self._lock:
            self.count += 1
            if not self.armed or self.count >= 2:
                if self.hard:
                    self._exit_now(signum)
                return
            self.signal = signal.Signals(signum).name

    def _watch(self, fd: int) -> None:
        while True:
            try:
                data = os.read(fd, 64)
            except OSError:
                return
            for signum in data:
                if signum == 0:  # uninstall sentinel
                    return
                self._received(signum)

    def _soft_handler(self, signum, frame):
        self.count += 1
        if self.count >= 2 or not self.armed:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name


@contextlib.contextmanager
def installed(*, hard: bool, what: str = "lstm-jax"):
    """Install an :class:`Interrupts` policy for the block (main thread only; elsewhere, and when
    one is already installed, yield the existing one or None)."""
    global _current
    if _current is not None or threading.current_thread() is not threading.main_thread():
        yield _current
        return
    policy = Interrupts(hard=hard, what=what)
    if not hard:
        old = {s: signal.signal(s, policy._soft_handler) for s in SIGNALS}
        _current = policy
        try:
            yield policy
        finally:
            _current = None
            for s, h in old.items():
                signal.signal(s, h)
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    old = {s: signal.signal(s, lambda *_: None) for s in SIGNALS}  # the watcher does the work
    old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    watcher = threading.Thread(target=policy._watch, args=(read_fd,), daemon=True,
                               name="lstm-jax-interrupts")
    watcher.start()
    _current = policy
    try:
        yield policy
    finally:
        _current = None
        signal.set_wakeup_fd(old_wakeup)
        for s, h in old.items():
            signal.signal(s, h)
        os.write(write_fd, b"\0")
        watcher.join(timeout=5)
        os.close(write_fd)
        os.close(read_fd)


def current() -> Interrupts | None:
    """The installed policy, if any."""
    return _current
