"""The independently recurrent neural network (IndRNN) of Li, Li, Cook, Zhu & Gao (2018),
"Independently recurrent neural network (IndRNN): building a longer and deeper RNN"
(CVPR 2018, arXiv:1803.04831), eq. 2::

    h_t = relu(W x_t + u ⊙ h_{t−1} + b)

The recurrent weight is a *vector* ``u (H,)``: each unit only sees its own past, so
∂h_t/∂h_{t−1} = diag(u ⊙ relu'(·)) and ∂h_T/∂h_{T−k} = diag(∏_j u ⊙ relu'(z_j)), which is
``diag(u^k)`` while the pre-activations stay positive (the paper's eq. 4–5). Gradients over T
steps then neither vanish nor explode when every ``|u_n| ∈ [ε^{1/T}, γ^{1/T}]``; with ReLU the
paper takes ``|u_n| ≤ 2^{1/T}`` (a gradient may grow at most ×2 over the whole sequence).

Initialisation (``indrnn_init``). ``"uniform"`` (default): ``W`` LeCun normal, ``b = 0`` and
``u ~ U(0, 2^{1/T_max})`` in every layer, with ``T_max = chrono_tmax`` (the longest dependency
to keep, in steps; the paper uses the sequence length). Without ``chrono_tmax`` the cell does
not know a T, so ``u ~ U(0, 1)``: every unit decays, none explodes, at any length.
``"paper"``: the adding setting of the authors' code (github.com/Sunnydreamrain/
IndRNN_Theano_Lasagne, ``adding/adding.py``): the *last* layer's ``u ~ U(2^{−1/T_max},
2^{1/T_max})``, so every output unit keeps memory over T_max steps (``u^T_max ∈ [½, 2]``),
earlier layers' ``u ~ U(0, 2^{1/T_max})``, and ``W ~ N(0, 0.001²)``; it needs ``chrono_tmax``.

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
from lstm_jax.errors import UserError


def u_bound(tmax: float | None) -> float:
    """The upper end of ``u``'s initial range: ``2^{1/T_max}`` (Li et al. 2018), or 1."""
    return 1.0 if tmax is None else 2.0 ** (1.0 / tmax)


@register("indrnn", "independently recurrent RNN: h_t = relu(W x_t + u⊙h_{t−1} + b), u a vector",
          "Li et al. (2018), Independently recurrent neural network (IndRNN)")
class IndRNNCell(RecurrentCell):
    """IndRNN (Li et al. 2018); equations and initialisation in the module docstring."""

    blocks = 1
    own_input_init = True
    options = frozenset({"chrono_tmax", "indrnn_init"})
    recurrent_names = ("u",)

    def __init__(self, in_features, config, *, rngs, dtype=jnp.float32, last_layer=True):
        super().__init__(in_features, config, rngs=rngs, dtype=dtype, last_layer=last_layer)
        if config.indrnn_init == "paper":
            self.w_ih[...] = 0.001 * jax.random.normal(rngs.params(), self.w_ih[...].shape, dtype)

    @classmethod
    def check_config(cls, config) -> None:
        if config.indrnn_init == "paper" and config.chrono_tmax is None:
            raise UserError("indrnn_init='paper' needs chrono_tmax (the paper's T: its u range "
                            "is (2^(-1/T), 2^(1/T)) in the last layer)")

    def recurrent_params(self, key, dtype):
        hi = u_bound(self.config.chrono_tmax)
        lo = 1.0 / hi if self.config.indrnn_init == "paper" and self.last_layer else 0.0
        return {"u": jax.random.uniform(key, (self.hidden,), dtype, minval=lo, maxval=hi)}

    def project(self) -> None:
        if self.config.chrono_tmax is not None:
            bound = u_bound(self.config.chrono_tmax)
            self.u[...] = jnp.clip(self.u[...], -bound, bound)

    @staticmethod
    def step(params, carry, xw):
        return {"h": jax.nn.relu(xw + params["u"] * carry["h"])}, {}
