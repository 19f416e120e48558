"""The task interface and registry: a task is one module that registers a factory here.

A task says everything the training loop needs to know about the data, and nothing about the
model beyond its input and head kinds:

* ``spec`` (:class:`TaskSpec`): the input kind (``"dense"`` feature vectors or ``"symbols"``
  looked up in an embedding), the input width or vocabulary size, the output width, the head
  (``"last"``: one output per sequence, read from the last *valid* step or a masked mean over valid
  steps; ``"per_step"``: one output per step), the loss's trivial baseline and where it comes from;
* ``train_batch(data, key, step, batch_size)``: the training batch at ``step``, a pure, jittable
  function of ``(data, key, step)`` (``step`` may be traced). Synthetic tasks draw a fresh batch
  from ``fold_in(key, step)``; a data-backed task (arrays on disk, e.g. IMDB) slices ``data`` with
  a permutation drawn from ``fold_in(key, epoch)``, ``epoch = step·B // N``. Either way a resumed
  run sees exactly the batches of an uninterrupted one, with no data position to save but
  ``step``;
* ``eval_set(data, key, size, split)``: a fixed held-out set of the ``"validation"`` or
  ``"test"`` split (a synthetic task draws it from ``key``, which differs per split; a data-backed
  task returns rows of that split and may ignore ``key``);
* ``device_data()``: a pytree of arrays the loop places on the devices once and passes to
  ``train_batch``/``eval_set`` (None for synthetic tasks). Passing the data as an argument keeps
  large arrays out of the compiled program's constants;
* ``loss(outputs, batch)`` and ``metrics(outputs, batch)``: a scalar mean over the batch, and a
  dict of scalars that always includes ``"loss"``.

A :class:`Batch` holds ``x`` ``(B, T, D)`` float or ``(B, T)`` int symbols, ``y`` (targets:
``(B,)``, ``(B, K)`` or ``(B, T)``) and ``mask`` ``(B, T)`` bool (True on valid steps) or None.

Register with :func:`register_task`; look up with :func:`make_task`. Modules named in
``TASK_MODULES`` are imported on first use, so adding a task is one new module plus one line.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax

from lstm_jax.errors import UserError, check_choice

INPUT_KINDS = ("dense", "symbols")
HEADS = ("last", "per_step")
READOUTS = ("last", "mean", "max")

# Modules that register tasks when imported (one line per task module).
TASK_MODULES = ["lstm_jax.tasks.synthetic", "lstm_jax.tasks.imdb"]


class Batch(NamedTuple):
    """One batch; the leading axis of every array is the batch axis (sharded over devices)."""

    x: jax.Array  # (B, T, D) float or (B, T) int32 symbols
    y: jax.Array  # (B,), (B, K) or (B, T)
    mask: jax.Array | None = None  # (B, T) bool, True on valid steps


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Static description of a task (everything the model and the reports need).

    Attributes:
      name: registry name.
      seq_len: the task's length parameter T as the user gave it.
      max_len: the time axis of its batches (≥ seq_len: copy adds 20 steps, variable-length tasks
        pad to their longest sequence).
      input_kind: ``"dense"`` (x is float ``(B, T, in_features)``) or ``"symbols"`` (x is int
        ``(B, T)`` in ``[0, in_features)``, embedded by the model).
      in_features: feature width or vocabulary size.
      out_features: output width (1 for regression, the number of classes for classification).
      head: ``"last"`` (one output per sequence) or ``"per_step"``.
      readout: for ``head="last"``: ``"last"`` valid state or masked ``"mean"`` over valid steps.
      loss_name: ``"mse"`` or ``"xent"`` (what the loss is, for reports).
      baseline: the loss of the best input-ignoring (memoryless) predictor.
      baseline_note: how ``baseline`` is derived, with the paper it comes from.
      metric_baselines: chance levels of other metrics (e.g. ``{"accuracy": 0.25}``).
    """

    name: str
    seq_len: int
    max_len: int
    input_kind: str
    in_features: int
    out_features: int
    head: str
    readout: str
    loss_name: str
    baseline: float
    baseline_note: str
    metric_baselines: dict[str, float] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        check_choice("input_kind", self.input_kind, INPUT_KINDS)
        check_choice("head", self.head, HEADS)
        check_choice("readout", self.readout, READOUTS)


class Task:
    """Base class: subclasses set ``self.spec`` and implement ``sample``, ``loss``, ``metrics``."""

    spec: TaskSpec
    # Length buckets: None, or static lengths the training step cuts its batch to; the batch at
    # ``step`` then belongs to bucket ``train_bucket(step, B)`` (steps beyond that length are
    # padding in every row of the batch).
    bucket_lengths: tuple[int, ...] | None = None

    def train_bucket(self, step: jax.Array, batch_size: int) -> jax.Array:
        """Index into :attr:`bucket_lengths` of the batch at ``step`` (a function of ``step``
        only, never of the data key, so it is the same for every seed)."""
        raise NotImplementedError

    def device_data(self) -> Any:
        """Arrays to place on the devices once (None for synthetic tasks)."""
        return None

    def sample(self, key: jax.Array, batch_size: int) -> Batch:
        """A fresh batch drawn from ``key`` (synthetic tasks)."""
        raise NotImplementedError

    def train_batch(self, data: Any, key: jax.Array, step: jax.Array, batch_size: int) -> Batch:
        """The training batch at ``step``: a pure function of ``(data, key, step)``."""
        return self.sample(jax.random.fold_in(key, step), batch_size)

    def eval_set(self, data: Any, key: jax.Array, size: int, split: str = "validation") -> Batch:
        """A fixed held-out set of ``split`` (``"validation"`` or ``"test"``). A synthetic task
        draws it from ``key`` (the caller gives each split its own key stream); a data-backed
        task returns rows of its own split."""
        return self.sample(key, size)

    def split_info(self) -> dict:
        """How the train/validation/test splits are formed (recorded in a run's summary)."""
        return {"train": "fold_in(data key of seed i, step)",
                "validation": "fold_in(key(eval_seed), 3)", "test": "fold_in(key(eval_seed), 4)"}

    def loss(self, outputs: jax.Array, batch: Batch) -> jax.Array:
        raise NotImplementedError

    def metrics(self, outputs: jax.Array, batch: Batch) -> dict[str, jax.Array]:
        return {"loss": self.loss(outputs, batch)}


_REGISTRY: dict[str, Callable[..., Task]] = {}
_loaded = False


def register_task(name: str):
    """Decorator: ``@register_task("adding")`` on a factory ``(seq_len, **options) -> Task``."""

    def deco(factory):
        _REGISTRY[name] = factory
        return factory

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in TASK_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:  # a real missing dependency inside the module
                raise
    _loaded = True


def task_names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def make_task(name: str, seq_len: int, **options) -> Task:
    """Build a registered task; a :class:`UserError` for unknown names or unusable lengths."""
    _load()
    check_choice("task", name, sorted(_REGISTRY))
    if isinstance(seq_len, bool) or not isinstance(seq_len, int):
        raise UserError(f"seq_len={seq_len!r} must be an integer")
    return _REGISTRY[name](seq_len, **options)
