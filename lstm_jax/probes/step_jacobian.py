"""Each step's carry Jacobian ``∂carry_t/∂carry_{t−1}`` in factored form, for the probe sweeps.

For the three standard cells the Jacobian of one step is diagonal factors around one matrix,
``W_hh``. Computed once for all steps from the forward loop's residuals
(:func:`lstm_jax.fused.forward_with_residuals`), vectorised over T, the factors make pulling a
vector back through step t (:func:`carry_vjp`) cost one matmul and a few multiplies; ``jax.vjp``
of the step would recompute the step's matmul and activations at every step of every sweep.

With ``d`` the cotangents of carry_t, ``W = W_hh`` ``(H, G·H)`` and ``[a, b, …]`` concatenation
over the G gate blocks (derivations in :mod:`lstm_jax.fused`):

* tanh RNN (Elman 1990): ``dh_{t−1} = (dh ⊙ (1 − h_t²)) Wᵀ``.
* LSTM (Hochreiter & Schmidhuber 1997, forget gate Gers et al. 2000), gates ``[i, f, C̃, o]``::

      dc̄ = dc + dh ⊙ o(1 − tanh²C_t)
      dh_{t−1} = ([dc̄, dc̄, dc̄, dh] ⊙ [C̃ i(1−i), C_{t−1} f(1−f), i(1−C̃²), tanh C_t o(1−o)]) Wᵀ
      dC_{t−1} = dc̄ ⊙ f                     (the additive path: the constant error carousel)

* GRU, reset-after (Cho et al. 2014), gates ``[r, z, n]``, ``u = h_{t−1} U_n + b_hn``::

      dh_{t−1} = ([dh, dh, dh] ⊙ [(1−z)(1−n²) u r(1−r), (h_{t−1}−n) z(1−z), (1−z)(1−n²) r]) Wᵀ
                 + dh ⊙ z                   (the direct path through the update gate)

A padded step (mask False) is the identity. Tests compare sweeps built on these against
``jax.jacrev`` of an unrolled loop and the chain rule of per-step ``jax.jacfwd`` Jacobians.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from lstm_jax.fused import StepResiduals


class StepJacobian(NamedTuple):
    """The factors of ``∂carry_t/∂carry_{t−1}`` (any leading axes, e.g. ``(T, B, ·)``)."""

    scale: jax.Array  # (…, G·H): multiplies the cotangent tiled over the G blocks, before Wᵀ
    direct: jax.Array | None  # (…, H): LSTM f (C path), GRU z (h path); RNN None
    h_to_c: jax.Array | None  # (…, H): LSTM o(1 − tanh²C_t), how dh_t reaches C_t; else None
    mask: jax.Array | None  # (…,) bool, False on padded steps


def step_jacobians(arch: str, res: StepResiduals) -> StepJacobian:
    """The factors of every step at once from the forward loop's residuals (time-vectorised)."""
    if arch == "rnn":
        return StepJacobian(1.0 - res.h * res.h, None, None, res.mask)
    if arch == "lstm":
        i, f, g, o = jnp.split(res.big, 4, axis=-1)
        (c_prev,) = res.small
        tc = jnp.tanh(res.c_new)
        scale = jnp.concatenate([g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g),
                                 tc * o * (1.0 - o)], axis=-1)
        return StepJacobian(scale, f, o * (1.0 - tc * tc), res.mask)
    r, z, n = jnp.split(res.big, 3, axis=-1)
    (u,) = res.small
    dn = (1.0 - z) * (1.0 - n * n)
    scale = jnp.concatenate([dn * u * r * (1.0 - r), (res.h - n) * z * (1.0 - z), dn * r],
                            axis=-1)
    return StepJacobian(scale, z, None, res.mask)


def carry_vjp(arch: str, w_hh: jax.Array, jac: StepJacobian, v: dict) -> dict:
    """``vᵀ ∂carry_t/∂carry_{t−1}`` for one step.

    ``jac`` is step t's factors (``(B, ·)``); ``v`` ``{"h": (…, B, H)[, "c": …]}`` cotangents of
    carry_t, with any leading axes (probe vectors). Returns carry_{t−1}'s, same shapes.
    """
    dh = v["h"]
    G = jac.scale.shape[-1] // dh.shape[-1]
    if arch == "lstm":
        dc_bar = v["c"] + dh * jac.h_to_c
        tiled = jnp.concatenate([dc_bar, dc_bar, dc_bar, dh], axis=-1)
    else:
        tiled = jnp.concatenate([dh] * G, axis=-1) if G > 1 else dh
    dh_prev = jax.lax.dot_general(tiled * jac.scale, w_hh, (((dh.ndim - 1,), (1,)), ((), ())))
    out = {"h": dh_prev + dh * jac.direct if arch == "gru" else dh_prev}
    if arch == "lstm":
        out["c"] = dc_bar * jac.direct
    if jac.mask is not None:
        m = jac.mask[:, None]
        out = {k: jnp.where(m, out[k], v[k]) for k in out}
    return out
