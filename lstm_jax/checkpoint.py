"""Checkpoints: the only module that talks to orbax.

A checkpoint is one step's training state (any pytree of arrays: parameters, optimiser state,
accumulators) plus a small JSON ``meta`` record (the run's config, the step). Orbax's
``CheckpointManager`` writes each step to ``<step>.orbax-checkpoint-tmp`` and renames it when
complete, so a crash during a save (even ``kill -9``) leaves the previous checkpoints intact; it
keeps the last ``keep``.

The tree is stored as its flat list of leaves and rebuilt with the caller's tree structure, so a
checkpoint does not depend on how Flax names its state internally. The caller is expected to
check ``meta`` (e.g. that the configuration matches) before restoring the arrays.

Integrity: ``meta["integrity"]["sha256"]`` is a SHA-256 over every leaf's dtype, shape and bytes
at save time; :meth:`Checkpoints.restore` recomputes it and raises :class:`CorruptCheckpoint` on a
mismatch, so a damaged finished checkpoint (truncated or overwritten file) is never loaded
silently. :meth:`Checkpoints.restore_latest` then says so and falls back to the previous one.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from lstm_jax.errors import UserError

TMP_MARK = ".orbax-checkpoint-tmp"  # orbax's suffix for a step still being written


def _is_closed_loop_callback(exc_type, exc, tb) -> bool:
    """The error a tensorstore read of a broken checkpoint raises when it completes after orbax
    gave up on the restore and closed its event loop (``call_soon_threadsafe`` on a closed loop)."""
    if exc_type is not RuntimeError or str(exc) != "Event loop is closed":
        return False
    names = set()
    while tb is not None:
        names.add(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return "call_soon_threadsafe" in names


def _drop_closed_loop_callbacks() -> None:
    """Keep those late callbacks' tracebacks (reported through ``sys.unraisablehook``, dozens per
    broken checkpoint) off stderr; every other unraisable exception is reported as before. The
    broken checkpoint itself is reported once, by :meth:`Checkpoints.restore_latest`."""
    if getattr(sys.unraisablehook, "_lstm_jax_filter", False):
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if not _is_closed_loop_callback(unraisable.exc_type, unraisable.exc_value,
                                        unraisable.exc_traceback):
            previous(unraisable)

    hook._lstm_jax_filter = True
    sys.unraisablehook = hook


class CorruptCheckpoint(Exception):
    """A finished checkpoint whose contents do not match what was saved."""


def _stderr(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


def _leaves_dict(tree) -> dict[str, Any]:
    return {f"{i:05d}": leaf for i, leaf in enumerate(jax.tree.leaves(tree))}


def state_digest(tree) -> str | None:
    """SHA-256 over each leaf's dtype, shape and bytes (None if a leaf is not fully addressable
    from this process, e.g. sharded over several hosts)."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if isinstance(leaf, jax.Array):
            if not leaf.is_fully_addressable:
                return None
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                leaf = jax.random.key_data(leaf)
        a = np.ascontiguousarray(np.asarray(leaf))
        h.update(f"{a.dtype.str}{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _collect_quietly() -> None:
    """Collect what a failed orbax restore left behind now, silencing the "coroutine ... was never
    awaited" RuntimeWarning its abandoned coroutines raise when finalised (else it surfaces at
    some later, unrelated garbage collection)."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="coroutine .* was never awaited",
                                category=RuntimeWarning)
        gc.collect()


class Checkpoints:
    """Save and restore training state under ``directory`` (keep the last ``keep`` steps).

    Args:
      directory: the checkpoint directory (created).
      keep: how many finished checkpoints to keep.
      discard_incomplete: remove ``<step>.orbax-checkpoint-tmp`` directories left by a process
        that stopped during a save (saying so through ``warn``). Only the process that writes the
        checkpoints should do this; a reader must not remove a save in progress.
      warn: where warnings go (default: one line on stderr).
    """

    def __init__(self, directory: str | Path, keep: int = 2, *, discard_incomplete: bool = False,
                 warn: Callable[[str], None] = _stderr):
        import orbax.checkpoint as ocp

        _drop_closed_loop_callbacks()
        self._ocp = ocp
        self.warn = warn
        self.directory = Path(directory).absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise UserError(f"checkpoint directory {self.directory} is a file")
        if discard_incomplete:
            for tmp in self.incomplete():
                self.warn(f"checkpoint {tmp.name.split(TMP_MARK)[0]} in {self.directory} was being "
                          "written when its process stopped; it is incomplete and was removed "
                          "(the last complete checkpoint is used)")
                shutil.rmtree(tmp, ignore_errors=True)
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def incomplete(self) -> list[Path]:
        """Directories of saves that never finished."""
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if TMP_MARK in p.name)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state, meta: dict[str, Any]) -> None:
        """Write ``state`` (a pytree of arrays) and ``meta`` (JSON-able) as checkpoint ``step``
        (``meta`` gains ``"integrity"``: the state's SHA-256, see :func:`state_digest`)."""
        ocp = self._ocp
        meta = {**meta, "integrity": {"sha256": state_digest(state)}}
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_leaves_dict(state)),
            meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def meta(self, step: int) -> dict[str, Any]:
        ocp = self._ocp
        return self.manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, step: int, like, meta: dict | None = None) -> Any:
        """Restore checkpoint ``step`` into the structure, shapes, dtypes and shardings of ``like``
        (arrays or ``jax.ShapeDtypeStruct``; without a sharding: the first local device).

        Raises :class:`CorruptCheckpoint` if the arrays do not match the digest saved in ``meta``
        (read from the checkpoint when not given).
        """
        ocp = self._ocp
        leaves, treedef = jax.tree.flatten(like)
        local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = {f"{i:05d}": jax.ShapeDtypeStruct(
            x.shape, x.dtype, sharding=getattr(x, "sharding", None) or local)
            for i, x in enumerate(leaves)}
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract)))["state"]
        state = jax.tree.unflatten(treedef, [restored[f"{i:05d}"] for i in range(len(leaves))])
        meta = self.meta(step) if meta is None else meta
        integrity = meta.get("integrity") if isinstance(meta, dict) else None
        if not isinstance(integrity, dict) or "sha256" not in integrity:
            raise CorruptCheckpoint("its meta has no SHA-256 of the arrays, so they cannot be "
                                    "checked (every checkpoint lstm-jax writes has one)")
        want = integrity["sha256"]  # None: saved by a multi-host run, not checkable here
        if want is not None:
            got = state_digest(state)
            if got is not None and got != want:
                raise CorruptCheckpoint(f"its arrays do not match the SHA-256 saved with them "
                                        f"({got[:12]}… != {want[:12]}…)")
        return state

    def restore_latest(self, like, check_meta=None, *,
                       quarantine: bool = False) -> tuple[int, Any, dict] | None:
        """The newest checkpoint that loads: ``(step, state, meta)``, or None if there is none.

        ``check_meta(meta)`` may raise (e.g. :class:`UserError` for another configuration); that
        is not a broken checkpoint and propagates. A checkpoint that fails to load (unreadable,
        truncated, or not matching its digest) is reported through ``warn`` and the previous one
        is tried; with ``quarantine`` it is also moved to ``<directory>.corrupt/<step>`` so that
        the step can be written again.
        """
        for step in reversed(self.steps()):
            try:
                meta = self.meta(step)
            except Exception as e:  # noqa: BLE001 - any orbax/IO failure means "unreadable"
                self._broken(step, e, quarantine)
                meta = None
            if meta is None:
                _collect_quietly()
                continue
            if check_meta is not None:
                check_meta(meta)
            try:
                return step, self.restore(step, like, meta), meta
            except Exception as e:  # noqa: BLE001
                self._broken(step, e, quarantine)
            _collect_quietly()
        return None

    def _broken(self, step: int, error: Exception, quarantine: bool) -> None:
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        where = ""
        if quarantine:
            dest = self.directory.parent / f"{self.directory.name}.corrupt" / str(step)
            n = 1
            while dest.exists():
                dest = dest.with_name(f"{step}.{n}")
                n += 1
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(self.directory / str(step)), dest)
            self.manager.reload()
            where = f"; moved it to {dest}"
        self.warn(f"checkpoint {step} in {self.directory} is corrupt or unreadable "
                  f"({reason[:300]}){where}; using the previous checkpoint")

    def close(self) -> None:
        self.manager.close()
