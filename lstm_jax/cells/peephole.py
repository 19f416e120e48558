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

No fast paths: the cell trains through ``lax.scan`` + ``jax.grad`` and is probed by ``jax.vjp``
of its step. The peepholes add a direct path to ∂C_t/∂C_{t−1}: ``diag(f)`` plus the terms
through ``p_f ⊙ C_{t−1}`` and ``p_i ⊙ C_{t−1}``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell
from lstm_jax.cells.lstm import lstm_bias
from lstm_jax.cells.registry import register


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
