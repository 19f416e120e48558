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
No fast paths (generic scan and ``jax.vjp`` probes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell
from lstm_jax.cells.lstm import lstm_bias
from lstm_jax.cells.registry import register


@register("cifg", "coupled-gate LSTM: i = 1 − f, so C_t = f⊙C_{t−1} + (1−f)⊙C̃",
          "Greff et al. (2017), LSTM: A search space odyssey")
class CIFGCell(RecurrentCell):
    """Coupled input–forget gate LSTM (Greff et al. 2017); equations in the module docstring."""

    blocks = 3
    carry_names = ("h", "c")
    gate_names = ("i", "f", "o")
    forget_gate = "f"
    options = frozenset({"forget_bias", "chrono_tmax"})

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
