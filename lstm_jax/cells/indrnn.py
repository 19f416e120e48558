"""The independently recurrent neural network (IndRNN) of Li, Li, Cook, Zhu & Gao (2018),
"Independently recurrent neural network (IndRNN): building a longer and deeper RNN"
(CVPR 2018, arXiv:1803.04831), eq. 2::

    h_t = relu(W x_t + u ⊙ h_{t−1} + b)

The recurrent weight is a *vector* ``u (H,)``: each unit only sees its own past, so
∂h_t/∂h_{t−1} = diag(u ⊙ relu'(·)) and ∂h_T/∂h_{T−k} = diag(∏_j u ⊙ relu'(z_j)), which is
``diag(u^k)`` while the pre-activations stay positive (the paper's eq. 4–5). Gradients over T
steps then neither vanish nor explode when every ``|u_n| ∈ [ε^{1/T}, γ^{1/T}]``; with ReLU the
paper takes ``|u_n| ≤ 2^{1/T}`` (a gradient may grow at most ×2 over the whole sequence).

Initialisation. ``W`` LeCun normal, ``b = 0`` and, as the paper suggests for long memory,
``u ~ U(0, 2^{1/T_max})`` with ``T_max = chrono_tmax`` (the longest dependency to keep, in
steps; the paper uses the sequence length). Without ``chrono_tmax`` the cell does not know a
T, so ``u ~ U(0, 1)``: every unit decays, none explodes, at any length.

Training keeps the constraint as the paper does: after every optimiser update the trainer calls
:meth:`IndRNNCell.project`, which clips ``u`` to ``[−2^{1/T_max}, 2^{1/T_max}]`` (|u| is what the
bound is about; a negative ``u`` alternates sign but decays alike). Without ``chrono_tmax`` the
cell has no T and ``u`` is left unconstrained.

One block; carry ``{"h"}``; parameters ``w_ih (D, H)``, ``u (H,)``, ``bias (H,)`` (no
``w_hh``). No fast paths (generic scan and ``jax.vjp`` probes).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell
from lstm_jax.cells.registry import register


def u_bound(tmax: float | None) -> float:
    """The upper end of ``u``'s initial range: ``2^{1/T_max}`` (Li et al. 2018), or 1."""
    return 1.0 if tmax is None else 2.0 ** (1.0 / tmax)


@register("indrnn", "independently recurrent RNN: h_t = relu(W x_t + u⊙h_{t−1} + b), u a vector",
          "Li et al. (2018), Independently recurrent neural network (IndRNN)")
class IndRNNCell(RecurrentCell):
    """IndRNN (Li et al. 2018); equations and initialisation in the module docstring."""

    blocks = 1
    options = frozenset({"chrono_tmax"})

    def recurrent_params(self, key, dtype):
        hi = u_bound(self.config.chrono_tmax)
        return {"u": jax.random.uniform(key, (self.hidden,), dtype, minval=0.0, maxval=hi)}

    def project(self) -> None:
        if self.config.chrono_tmax is not None:
            bound = u_bound(self.config.chrono_tmax)
            self.u[...] = jnp.clip(self.u[...], -bound, bound)

    @staticmethod
    def step(params, carry, xw):
        return {"h": jax.nn.relu(xw + params["u"] * carry["h"])}, {}
