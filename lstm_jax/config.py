"""The run configuration: one typed, printable, JSON round-trippable dataclass.

``TrainConfig`` is what ``DIR/config.json`` holds and what a checkpoint is checked against on
``--resume``: every field except those in :data:`RESUME_MAY_CHANGE` must match.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

from lstm_jax.cells import ARCHS, INDRNN_INITS, INPUT_INITS, RECURRENT_INITS, CellConfig, cell_config_for
from lstm_jax.errors import UserError, check_choice, check_positive
from lstm_jax.recurrence import IMPLS, MATMUL_DTYPES

OPTIMIZERS = ("adam", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine")
READOUTS = ("task", "last", "mean", "max")
EMBED_INITS = ("random", "ppmi-svd")  # see lstm_jax.data.embeddings

DATA_TASKS = ("imdb",)  # tasks that take the data options below
DATA_TRUNCATE = ("last", "first")
VAL_SPLITS = ("review", "movie")  # validation split of IMDB, see lstm_jax.tasks.imdb
_DATA_DEFAULTS = {"data": None, "vocab_size": 20_000, "truncate": "last", "buckets": 1,
                  "val_size": None, "val_seed": 0, "val_split": "review"}

# Fields a resumed run may change without changing what it computes.
RESUME_MAY_CHANGE = frozenset({"steps"})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run (and so its results, bit for bit on CPU).

    Model: ``arch``, ``hidden``, ``layers``, the cell's init options (see
    :class:`lstm_jax.cells.CellConfig`), ``embed_dim`` (symbol tasks), ``readout`` (``"task"``
    uses the task's default), ``dropout`` (on what the head reads), ``input_dropout`` (on what
    the recurrence reads), ``bidirectional`` (a second recurrence reads each sequence backwards;
    see :mod:`lstm_jax.model`), ``unroll``/``remat``,
    ``impl`` (the recurrence's backward pass: ``"fused"``, the hand-written one of
    :mod:`lstm_jax.fused`, or ``"scan"``, ``jax.grad`` of the plain scan; same numbers to float
    rounding), ``matmul_dtype`` (``"float32"``, or ``"bfloat16"``: mixed precision in the fused
    recurrence's forward and per-step products, everything else float32; see
    :func:`lstm_jax.fused.fused_layer`).
    Optimisation: ``optimizer`` (adam, rmsprop, sgd with ``momentum``), ``lr`` (times
    ``embed_lr_scale`` for the embedding table of symbol inputs, 0 freezing it, and times
    ``recurrent_lr_scale`` for the cells' recurrent parameters, e.g. expRNN's skew-symmetric
    generator, which its authors train at a tenth of the rate), ``clip`` (global
    norm, Pascanu et al. 2013; None = off), ``warmup`` steps of linear warm-up, ``schedule``
    (constant, or cosine decay to 0 at ``steps``), ``steps``, ``batch`` (global, split over
    devices). Seeds: ``seeds`` independent models trained in one program with seeds
    ``seed, seed+1, ...``; the held-out set is drawn from ``eval_seed`` (the same for all seeds).
    Logging: ``eval_every``, ``eval_size``, ``probe_every`` (0 = off), ``checkpoint_every``,
    ``keep_checkpoints``.
    Data (``--task imdb`` only; see :mod:`lstm_jax.tasks.imdb`): ``data`` the archive path (None:
    ``$LSTM_JAX_IMDB`` or the default path), ``vocab_size``, ``truncate`` (keep each review's
    ``"last"`` or ``"first"`` ``seq_len`` tokens), ``buckets`` (train batches from K length
    buckets, each cut to its longest review; 1 = off; see :mod:`lstm_jax.tasks.imdb`),
    ``embed_init`` (``"random"`` or ``"ppmi-svd"``: the embedding starts from word vectors of
    the train and unlabelled reviews, see :mod:`lstm_jax.data.embeddings`), ``val_size`` reviews
    held out of the train split as the validation split (None: a fifth, 5,000 of 25,000;
    per-class quotas, drawn from ``val_seed``), ``val_split`` (``"review"``: reviews stratified
    by label; ``"movie"``: whole movies, so validation shares no movie with train, as test does
    not). Every metric during training is on the validation split; the test split is scored
    afterwards (:mod:`lstm_jax.evaluate`).
    """

    task: str = "adding"
    seq_len: int = 100
    arch: str = "lstm"
    hidden: int = 128
    layers: int = 1
    forget_bias: float = 1.0
    chrono: float | None = None
    recurrent_init: str = "orthogonal"
    recurrent_scale: float = 1.0
    gru_reset_after: bool = True
    indrnn_init: str = "uniform"
    input_init: str = "lecun"
    embed_dim: int = 32
    embed_init: str = "random"
    embed_lr_scale: float = 1.0
    recurrent_lr_scale: float = 1.0
    readout: str = "task"
    dropout: float = 0.0
    input_dropout: float = 0.0
    unroll: int = 1
    remat: bool = False
    impl: str = "fused"
    matmul_dtype: str = "float32"
    bidirectional: bool = False
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    clip: float | None = 1.0
    warmup: int = 0
    schedule: str = "constant"
    steps: int = 1000
    batch: int = 64
    seeds: int = 1
    seed: int = 0
    eval_seed: int = 1_000_003
    eval_every: int = 100
    eval_size: int = 512
    probe_every: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    data: str | None = None
    vocab_size: int = 20_000
    truncate: str = "last"
    buckets: int = 1
    val_size: int | None = None
    val_seed: int = 0
    val_split: str = "review"

    def __post_init__(self):
        from lstm_jax.tasks import task_names

        check_choice("task", self.task, task_names())
        check_choice("arch", self.arch, ARCHS)
        check_choice("recurrent_init", self.recurrent_init, RECURRENT_INITS)
        check_choice("indrnn_init", self.indrnn_init, INDRNN_INITS)
        check_choice("input_init", self.input_init, INPUT_INITS)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("readout", self.readout, READOUTS)
        check_choice("impl", self.impl, IMPLS)
        check_choice("matmul_dtype", self.matmul_dtype, MATMUL_DTYPES)
        if self.matmul_dtype != "float32" and self.impl != "fused":
            raise UserError(f"matmul_dtype={self.matmul_dtype!r} needs impl='fused'; "
                            f"got impl={self.impl!r}")
        if self.matmul_dtype != "float32" and self.cell().kernel().fused is None:
            raise UserError(f"matmul_dtype={self.matmul_dtype!r} needs a cell with a fused "
                            f"recurrence; arch={self.arch} (gru_reset_after="
                            f"{self.gru_reset_after}) always runs the float32 scan")
        check_choice("embed_init", self.embed_init, EMBED_INITS)
        for f, mx in (("seq_len", 1_000_000), ("hidden", 65536), ("layers", 64),
                      ("embed_dim", 65536), ("unroll", 1024), ("steps", 10**9),
                      ("batch", 2**20), ("seeds", 1024), ("eval_every", 10**9),
                      ("eval_size", 2**22), ("checkpoint_every", 10**9),
                      ("keep_checkpoints", 1000)):
            check_positive(f, getattr(self, f), maximum=mx)
        for f in ("seed", "eval_seed", "warmup", "probe_every"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise UserError(f"{f}={v!r} must be an integer ≥ 0")
        # PRNG seeds are uint32: a larger one would wrap round and repeat seed 0's models
        if self.seed + self.seeds > 2**32:
            raise UserError(f"seed={self.seed} with seeds={self.seeds} runs past 2^32 − 1, the "
                            "largest seed; seeds are uint32 and would wrap round to 0")
        if self.eval_seed >= 2**32:
            raise UserError(f"eval_seed={self.eval_seed} must be < 2^32 (seeds are uint32)")
        _finite("lr", self.lr, positive=True)
        _finite("momentum", self.momentum)
        if not 0 <= self.momentum < 1:
            raise UserError(f"momentum={self.momentum!r} must be in [0, 1)")
        if self.clip is not None:
            _finite("clip", self.clip, positive=True)
        _finite("embed_lr_scale", self.embed_lr_scale)
        if self.embed_lr_scale < 0:
            raise UserError(f"embed_lr_scale={self.embed_lr_scale!r} must be ≥ 0 (0 freezes the "
                            "embedding)")
        _finite("recurrent_lr_scale", self.recurrent_lr_scale)
        if self.recurrent_lr_scale < 0:
            raise UserError(f"recurrent_lr_scale={self.recurrent_lr_scale!r} must be ≥ 0 (0 "
                            "freezes the recurrent parameters)")
        for name in ("dropout", "input_dropout"):
            rate = getattr(self, name)
            _finite(name, rate)
            if not 0 <= rate < 1:
                raise UserError(f"{name}={rate!r} must be in [0, 1)")
        if self.warmup >= self.steps:
            raise UserError(f"warmup={self.warmup} must be smaller than steps={self.steps}")
        if not isinstance(self.bidirectional, bool):
            raise UserError(f"bidirectional={self.bidirectional!r} must be true or false")
        self.cell()  # validates the cell options
        check_choice("truncate", self.truncate, DATA_TRUNCATE)
        check_positive("vocab_size", self.vocab_size, maximum=10**7)
        check_positive("buckets", self.buckets, maximum=1024)
        if self.val_size is not None:
            check_positive("val_size", self.val_size, maximum=10**7)
        check_choice("val_split", self.val_split, VAL_SPLITS)
        if isinstance(self.val_seed, bool) or not isinstance(self.val_seed, int) or self.val_seed < 0:
            raise UserError(f"val_seed={self.val_seed!r} must be an integer ≥ 0")
        if self.data is not None and not isinstance(self.data, str):
            raise UserError(f"data={self.data!r} must be a path (string) or None")
        if self.task not in DATA_TASKS and self.task_options(all_tasks=True) != _DATA_DEFAULTS:
            raise UserError(f"data/vocab_size/truncate/buckets/val_size/val_seed/val_split apply to "
                            f"--task {'/'.join(DATA_TASKS)} only, not task={self.task!r}")
        if self.task not in DATA_TASKS and self.embed_init != "random":
            raise UserError(f"embed_init={self.embed_init!r} applies to --task "
                            f"{'/'.join(DATA_TASKS)} only (word vectors of its corpus), not "
                            f"task={self.task!r}")

    def task_options(self, all_tasks: bool = False) -> dict[str, Any]:
        """Keyword options for ``make_task`` (``{}`` for tasks without data options)."""
        if self.task not in DATA_TASKS and not all_tasks:
            return {}
        return {"data": self.data, "vocab_size": self.vocab_size, "truncate": self.truncate,
                "buckets": self.buckets, "val_size": self.val_size, "val_seed": self.val_seed,
                "val_split": self.val_split}

    def cell(self) -> CellConfig:
        """The cell's config; a field this arch does not read keeps its default (a command over
        several archs shares its flags; see :func:`lstm_jax.cli.common.check_cell_flags`)."""
        return cell_config_for(self.arch, hidden=self.hidden, forget_bias=self.forget_bias,
                               chrono_tmax=self.chrono, recurrent_init=self.recurrent_init,
                               recurrent_scale=self.recurrent_scale,
                               gru_reset_after=self.gru_reset_after,
                               indrnn_init=self.indrnn_init, input_init=self.input_init)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        if not isinstance(d, dict):
            raise UserError(f"a config must be a JSON object of fields; got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown config fields {unknown}; known fields: {sorted(known)}")
        if "impl" not in d:  # written before `impl` existed, when training always used the scan
            d = {**d, "impl": "scan"}
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"config is not valid JSON ({e})") from None
        return cls.from_dict(d)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def resume_differences(self, other: TrainConfig) -> dict[str, tuple[Any, Any]]:
        """Fields that differ from ``other`` and would change what a resumed run computes."""
        may_change = set(RESUME_MAY_CHANGE)
        if self.schedule != "constant":
            may_change.discard("steps")  # the cosine schedule's length is part of the run
        return {f: (getattr(other, f), getattr(self, f)) for f in self.to_dict()
                if f not in may_change and getattr(self, f) != getattr(other, f)}

    def __str__(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.to_dict().items())


def _finite(field: str, value, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UserError(f"{field}={value!r} must be a finite number")
    if positive and value <= 0:
        raise UserError(f"{field}={value!r} must be > 0")
