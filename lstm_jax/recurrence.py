"""The recurrence: one ``jax.lax.scan`` that every model, training step and probe goes through.

``scan_layer`` runs one cell over a sequence:

* the input projection ``x_t @ w_ih + bias`` for all T steps is one ``(T·B, D) × (D, G·H)`` matmul
  before the loop, so the scan body does one ``(B, H) × (H, G·H)`` matmul per step;
* a mask marks valid steps: a padded step leaves the carry unchanged, so a padded batch gives
  exactly the unpadded results and the final carry is the state at each row's last valid step;
* ``perturb`` adds a tensor to the carry *after* each step (``carry_t ← carry_t + ε_t``). With
  ``ε = 0`` nothing changes, but ``∂L/∂ε_t = ∂L/∂carry_t`` through every path from step t on:
  this is how :mod:`lstm_jax.probes` gets ∂L/∂h_t for every t, and vᵀ∂C_T/∂C_t for every t,
  in one backward pass;
* ``unroll`` and ``remat`` (``jax.checkpoint`` of the step: the backward pass recomputes the
  gates from the saved carries) trade speed and memory on long sequences.

Nothing loops over time in Python, so the compiled program does not grow with T.

``Recurrence`` is the Flax NNX module: a stack of cells with this scan between them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from lstm_jax.cells import CellConfig, make_cell, step_fn
from lstm_jax.errors import UserError, check_choice, check_positive

Carry = dict[str, jax.Array]
IMPLS = ("scan", "fused")
MATMUL_DTYPES = ("float32", "bfloat16")


class LayerResult(NamedTuple):
    """What ``scan_layer`` returns; every sequence is time-major ``(T, B, H)``."""

    final_carry: Carry  # {"h": (B, H)[, "c": (B, H)]}
    sequences: dict[str, jax.Array]  # "h" always; carries ("c") and gates on request


def scan_layer(step, params: dict, xs: jax.Array, mask: jax.Array | None, carry0: Carry, *,
               perturb: Carry | None = None, collect: Sequence[str] = (), unroll: int = 1,
               remat: bool = False, impl: str = "scan", matmul_dtype: str = "float32") -> LayerResult:
    """Run one recurrent layer over a time-major sequence.

    Args:
      step: a cell's pure step ``(params, carry, xw_t) -> (carry, gates)``: a
        :class:`~lstm_jax.cells.CellStep` (``step_fn(config)``, which may carry a fused fast
        path) or any plain function of that signature.
      params: the cell's parameters (``cell.params()``).
      xs: ``(T, B, D)`` inputs.
      mask: ``(T, B)`` bool, True on valid steps, or None (all valid).
      carry0: initial carry, ``{"h": (B, H)[, "c": (B, H)]}``.
      perturb: optional ``{name: (T, B, H)}`` added to the carry after each step (see module doc).
      collect: extra per-step sequences to return: carry names (``"c"``) and gate names
        (``"f"``, ``"i"``, ``"o"``, ``"r"``, ``"z"``).
      unroll: ``lax.scan``'s unroll factor.
      remat: rematerialise the step in the backward pass (``jax.checkpoint``).
      impl: ``"scan"`` (this function's ``lax.scan``, differentiated by JAX) or ``"fused"``
        (:func:`lstm_jax.fused.fused_layer`: same outputs and gradients, a hand-written backward
        pass; with ``remat`` it checkpoints in √T segments). ``"fused"`` is used only when no
        ``perturb`` and no ``collect`` are requested and the cell offers a fused path; otherwise
        this plain scan runs and ``jax.grad`` differentiates it (the probes call the fused
        forward loop directly, :mod:`lstm_jax.probes.layer`). A cell with a whole-sequence
        fast path (``step.sequence``, e.g. the LRU's parallel scan) uses it whenever no
        ``perturb`` and no ``collect`` are requested, whatever ``impl`` (``unroll`` and
        ``remat`` are then the cell's business).
      matmul_dtype: ``"float32"`` (products in the inputs' dtype) or ``"bfloat16"`` (mixed
        precision: the input projection and the per-step products take bfloat16 operands and
        accumulate in float32, all else stays float32; see :func:`lstm_jax.fused.fused_layer`).
        ``"bfloat16"`` needs the fused path; the probes' and ``collect``'s plain scan always
        multiplies in float32.

    Returns:
      ``LayerResult(final_carry, sequences)``; ``sequences["h"]`` is ``(T, B, H)``.
    """
    check_choice("impl", impl, IMPLS)
    check_choice("matmul_dtype", matmul_dtype, MATMUL_DTYPES)
    if impl == "fused" and not perturb and not collect:
        from lstm_jax.fused import fused_arch, fused_layer
        if fused_arch(step) is not None:
            mm = None if matmul_dtype == "float32" else matmul_dtype
            return LayerResult(*fused_layer(step, params, xs, mask, carry0, unroll=unroll,
                                            remat=remat, matmul_dtype=mm))
        if matmul_dtype != "float32":
            raise UserError(f"matmul_dtype={matmul_dtype!r} needs a cell with a fused path "
                            "(tanh RNN, LSTM, reset-after GRU); use matmul_dtype='float32'")
    elif matmul_dtype != "float32" and not perturb and not collect:
        raise UserError(f"matmul_dtype={matmul_dtype!r} needs impl='fused'; "
                        f"got impl={impl!r}")
    xw = jnp.einsum("tbd,dg->tbg", xs, params["w_ih"]) + params["bias"]
    T = xs.shape[0]
    if mask is None:
        mask = jnp.ones(xs.shape[:2], bool)
    sequence = getattr(step, "sequence", None)
    if sequence is not None and not perturb and not collect:
        return LayerResult(*sequence(params, xw, mask, carry0))
    perturb = {} if perturb is None else perturb

    def body(carry, inputs):
        xw_t, m_t, eps_t = inputs
        new, gates = step(params, carry, xw_t)
        m = m_t[:, None]
        new = {k: jnp.where(m, new[k], carry[k]) for k in carry}
        new = {k: v + eps_t[k] if k in eps_t else v for k, v in new.items()}
        available = {**new, **gates}
        out = {"h": new["h"], **{name: available[name] for name in collect}}
        return new, out

    if remat:
        body = jax.checkpoint(body)
    final, sequences = jax.lax.scan(body, carry0, (xw, mask, perturb), length=T, unroll=unroll)
    return LayerResult(final, sequences)


class StackResult(NamedTuple):
    """What ``Recurrence.__call__`` returns (batch-major)."""

    outputs: jax.Array  # (B, T, H): the top layer's h_t
    final_carry: list[Carry]  # per layer, the state at each row's last valid step
    sequences: list[dict[str, jax.Array]]  # per layer, {name: (B, T, H)} for "h" and `collect`


def check_inputs(x: jax.Array, mask: jax.Array | None, in_features: int) -> None:
    if x.ndim != 3:
        raise UserError(f"x must have shape (batch, time, features); got shape {tuple(x.shape)}")
    if x.shape[-1] != in_features:
        raise UserError(f"x has {x.shape[-1]} features per step but the layer was built for "
                        f"in_features={in_features}")
    if x.shape[1] < 1:
        raise UserError("x must have at least one time step")
    if mask is not None and tuple(mask.shape) != tuple(x.shape[:2]):
        raise UserError(f"mask must have shape (batch, time)={tuple(x.shape[:2])}; "
                        f"got {tuple(mask.shape)}")


class Recurrence(nnx.Module):
    """A stack of ``layers`` recurrent cells of one architecture, run with :func:`scan_layer`.

    ``x`` is ``(B, T, D)``; layer ``l > 0`` reads layer ``l−1``'s hidden states.
    ``impl="fused"`` (default) trains through :mod:`lstm_jax.fused` (same outputs and gradients
    as ``jax.grad`` of the scan, faster at 11 of the 12 benchmark shapes and never slower; see
    ``benchmarks/README.md``); calls with ``perturb``/``collect`` (the probes) and steps the
    fused path does not cover always run the plain scan.
    """

    def __init__(self, in_features: int, config: CellConfig, layers: int = 1, *,
                 rngs: nnx.Rngs, unroll: int = 1, remat: bool = False, dtype=jnp.float32,
                 impl: str = "fused", matmul_dtype: str = "float32"):
        check_positive("layers", layers, maximum=64)
        check_choice("impl", impl, IMPLS)
        check_choice("matmul_dtype", matmul_dtype, MATMUL_DTYPES)
        if matmul_dtype != "float32" and impl != "fused":
            raise UserError(f"matmul_dtype={matmul_dtype!r} needs impl='fused'; got impl={impl!r}")
        self.impl = impl
        self.matmul_dtype = matmul_dtype
        check_positive("unroll", unroll, maximum=1024)
        self.config = config
        self.in_features = in_features
        self.unroll = unroll
        self.remat = remat
        self.cells = nnx.List([
            make_cell(in_features if i == 0 else config.hidden, config, rngs=rngs, dtype=dtype,
                      last_layer=i == layers - 1)
            for i in range(layers)
        ])

    @property
    def layers(self) -> int:
        return len(self.cells)

    def init_carry(self, batch: int, dtype=jnp.float32) -> list[Carry]:
        return [cell.init_carry(batch, dtype) for cell in self.cells]

    @property
    def constrained(self) -> bool:
        """Whether any cell has a parameter constraint (:meth:`RecurrentCell.project`)."""
        return any(type(c).constrained() for c in self.cells)

    def project(self) -> None:
        """Each cell's :meth:`~lstm_jax.cells.base.RecurrentCell.project`, in place."""
        for c in self.cells:
            c.project()

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, *,
                 initial_carry: list[Carry] | None = None,
                 perturb: Sequence[Carry | None] | None = None,
                 collect: Sequence[str] = ()) -> StackResult:
        """Run the stack.

        Args:
          x: ``(B, T, D)`` inputs.
          mask: ``(B, T)`` bool, True on valid steps (padding may sit anywhere; padded steps
            leave the carry unchanged).
          initial_carry: per layer, default zeros.
          perturb: per layer, None or ``{name: (B, T, H)}`` added to the carry after each step.
          collect: per-step carries/gates to return besides ``h`` (e.g. ``("c", "f")``).

        Called outside any JAX transformation, the whole stack runs as one compiled program
        (cached per shape and config) rather than op by op.
        """
        check_inputs(x, mask, self.in_features)
        if _concrete((nnx.state(self), x, mask, initial_carry, perturb)):
            return _run_compiled(self, x, mask, initial_carry, perturb, tuple(collect))
        return self._run(x, mask, initial_carry, perturb, collect)

    def _run(self, x, mask, initial_carry, perturb, collect) -> StackResult:
        B = x.shape[0]
        carries = self.init_carry(B, x.dtype) if initial_carry is None else initial_carry
        perturb = [None] * self.layers if perturb is None else list(perturb)
        if len(perturb) != self.layers:
            raise UserError(f"perturb has {len(perturb)} entries; the stack has {self.layers} layers")
        step = step_fn(self.config)
        xs = jnp.swapaxes(x, 0, 1)
        mask_t = None if mask is None else jnp.swapaxes(mask.astype(bool), 0, 1)
        finals, sequences = [], []
        for cell, carry0, eps in zip(self.cells, carries, perturb, strict=True):
            eps_t = None if eps is None else {k: jnp.swapaxes(v, 0, 1) for k, v in eps.items()}
            result = scan_layer(step, cell.params(), xs, mask_t, carry0, perturb=eps_t,
                                collect=collect, unroll=self.unroll, remat=self.remat,
                                impl=self.impl, matmul_dtype=self.matmul_dtype)
            xs = result.sequences["h"]
            finals.append(result.final_carry)
            sequences.append({k: jnp.swapaxes(v, 0, 1) for k, v in result.sequences.items()})
        return StackResult(jnp.swapaxes(xs, 0, 1), finals, sequences)


def _concrete(tree) -> bool:
    """True when no leaf of ``tree`` is being traced (a plain eager call)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


# Eager calls compile once per shape and config: op by op, every call would dispatch (and at
# first compile) each einsum, swapaxes and the scan separately.
_run_compiled = nnx.jit(lambda model, *args: model._run(*args), static_argnums=(5,))
