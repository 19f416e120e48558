"""The inputs a probe needs for one layer of a :class:`~lstm_jax.recurrence.Recurrence`.

A probe of layer ``l`` measures derivatives inside that layer's recurrence; the layers below only
supply its input sequence, the layers above only matter to a loss. :func:`layer_view` runs the
stack once and returns, time-major, what the sweeps of :mod:`lstm_jax.probes.sweep` consume.

For a cell that offers both fast paths (fused forward loop and Jacobian factors: the tanh RNN,
the LSTM, the reset-after GRU) it runs the forward loop of :mod:`lstm_jax.fused` (the
recurrence training uses by default) and turns that loop's residuals into each step's Jacobian
factors (:mod:`lstm_jax.probes.step_jacobian`), so a reverse sweep pulls probe vectors back with
one matmul per step instead of re-running every step under ``jax.vjp``. Any other step (e.g. the
reset-before GRU, a cell without fast paths) runs the plain
:func:`~lstm_jax.recurrence.scan_layer` and pulls back with
:func:`~lstm_jax.probes.sweep.vjp_pullback`. Both compute the same map; tests check each against
``jax.jacrev`` of the unrolled network.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from lstm_jax import fused
from lstm_jax.cells.kernel import jacobian_path
from lstm_jax.errors import UserError
from lstm_jax.probes.step_jacobian import carry_vjp, step_jacobians
from lstm_jax.probes.sweep import vjp_pullback
from lstm_jax.recurrence import Carry, scan_layer


class LayerView(NamedTuple):
    """One layer's forward pass, time-major. T steps, B rows, H units."""

    params: dict  # the layer's parameters (cell.params())
    xs: jax.Array  # (T, B, D) the layer's inputs
    xw: jax.Array  # (T, B, G·H) hoisted input projection x_t @ w_ih + bias
    mask: jax.Array  # (T, B) bool
    carry0: Carry  # {part: (B, H)}
    carries: Carry  # {part: (T, B, H)}: carry_t after step t
    carries_prev: Carry  # {part: (T, B, H)}: carry_{t−1} entering step t
    gates: dict  # {gate: (T, B, H)} as returned by the step
    pullback: Callable  # (pull_inputs[t], v {part: (B, H)}) -> vᵀ ∂carry_t/∂carry_{t−1}
    pull_inputs: Any  # pytree of per-step arguments of ``pullback``, leading axis T


def stack_params(model) -> list[dict]:
    """Per layer, the parameters as plain dicts of arrays (what the pure functions take)."""
    return [cell.params() for cell in model.cells]


def check_layer(model, layer: int) -> None:
    if not (isinstance(layer, int) and 0 <= layer < model.layers):
        raise UserError(f"layer={layer!r} is out of range; the model has {model.layers} layer(s), "
                        f"numbered 0..{model.layers - 1}")


def layer_view(step, gate_names, params_list: list[dict], x: jax.Array, mask: jax.Array | None,
               carry0_list: list[Carry], layer: int) -> LayerView:
    """Run layers ``0..layer`` on ``x`` (B, T, D) and expose layer ``layer``'s carries and gates."""
    xs = jnp.swapaxes(x, 0, 1)
    T, B = xs.shape[:2]
    mask_in = None if mask is None else jnp.swapaxes(mask.astype(bool), 0, 1)
    mask_t = jnp.ones((T, B), bool) if mask is None else mask_in
    for params, carry0 in zip(params_list[:layer], carry0_list[:layer], strict=True):
        xs = scan_layer(step, params, xs, mask_in, carry0, impl="fused").sequences["h"]
    params, carry0 = params_list[layer], carry0_list[layer]
    parts = tuple(carry0)
    xw = jnp.einsum("tbd,dg->tbg", xs, params["w_ih"]) + params["bias"]
    if jacobian_path(step) is None:
        res = scan_layer(step, params, xs, mask_t, carry0,
                         collect=tuple(p for p in parts if p != "h") + tuple(gate_names))
        carries = {p: res.sequences[p] for p in parts}
        gates = {g: res.sequences[g] for g in gate_names}
        pull_inputs = None
    else:
        hs, cs, residuals = fused.forward_with_residuals(step, params, xs, mask_in, carry0)
        carries = {"h": hs, "c": cs} if cs is not None else {"h": hs}
        H = hs.shape[-1]
        blocks = fused.gate_blocks(step)
        gates = {g: residuals.big[..., blocks[g] * H:][..., :H] for g in gate_names}
        pull_inputs = step_jacobians(step, residuals)
    prev = {p: jnp.concatenate([carry0[p][None], carries[p][:-1]], axis=0) for p in parts}
    if pull_inputs is None:
        pullback, pull_inputs = vjp_pullback(step, params), (prev, xw, mask_t)
    else:
        def pullback(jac_t, v):
            return carry_vjp(step, params["w_hh"], jac_t, v)

    return LayerView(params, xs, xw, mask_t, carry0, carries, prev, gates, pullback, pull_inputs)


def last_valid(mask: jax.Array | None, batch: int, length: int) -> jax.Array:
    """(B,) index of each row's last valid step (−1 for a row with none)."""
    if mask is None:
        return jnp.full((batch,), length - 1, jnp.int32)
    idx = jnp.arange(length)[None, :]
    return jnp.max(jnp.where(mask.astype(bool), idx, -1), axis=1).astype(jnp.int32)


def resolve_anchor(anchor, mask, batch: int, length: int):
    """Anchor step per row, ``(B,)`` int32: None → last valid step; an int (negative counts from
    the end) or ``(B,)``. Concrete inputs are resolved and checked on the host (NumPy: no device
    round trips per probe call); traced ones with ``jnp`` and unchecked."""
    if isinstance(anchor, jax.core.Tracer) or isinstance(mask, jax.core.Tracer):
        if anchor is None:
            return last_valid(mask, batch, length)
        a = jnp.asarray(anchor, jnp.int32)
        return jnp.broadcast_to(jnp.where(a < 0, a + length, a), (batch,))
    if anchor is None:
        if mask is None:
            return np.full((batch,), length - 1, np.int32)
        valid = np.asarray(mask).astype(bool)
        a = np.max(np.where(valid, np.arange(length)[None, :], -1), axis=1).astype(np.int32)
    else:
        a = np.asarray(anchor, np.int32)
        a = np.broadcast_to(np.where(a < 0, a + length, a), (batch,)).astype(np.int32)
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi >= length:
        raise UserError(f"anchor step must lie in 0..{length - 1} for every row (and a row "
                        f"needs at least one valid step); got range {lo}..{hi}")
    return a


def by_lag(per_step: jax.Array, anchor: jax.Array) -> jax.Array:
    """``(T, B, …)`` values at step t → ``(B, T, …)`` at lag k = anchor − t (NaN where t < 0)."""
    T = per_step.shape[0]
    k = jnp.arange(T)
    idx = anchor[None, :] - k[:, None]  # (K, B)
    valid = idx >= 0
    idx = jnp.clip(idx, 0, T - 1)
    extra = per_step.ndim - 2
    gathered = jnp.take_along_axis(per_step, idx.reshape(idx.shape + (1,) * extra), axis=0)
    valid = valid.reshape(valid.shape + (1,) * extra)
    return jnp.swapaxes(jnp.where(valid, gathered, jnp.nan), 0, 1)
