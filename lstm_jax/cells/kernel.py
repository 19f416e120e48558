"""A cell's pure maths: :class:`CellStep` (the hashable one-step update) and its optional fast
paths, the fused forward/backward factors (:class:`FusedPath`, used by :mod:`lstm_jax.fused`) and
the per-step Jacobian factors (:class:`JacobianPath`, used by :mod:`lstm_jax.probes`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax


class StepResiduals(NamedTuple):
    """What a fused forward loop saves of each step, stacked over steps (leading axis T).

    Fields a cell does not use are None."""

    big: jax.Array | None  # (T, B, G·H) activated gates, e.g. LSTM [i, f, g, o], GRU [r, z, n]
    small: tuple  # per-step (T, B, H) residuals, e.g. LSTM (c_{t−1},), GRU (u,), RNN ()
    h: jax.Array | None  # (T, B, H): the h the backward step reads (FusedPath.h_residual)
    c_new: jax.Array | None  # (T, B, H): the cell state after the step (cells with one)
    mask: jax.Array | None  # (T, B) bool


class StepJacobian(NamedTuple):
    """Factors of ``∂carry_t/∂carry_{t−1}`` (any leading axes, e.g. ``(T, B, ·)``); the cell's
    ``JacobianPath.pullback`` reads them."""

    scale: jax.Array  # (…, G·H): multiplies the cotangent tiled over the G blocks, before Wᵀ
    direct: jax.Array | None  # (…, H): e.g. LSTM f (C path), GRU z (h path); RNN None
    h_to_c: jax.Array | None  # (…, H): e.g. LSTM o(1 − tanh²C_t), how dh_t reaches C_t
    mask: jax.Array | None  # (…,) bool, False on padded steps


@dataclasses.dataclass(frozen=True)
class FusedPath:
    """A cell's factors for the hand-written backward pass of :mod:`lstm_jax.fused`.

    Attributes:
      forward: ``(xw_t, h, c, w_hh, extra, mm) -> (h', c' or None, big or None, small)``: one
        step; ``big (B, G·H)`` is written over ``xw_t``'s row in place, ``small`` a tuple of
        ``(B, H)`` residuals (a cell with a cell state puts ``c_{t−1}`` first). ``extra`` is the
        tuple of the ``extra`` parameters' values, ``mm`` the matmul dtype (:func:`matmul`).
      backward: ``(big, small, h_t, c_new, dh, dc, extra) -> (dz_x, dz_h or None, dh_extra or
        None, dc_prev or None)``: gradients w.r.t. ``xw_t`` and ``h W_hh`` (None: the same), the
        direct h→h' path and the previous cell state.
      h_residual: which h the backward step reads as ``h_t``: ``"new"`` (the step's output),
        ``"prev"`` (its input) or None.
      extra: names of the cell's ``(H,)`` parameters besides ``w_ih, w_hh, bias`` that the step
        reads (GRU ``("b_hn",)``, the peephole LSTM's ``("p_i", "p_f", "p_o")``); ``()``: none.
      extra_grad: ``(dz_x, dz_h, small, cN) -> tuple of (H,)``, the gradients of ``extra``
        from every step at once: ``dz_x, dz_h (S, B, G·H)``, ``small``'s stacked ``(S, B, H)``
        residuals and the block's final cell state ``cN (B, H)`` (None without one; the state
        after step t < S−1 is ``small[0][t+1]``). Like the weight gradients, a reduction after
        the backward loop, not a per-step carry.
      gate_blocks: ``((gate, block), …)``: which block of ``big`` holds each gate.
    """

    forward: Callable
    backward: Callable
    h_residual: str | None = None
    extra: tuple[str, ...] = ()
    extra_grad: Callable | None = None
    gate_blocks: tuple = ()


@dataclasses.dataclass(frozen=True)
class JacobianPath:
    """A cell's per-step Jacobian factors for the probes (:mod:`lstm_jax.probes.step_jacobian`).

    Attributes:
      factors: ``(StepResiduals) -> StepJacobian``, every step at once (time-vectorised).
      pullback: ``(w_hh, jac_t, v) -> vᵀ ∂carry_t/∂carry_{t−1}`` for one step (padding
        handled by the caller); needs the fused forward loop (``FusedPath``) for its residuals.
    """

    factors: Callable
    pullback: Callable


@dataclasses.dataclass(frozen=True)
class CellStep:
    """A cell's pure maths for one configuration: callable as ``step(params, carry, xw_t)``.

    Hashable (a static ``jax.jit`` argument); equal for equal configurations.
    """

    fn: Callable
    carry_names: tuple[str, ...] = ("h",)
    gate_names: tuple[str, ...] = ()
    forget_gate: str | None = None
    fused: FusedPath | None = None
    jacobian: JacobianPath | None = None
    sequence: Callable | None = None

    def __call__(self, params, carry, xw):
        return self.fn(params, carry, xw)

    @property
    def has_cell_state(self) -> bool:
        return "c" in self.carry_names


def fused_path(step) -> FusedPath | None:
    """The fused fast path of ``step`` (a :class:`CellStep`), None for any other callable."""
    return getattr(step, "fused", None)


def jacobian_path(step) -> JacobianPath | None:
    """The probes' fast path of ``step``; None unless the step has a fused forward loop too."""
    return getattr(step, "jacobian", None) if fused_path(step) is not None else None
