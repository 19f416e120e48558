"""The coupled input–forget gate LSTM (CIFG) of Greff et al. (2017), "LSTM: A search space
odyssey" (IEEE TNNLS 28(10)), variant CIFG::

    f = σ(W_f x_t + U_f h_{t−1} + b_f),   i = 1 − f
    C̃ = tanh(W_g x_t + U_g h_{t−1} + b_g),   o = σ(W_o x_t + U_o h_{t−1} + b_o)
    C_t = f ⊙ C_{t−1} + (1 − f) ⊙ C̃
    h_t = o ⊙ tanh(C_t)

The input gate is tied to the forget gate, so the cell state is a convex combination of its old
value and the candidate (as in the GRU's update gate); Greff et al. found it matches the LSTM
on their tasks with ~25 % fewer recurrent parameters. Their baseline ("vanilla") has peepholes;
here the coupling is applied to this package's peephole-free ``lstm``, so ``lstm`` and ``cifg``
differ by the coupling only.

Three blocks ``(f, g, o)``; carry ``{"h", "c"}``; gates ``i`` (= 1 − f), ``f``, ``o``.
Initialisation as the LSTM's: forget bias ``forget_bias`` (Jozefowicz et al. 2015) or chrono
``b_f ~ log U[1, T_max−1]`` (Tallec & Ollivier 2018; ``b_i = −b_f`` holds by construction).

Fused backward for training (:mod:`lstm_jax.fused`; ``c' = f c + (1 − f) g``, ``h' = o tanh c'``)::

    dc̄ = dc' + dh' o (1 − tanh²c'),  df = dc̄ (c − g),  dg = dc̄ (1 − f),  do = dh' tanh c',
    dc = dc̄ f;   pre-activations via σ' = σ(1−σ), tanh' = 1 − tanh².

The probes use the generic path (``jax.vjp`` of the step).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell, block_mask, matmul
from lstm_jax.cells.kernel import FusedPath
from lstm_jax.cells.lstm import lstm_bias
from lstm_jax.cells.registry import register


def _gates(a):
    """``[σ(a_f), tanh(a_g), σ(a_o)]`` for ``a (B, 3H)`` in one elementwise pass, ``tanh x =
    2σ(2x) − 1`` on the candidate's block (as :func:`lstm_jax.cells.lstm._gates`)."""
    k = 1.0 + block_mask(a, 1, 3)  # 1 for the σ gates, 2 for the candidate
    return jax.nn.sigmoid(a * k) * k - (k - 1.0)


def _forward(xw_t, h, c, w_hh, extra, mm=None):
    gates = _gates(xw_t + matmul(h, w_hh, mm))
    f, g, o = jnp.split(gates, 3, axis=-1)
    c_new = f * c + (1.0 - f) * g
    return o * jnp.tanh(c_new), c_new, gates, (c,)


def _backward(big, small, h_t, c_new, dh, dc, extra):
    (c_prev,) = small
    tc = jnp.tanh(c_new)
    f, g, o = jnp.split(big, 3, axis=-1)
    dcb = dc + dh * o * (1.0 - tc * tc)
    upstream = jnp.concatenate([dcb * (c_prev - g), dcb * (1.0 - f), dh * tc], axis=-1)
    # (1 − a)(a + e), e = 1 on the candidate's columns: σ(1 − σ) for f, o; 1 − g² for g
    da = upstream * (1.0 - big) * (big + block_mask(big, 1, 3))
    return da, None, None, dcb * f


@register("cifg", "coupled-gate LSTM: i = 1 − f, so C_t = f⊙C_{t−1} + (1−f)⊙C̃",
          "Greff et al. (2017), LSTM: A search space odyssey")
class CIFGCell(RecurrentCell):
    """Coupled input–forget gate LSTM (Greff et al. 2017); equations in the module docstring."""

    blocks = 3
    carry_names = ("h", "c")
    gate_names = ("i", "f", "o")
    forget_gate = "f"
    options = frozenset({"forget_bias", "chrono_tmax"})
    fused = FusedPath(_forward, _backward, gate_blocks=(("f", 0), ("o", 2)))

    def _init_bias(self, key, dtype):
        return lstm_bias(key, self.hidden, self.config, dtype, blocks=3, i_block=None, f_block=0)

    @staticmethod
    def step(params, carry, xw):
        z = xw + carry["h"] @ params["w_hh"]
        zf, zg, zo = jnp.split(z, 3, axis=-1)
        f, o = jax.nn.sigmoid(zf), jax.nn.sigmoid(zo)
        i = 1.0 - f
        c = f * carry["c"] + i * jnp.tanh(zg)
        h = o * jnp.tanh(c)
        return {"h": h, "c": c}, {"i": i, "f": f, "o": o}
