"""Checkpoints: the only module that talks to orbax.

A checkpoint is one step's training state (any pytree of arrays: parameters, optimiser state,
accumulators) plus a small JSON ``meta`` record (the run's config, the step). Orbax's
``CheckpointManager`` writes each step to a temporary directory and renames it when complete, so
a crash during a save leaves the previous checkpoints intact; it keeps the last ``keep``.

The tree is stored as its flat list of leaves and rebuilt with the caller's tree structure, so a
checkpoint does not depend on how Flax names its state internally. The caller is expected to
check ``meta`` (e.g. that the configuration matches) before restoring the arrays.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import jax

from lstm_jax.errors import UserError


def _leaves_dict(tree) -> dict[str, Any]:
    return {f"{i:05d}": leaf for i, leaf in enumerate(jax.tree.leaves(tree))}


class Checkpoints:
    """Save and restore training state under ``directory`` (keep the last ``keep`` steps)."""

    def __init__(self, directory: str | Path, keep: int = 2):
        import orbax.checkpoint as ocp

        self._ocp = ocp
        self.directory = Path(directory).absolute()
        if self.directory.exists() and not self.directory.is_dir():
            raise UserError(f"checkpoint directory {self.directory} is a file")
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                               enable_async_checkpointing=False)
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state, meta: dict[str, Any]) -> None:
        """Write ``state`` (a pytree of arrays) and ``meta`` (JSON-able) as checkpoint ``step``."""
        ocp = self._ocp
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(_leaves_dict(state)),
            meta=ocp.args.JsonSave(meta)), force=True)
        self.manager.wait_until_finished()

    def meta(self, step: int) -> dict[str, Any]:
        ocp = self._ocp
        return self.manager.restore(step, args=ocp.args.Composite(
            meta=ocp.args.JsonRestore()))["meta"]

    def restore(self, step: int, like) -> Any:
        """Restore checkpoint ``step`` into the structure, shapes, dtypes and shardings of ``like``
        (arrays or ``jax.ShapeDtypeStruct``; without a sharding: the first local device)."""
        ocp = self._ocp
        leaves, treedef = jax.tree.flatten(like)
        local = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        abstract = {f"{i:05d}": jax.ShapeDtypeStruct(
            x.shape, x.dtype, sharding=getattr(x, "sharding", None) or local)
            for i, x in enumerate(leaves)}
        restored = self.manager.restore(step, args=ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract)))["state"]
        return jax.tree.unflatten(treedef, [restored[k] for k in sorted(restored)])

    def restore_latest(self, like, check_meta=None) -> tuple[int, Any, dict] | None:
        """The newest checkpoint that loads: ``(step, state, meta)``, or None if there is none.

        ``check_meta(meta)`` may raise (e.g. :class:`UserError` for another configuration); that
        is not a broken checkpoint and propagates. A checkpoint that fails to load is reported on
        stderr and the previous one is tried.
        """
        for step in reversed(self.steps()):
            try:
                meta = self.meta(step)
            except Exception as e:  # noqa: BLE001 - any orbax/IO failure means "unreadable"
                print(f"warning: checkpoint {step} in {self.directory} is unreadable ({e}); "
                      "trying the previous one", file=sys.stderr)
                continue
            if check_meta is not None:
                check_meta(meta)
            try:
                return step, self.restore(step, like), meta
            except Exception as e:  # noqa: BLE001
                print(f"warning: checkpoint {step} in {self.directory} is unreadable ({e}); "
                      "trying the previous one", file=sys.stderr)
        return None

    def close(self) -> None:
        self.manager.close()
