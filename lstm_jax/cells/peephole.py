"""The peephole LSTM of Gers & Schmidhuber (2000), "Recurrent nets that time and count"::

    i = σ(W_i x_t + U_i h_{t−1} + p_i ⊙ C_{t−1} + b_i)
    f = σ(W_f x_t + U_f h_{t−1} + p_f ⊙ C_{t−1} + b_f)
    C̃ = tanh(W_g x_t + U_g h_{t−1} + b_g)
    C_t = f ⊙ C_{t−1} + i ⊙ C̃
    o = σ(W_o x_t + U_o h_{t−1} + p_o ⊙ C_t + b_o)        (o peeks at the *new* cell state)
    h_t = o ⊙ tanh(C_t)

The peephole weights ``p_i, p_f, p_o (H,)`` are diagonal: each gate sees only its own unit's
cell (Gers, Schraudolph & Schmidhuber 2002, "Learning precise timing with LSTM recurrent
networks", Fig. 1). Four blocks ``(i, f, g, o)`` as the LSTM; carry ``{"h", "c"}``.

Initialisation: the peephole weights uniform in [−0.1, 0.1], as Gers et al. (2002) initialise
their weights; everything else as :mod:`lstm_jax.cells.lstm` (forget bias or chrono), so the
``lstm`` and ``peephole`` arms differ by the peepholes only. With ``p = 0`` the cell is the LSTM.

Fused backward (:mod:`lstm_jax.fused`; pre-activations ``a``, ``c = C_{t−1}``, ``c' = C_t``)::

    da_o = dh' tanh c' · o(1 − o)
    dc̄ = dc' + dh' o (1 − tanh²c') + da_o p_o          (o peeks at c', so dc̄ gains its term)
    da_i = dc̄ g · i(1 − i),  da_f = dc̄ c · f(1 − f),  da_g = dc̄ i · (1 − g²)
    dc = dc̄ f + da_i p_i + da_f p_f                      (the peepholes' extra paths back to c)
    dp_i = Σ_t da_i c,  dp_f = Σ_t da_f c,  dp_o = Σ_t da_o c'   (after the loop, over all steps)

The probes have no factored Jacobian for it: they use ``jax.vjp`` of its step. The peepholes add
a direct path to ∂C_t/∂C_{t−1}: ``diag(f)`` plus the terms through ``p_f ⊙ C_{t−1}`` and
``p_i ⊙ C_{t−1}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell, matmul
from lstm_jax.cells.kernel import FusedPath
from lstm_jax.cells.lstm import lstm_bias
from lstm_jax.cells.registry import register


def _forward(xw_t, h, c, w_hh, extra, mm=None):
    p_i, p_f, p_o = extra
    zi, zf, zg, zo = jnp.split(xw_t + matmul(h, w_hh, mm), 4, axis=-1)
    i, f = jax.nn.sigmoid(zi + p_i * c), jax.nn.sigmoid(zf + p_f * c)
    g = jnp.tanh(zg)
    c_new = f * c + i * g
    o = jax.nn.sigmoid(zo + p_o * c_new)
    return o * jnp.tanh(c_new), c_new, jnp.concatenate([i, f, g, o], axis=-1), (c,)


def _backward(big, small, h_t, c_new, dh, dc, extra):
    p_i, p_f, p_o = extra
    (c_prev,) = small
    i, f, g, o = jnp.split(big, 4, axis=-1)
    tc = jnp.tanh(c_new)
    da_o = dh * tc * o * (1.0 - o)
    dcb = dc + dh * o * (1.0 - tc * tc) + da_o * p_o
    da_i = dcb * g * i * (1.0 - i)
    da_f = dcb * c_prev * f * (1.0 - f)
    da_g = dcb * i * (1.0 - g * g)
    dc_prev = dcb * f + da_i * p_i + da_f * p_f
    return jnp.concatenate([da_i, da_f, da_g, da_o], axis=-1), None, None, dc_prev


def _peephole_grads(dz_x, dz_h, small, cN):
    """``dp_i, dp_f, dp_o`` from every step's gate gradients ``dz_x (S, B, 4H)``: i and f read
    ``C_{t−1}`` (``small``), o reads ``C_t``, which is step t+1's ``C_{t−1}`` (and ``cN`` last)."""
    (c_prev,) = small
    da_i, da_f, _, da_o = jnp.split(dz_x, 4, axis=-1)
    dp_o = (da_o[:-1] * c_prev[1:]).sum((0, 1)) + (da_o[-1] * cN).sum(0)
    return (da_i * c_prev).sum((0, 1)), (da_f * c_prev).sum((0, 1)), dp_o


@register("peephole", "LSTM with diagonal peepholes: i, f see C_{t−1}, o sees C_t",
          "Gers & Schmidhuber (2000), Recurrent nets that time and count")
class PeepholeLSTMCell(RecurrentCell):
    """Peephole LSTM (Gers & Schmidhuber 2000); equations in the module docstring."""

    blocks = 4
    carry_names = ("h", "c")
    gate_names = ("i", "f", "o")
    forget_gate = "f"
    options = frozenset({"forget_bias", "chrono_tmax"})
    recurrent_names = ("w_hh", "p_i", "p_f", "p_o")
    fused = FusedPath(_forward, _backward, extra=("p_i", "p_f", "p_o"),
                      extra_grad=_peephole_grads, gate_blocks=(("i", 0), ("f", 1), ("o", 3)))

    def _init_bias(self, key, dtype):
        return lstm_bias(key, self.hidden, self.config, dtype)

    def extra_params(self, key, dtype):
        p = jax.random.uniform(key, (3, self.hidden), dtype, minval=-0.1, maxval=0.1)
        return {"p_i": p[0], "p_f": p[1], "p_o": p[2]}

    @staticmethod
    def step(params, carry, xw):
        c_prev = carry["c"]
        z = xw + carry["h"] @ params["w_hh"]
        zi, zf, zg, zo = jnp.split(z, 4, axis=-1)
        i = jax.nn.sigmoid(zi + params["p_i"] * c_prev)
        f = jax.nn.sigmoid(zf + params["p_f"] * c_prev)
        c = f * c_prev + i * jnp.tanh(zg)
        o = jax.nn.sigmoid(zo + params["p_o"] * c)
        h = o * jnp.tanh(c)
        return {"h": h, "c": c}, {"i": i, "f": f, "o": o}
