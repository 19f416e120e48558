"""JANET, the forget-gate-only LSTM of van der Westhuizen & Lasenby (2018), "The unreasonable
effectiveness of the forget gate" (arXiv:1804.04849), eqs. 9–12::

    s_t = W_f x_t + U_f h_{t−1} + b_f
    C̃_t = tanh(W_c x_t + U_c h_{t−1} + b_c)
    C_t = σ(s_t) ⊙ C_{t−1} + (1 − σ(s_t − β)) ⊙ C̃_t          β = 1
    h_t = C_t

No input or output gate: the input is scaled by ``1 − σ(s − β)``, a forget-gate complement
shifted by β so that a little more information is let in than is forgotten. With ``h = C``
the carry is ``{"h"}`` alone, and ∂h_t/∂h_{t−1} = diag(f_t) + (the paths through the gates'
recurrent kernels): the ∏f_j path the essay argues about, with nothing else multiplying it.

Two blocks ``(f, c)``; gate ``f`` (= σ(s_t)), so the probes report ∏f_j ("cec").
Initialisation: chrono for the forget bias, ``b_f ~ log U[1, T_max − 1]`` (Tallec & Ollivier
2018), as the paper does, with ``T_max`` = ``chrono_tmax`` (the paper uses the sequence length)
or, when that is unset, :attr:`JANETCell.default_tmax`; ``b_c = 0``. The kernels follow the
package's defaults (``w_ih`` LeCun normal, each recurrent block orthogonal); the authors' code
(github.com/JosvanderWesthuizen/janet) takes TensorFlow 1's Glorot uniform for both, which
``input_init="glorot", recurrent_init="glorot"`` reproduces.

Fused backward for training (:mod:`lstm_jax.fused`; ``f = σ(s)``, ``q = σ(s − β)``,
``g = tanh(z_c)``, ``h' = f h + (1 − q) g``)::

    ds = dh' (h f(1 − f) − g q(1 − q)),   dz_c = dh' (1 − q)(1 − g²),   dh = dh' f + (…)U^T

The probes use the generic path (``jax.vjp`` of the step).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell, block_mask, chrono_bias, matmul
from lstm_jax.cells.kernel import FusedPath
from lstm_jax.cells.registry import register

BETA = 1.0


def _forward(xw_t, h, c, w_hh, extra, mm=None):
    # Both gates in one elementwise pass over the pre-activation (tanh x = 2σ(2x) − 1), and
    # σ(s − β) = f / (f + e^β (1 − f)) from f: then only one fusion reads the step's row of the
    # buffer that the loop updates in place. Separate σ(s), σ(s − β), tanh(z_c) each read that
    # row, and XLA copied the whole (T, B, 2H) buffer every step (17× slower at T = 1000).
    a = xw_t + matmul(h, w_hh, mm)
    k = 1.0 + block_mask(a, 1, 2)  # 1 on f's columns, 2 on the candidate's
    gates = jax.nn.sigmoid(a * k) * k - (k - 1.0)
    f, g = jnp.split(gates, 2, axis=-1)
    q = f / (f + math.exp(BETA) * (1.0 - f))
    return f * h + (1.0 - q) * g, None, gates, (q,)


def _backward(big, small, h_t, c_new, dh, dc, extra):
    (q,) = small
    h_prev = h_t
    f, g = jnp.split(big, 2, axis=-1)
    ds = dh * (h_prev * f * (1.0 - f) - g * q * (1.0 - q))
    dzc = dh * (1.0 - q) * (1.0 - g * g)
    return jnp.concatenate([ds, dzc], axis=-1), None, dh * f, None


@register("janet", "forget-gate-only LSTM: C_t = f⊙C_{t−1} + (1−σ(s−β))⊙C̃, h_t = C_t",
          "van der Westhuizen & Lasenby (2018), The unreasonable effectiveness of the forget gate")
class JANETCell(RecurrentCell):
    """JANET (van der Westhuizen & Lasenby 2018); equations in the module docstring."""

    blocks = 2
    gate_names = ("f",)
    forget_gate = "f"
    options = frozenset({"chrono_tmax"})
    fused = FusedPath(_forward, _backward, h_residual="prev", gate_blocks=(("f", 0),))
    #: T_max of the chrono forget bias when ``chrono_tmax`` is unset.
    default_tmax = 100.0

    def _init_bias(self, key, dtype):
        tmax = self.config.chrono_tmax or self.default_tmax
        bf = chrono_bias(key, self.hidden, tmax, dtype)
        return jnp.concatenate([bf, jnp.zeros((self.hidden,), dtype)])

    @staticmethod
    def step(params, carry, xw):
        z = xw + carry["h"] @ params["w_hh"]
        s, zc = jnp.split(z, 2, axis=-1)
        f = jax.nn.sigmoid(s)
        c = f * carry["h"] + (1.0 - jax.nn.sigmoid(s - BETA)) * jnp.tanh(zc)
        return {"h": c}, {"f": f}
