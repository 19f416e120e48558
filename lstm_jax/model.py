"""The sequence model: input layer → recurrence → head.

``x`` ``(B, T, D)`` dense features go straight into the recurrence; ``(B, T)`` int symbols are
looked up in an ``nnx.Embed`` first. The recurrence is :class:`lstm_jax.recurrence.Recurrence`
(the one scan every probe also goes through). The head is a dense layer applied

* per step (``head="per_step"``): outputs ``(B, T, K)``, or
* once per sequence (``head="last"``): outputs ``(B, K)`` from the readout — the hidden state
  at each row's last *valid* step (``readout="last"``; with a mask this is the scan's final carry,
  since padded steps keep the carry), the mean of ``h_t`` over valid steps (``"mean"``), or
  their element-wise maximum (``"max"``, max-pooling over time as in Collobert et al. 2011 and
  Conneau et al. 2017).

``bidirectional=True`` adds a second recurrence that reads each sequence backwards (Schuster &
Paliwal 1997; Graves & Schmidhuber 2005): row b's valid steps ``0..n_b−1`` in the order
``n_b−1, …, 0`` (the mask must mark a prefix of each row as valid, as right-padded batches do).
Its states are put back in forward order and concatenated with the forward ones, so the head
reads ``2H`` features: per step ``[h→_t, h←_t]``, for ``"last"`` the forward state at the last
valid step and the backward state at the first. The probes (``perturb``/``collect``, and the
:class:`StackResult` that :meth:`SequenceModel.run` returns) see the forward direction.

Dropout (optional) is applied to what the head reads (``dropout``) and to what the recurrence
reads (``input_dropout``: the embedded words, elementwise, as the input dropout of Zaremba et al.
2014 and Gal & Ghahramani 2016), with an explicit key (the head uses ``dropout_key``, the inputs
``fold_in(dropout_key, 1)``), so a run stays a pure function of its seeds and a resumed run
matches an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from lstm_jax.cells import CellConfig
from lstm_jax.errors import UserError, check_choice
from lstm_jax.recurrence import Recurrence
from lstm_jax.tasks.registry import HEADS, INPUT_KINDS, READOUTS, TaskSpec


class SequenceModel(nnx.Module):
    """Embedding or dense input → ``Recurrence`` (``layers`` cells of ``cell.arch``) → head.

    Args:
      input_kind: ``"dense"`` or ``"symbols"``.
      in_features: input width D (dense) or vocabulary size (symbols).
      out_features: head width K.
      cell: the recurrent layer's config.
      layers: stacked recurrent layers.
      head: ``"last"`` or ``"per_step"``.
      readout: ``"last"``, ``"mean"`` or ``"max"`` (``head="last"`` only).
      embed_dim: embedding width for symbol inputs.
      embed_table: ``(in_features, embed_dim)`` initial embedding (e.g. pre-trained word
        vectors); None: ``nnx.Embed``'s default random initialiser.
      dropout: rate on the head's input (0 = off).
      input_dropout: rate on the recurrence's input (the embedded symbols; 0 = off).
      impl: the recurrence's backward pass, ``"fused"`` or ``"scan"`` (see ``Recurrence``).
      matmul_dtype: ``"float32"`` or ``"bfloat16"`` (mixed precision, fused path only; see
        :func:`lstm_jax.fused.fused_layer`).
      bidirectional: add a recurrence over each sequence reversed (module doc).
    """

    def __init__(self, *, input_kind: str, in_features: int, out_features: int,
                 cell: CellConfig, layers: int = 1, head: str = "last", readout: str = "last",
                 embed_dim: int = 32, embed_table=None, dropout: float = 0.0,
                 input_dropout: float = 0.0, unroll: int = 1, remat: bool = False,
                 impl: str = "fused", matmul_dtype: str = "float32",
                 bidirectional: bool = False, rngs: nnx.Rngs):
        check_choice("input_kind", input_kind, INPUT_KINDS)
        check_choice("head", head, HEADS)
        check_choice("readout", readout, READOUTS)
        for name, rate in (("dropout", dropout), ("input_dropout", input_dropout)):
            if not 0 <= rate < 1:
                raise UserError(f"{name}={rate!r} must be in [0, 1)")
        self.input_kind, self.head_kind, self.readout = input_kind, head, readout
        self.dropout, self.input_dropout = float(dropout), float(input_dropout)
        if input_kind == "symbols":
            init = {}
            if embed_table is not None:
                table = jnp.asarray(embed_table, jnp.float32)
                if table.shape != (in_features, embed_dim):
                    raise UserError(f"embed_table has shape {table.shape}; expected "
                                    f"(in_features, embed_dim) = ({in_features}, {embed_dim})")
                init["embedding_init"] = lambda key, shape, dtype: table.astype(dtype)
            self.embed = nnx.Embed(in_features, embed_dim, rngs=rngs, **init)
            width = embed_dim
        else:
            self.embed = None
            width = in_features
        self.recurrence = Recurrence(width, cell, layers, rngs=rngs, unroll=unroll, remat=remat,
                                     impl=impl, matmul_dtype=matmul_dtype)
        self.backward_recurrence = (Recurrence(width, cell, layers, rngs=rngs, unroll=unroll,
                                               remat=remat, impl=impl, matmul_dtype=matmul_dtype)
                                    if bidirectional else None)
        self.head = nnx.Linear(cell.hidden * (2 if bidirectional else 1), out_features,
                               rngs=rngs)

    @property
    def bidirectional(self) -> bool:
        return self.backward_recurrence is not None

    @property
    def constrained(self) -> bool:
        """Whether a cell constrains its parameters (:meth:`RecurrentCell.project`)."""
        return self.recurrence.constrained

    def project(self) -> None:
        """Every cell's parameter constraint, in place (both directions)."""
        self.recurrence.project()
        if self.backward_recurrence is not None:
            self.backward_recurrence.project()

    @classmethod
    def for_task(cls, spec: TaskSpec, cell: CellConfig, *, layers: int = 1,
                 readout: str | None = None, embed_dim: int = 32, embed_table=None,
                 dropout: float = 0.0, input_dropout: float = 0.0, unroll: int = 1,
                 remat: bool = False, impl: str = "fused", matmul_dtype: str = "float32",
                 bidirectional: bool = False, rngs: nnx.Rngs) -> SequenceModel:
        """The model a task asks for (``readout=None`` keeps the task's default)."""
        return cls(input_kind=spec.input_kind, in_features=spec.in_features,
                   out_features=spec.out_features, cell=cell, layers=layers, head=spec.head,
                   readout=readout or spec.readout, embed_dim=embed_dim,
                   embed_table=embed_table, dropout=dropout, input_dropout=input_dropout,
                   unroll=unroll, remat=remat, impl=impl, matmul_dtype=matmul_dtype,
                   bidirectional=bidirectional,
                   rngs=rngs)

    def inputs(self, x: jax.Array) -> jax.Array:
        """``(B, T, D)`` floats the recurrence reads (embeds ``(B, T)`` int symbols)."""
        if self.embed is None:
            if not jnp.issubdtype(x.dtype, jnp.floating):
                raise UserError(f"dense inputs must be floating point; got dtype {x.dtype}")
            return x
        if x.ndim != 2 or not jnp.issubdtype(x.dtype, jnp.integer):
            raise UserError(f"symbol inputs must be (batch, time) integers; got shape "
                            f"{tuple(x.shape)} dtype {x.dtype}")
        return self.embed(x)

    def read(self, outputs: jax.Array, last: jax.Array, mask: jax.Array | None) -> jax.Array:
        """What the head reads from ``outputs`` ``(B, T, F)`` (the states per step) and ``last``
        ``(B, F)`` (the state at each row's last valid step): ``(B, T, F)`` per step, or
        ``(B, F)`` per sequence."""
        if self.head_kind == "per_step":
            return outputs
        if self.readout == "last":
            return last
        if self.readout == "max":
            if mask is None:
                return jnp.max(outputs, axis=1)
            valid = mask.astype(bool)[..., None]
            pooled = jnp.max(jnp.where(valid, outputs, -jnp.inf), axis=1)
            return jnp.where(jnp.any(valid, axis=1), pooled, 0.0)  # an empty row reads zeros
        if mask is None:
            return jnp.mean(outputs, axis=1)
        m = mask.astype(outputs.dtype)[..., None]
        return jnp.sum(outputs * m, axis=1) / jnp.maximum(jnp.sum(m, axis=1), 1.0)

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, *,
                 dropout_key: jax.Array | None = None,
                 perturb: Sequence[dict | None] | None = None,
                 collect: Sequence[str] = ()) -> jax.Array:
        """Outputs ``(B, K)`` (``head="last"``) or ``(B, T, K)`` (``head="per_step"``).

        ``dropout_key``: None disables dropout (evaluation). ``perturb``/``collect`` pass through
        to the recurrence (for probes); use :meth:`run` to get the recurrence's result too.
        """
        return self.run(x, mask, dropout_key=dropout_key, perturb=perturb, collect=collect)[0]

    def run(self, x, mask=None, *, dropout_key=None, perturb=None, collect=()):
        """``(outputs, StackResult)``: the head's outputs and everything the recurrence exposed."""
        inputs = self.inputs(x)
        if self.input_dropout > 0 and dropout_key is not None:
            inputs = _dropout(jax.random.fold_in(dropout_key, 1), self.input_dropout, inputs)
        return self.run_inputs(inputs, mask, dropout_key=dropout_key, perturb=perturb,
                               collect=collect)

    def run_inputs(self, inputs, mask=None, *, dropout_key=None, perturb=None, collect=()):
        """:meth:`run` from what the recurrence reads, ``inputs`` ``(B, T, D)`` (the embeddings
        of symbol inputs): differentiate it with respect to ``inputs`` for ∂L/∂e_t."""
        result = self.recurrence(inputs, mask, perturb=perturb, collect=collect)
        outputs, last = result.outputs, result.final_carry[-1]["h"]
        if self.backward_recurrence is not None:
            flip = reversal_index(mask, inputs.shape[0], inputs.shape[1])
            back = self.backward_recurrence(_take_steps(inputs, flip), mask)
            outputs = jnp.concatenate([outputs, _take_steps(back.outputs, flip)], axis=-1)
            last = jnp.concatenate([last, back.final_carry[-1]["h"]], axis=-1)
        features = self.read(outputs, last, mask)
        if self.dropout > 0 and dropout_key is not None:
            features = _dropout(dropout_key, self.dropout, features)
        return self.head(features), result


def reversal_index(mask: jax.Array | None, batch: int, steps: int) -> jax.Array:
    """``(B, T)`` int32: row b's valid steps in reverse order, each padded step reading itself.

    The j-th valid step of a row reads its (n_b − 1 − j)-th (``n_b`` = the row's valid steps), so
    a right-padded row's step t reads ``n_b − 1 − t``; padding may sit anywhere (left, holes).
    An involution."""
    t = jnp.arange(steps, dtype=jnp.int32)[None, :]
    if mask is None:
        return jnp.broadcast_to(steps - 1 - t, (batch, steps))
    valid = mask.astype(bool)
    n = jnp.sum(valid, axis=1, keepdims=True, dtype=jnp.int32)
    rank = jnp.cumsum(valid, axis=1, dtype=jnp.int32) - 1  # j at the j-th valid step
    by_rank = jnp.argsort(~valid, axis=1, stable=True).astype(jnp.int32)  # valid steps first
    mirror = jnp.take_along_axis(by_rank, jnp.clip(n - 1 - rank, 0, steps - 1), axis=1)
    return jnp.where(valid, mirror, t)


def _take_steps(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x`` ``(B, T, F)`` with row b's steps read in the order ``index[b]``."""
    return jnp.take_along_axis(x, index[..., None], axis=1)


def _dropout(key: jax.Array, rate: float, x: jax.Array) -> jax.Array:
    """Inverted dropout: zero each entry with probability ``rate``, scale the rest by 1/(1−rate)."""
    keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


def parameter_count(model_or_state) -> int:
    """Number of trainable scalars in a model (or a params ``nnx.State``)."""
    state = model_or_state if isinstance(model_or_state, nnx.State) else nnx.state(
        model_or_state, nnx.Param)
    return int(sum(p.size for p in jax.tree.leaves(state)))
