"""The linear recurrent unit (LRU) of Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De (2023),
"Resurrecting recurrent neural networks for long sequences" (ICML 2023, arXiv:2303.06349),
Section 3 and the reference code of its Appendix A::

    λ = exp(−exp(ν_log) + i·exp(θ_log))                  (N,) complex, |λ| < 1 always
    x_t = λ ⊙ x_{t−1} + γ ⊙ (B u_t)                      x ∈ ℂ^N, γ = exp(γ_log)
    y_t = Re(C x_t) + D u_t                              the layer's output h_t

A *linear* diagonal recurrence, so the whole sequence is one ``jax.lax.associative_scan``
(Blelloch 1990) with the operator ``(a₁, b₁) ∘ (a₂, b₂) = (a₂a₁, a₂b₁ + b₂)``: O(log T) depth
instead of T sequential steps. Padded steps use ``(a, b) = (1, 0)``, so they leave the state
unchanged, and the output there holds the last valid ``y`` (as the step-by-step scan does).

Shapes. Hidden size H (even) carries N = H/2 complex units, packed as
``c = [Re x | Im x]`` ``(B, H)``; carry ``{"h": y (B, H), "c": packed x}``. Two blocks of
``w_ih (D, 2H)``: block 0 is ``[B_re | B_im]`` (each ``(D, N)``), block 1 the skip ``D``. The
paper's D is diagonal because its input and output widths agree; here the input width D may
differ from H, so the skip is a dense ``(D, H)`` matrix (diagonal when D = H is a special case).
``bias`` adds a constant to ``B u_t`` (block 0) and to ``y`` (block 1); both start at 0.
``c_re``, ``c_im`` ``(N, H)``: C in row convention (``Re(x C) = x_re c_re − x_im c_im``).

Initialisation (Appendix A). Ring init: ``|λ|² ~ U[r_min², r_max²]`` (uniform on the ring
``r_min ≤ |λ| ≤ r_max``), phase ``~ U[0, θ_max]``; ``γ_log = log √(1 − |λ|²)``, the
normalisation that keeps ``E‖x_t‖²`` equal to ``E‖B u‖²`` for white-noise inputs;
B entries ``N(0, 1/(2D))`` (real and imaginary parts), C entries ``N(0, 1/N)``, the skip
LeCun normal. :attr:`LRUCell.r_min`, ``r_max``, ``theta_max`` are the values the paper uses for
long-range tasks (0.9, 0.999, π/10); subclass to change them.

The layer is linear: stacked LRUs followed by this package's dense head form a linear model
(the paper puts an MLP/GLU between layers). Probes: ``hidden`` (∂y_T/∂y_{T−k}) is exactly 0 for
k ≥ 1 since y is not fed back; ``cell`` is ∂x_T/∂x_{T−k} = diag(λ^k), whose Frobenius norm on
the packed real state is ``√(2 Σ_n |λ_n|^{2k})``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell
from lstm_jax.cells.registry import register
from lstm_jax.errors import UserError


def _lambda_gamma(params):
    """``(λ_re, λ_im, γ)``, each ``(N,)``."""
    mod = jnp.exp(-jnp.exp(params["nu_log"]))
    theta = jnp.exp(params["theta_log"])
    return mod * jnp.cos(theta), mod * jnp.sin(theta), jnp.exp(params["gamma_log"])


def _readout(params, x_re, x_im, skip):
    return x_re @ params["c_re"] - x_im @ params["c_im"] + skip


def _sequence(params, xw, mask, carry0):
    """The whole sequence by ``jax.lax.associative_scan`` over time; ``xw (T, B, 2H)``."""
    lam_re, lam_im, gamma = _lambda_gamma(params)
    bu, skip = jnp.split(xw, 2, axis=-1)
    bu_re, bu_im = jnp.split(bu, 2, axis=-1)
    m = mask[:, :, None]
    lam = jax.lax.complex(lam_re, lam_im)
    a = jnp.where(m, lam, jnp.ones_like(lam))  # (T, B, N)
    b = jnp.where(m, jax.lax.complex(gamma * bu_re, gamma * bu_im), jnp.zeros_like(lam))

    def combine(first, second):
        a1, b1 = first
        a2, b2 = second
        return a2 * a1, a2 * b1 + b2

    a_cum, b_cum = jax.lax.associative_scan(combine, (a, b), axis=0)
    c_re0, c_im0 = jnp.split(carry0["c"], 2, axis=-1)
    x = a_cum * jax.lax.complex(c_re0, c_im0) + b_cum  # x_t = (∏ a) x_0 + Σ …
    x_re, x_im = jnp.real(x), jnp.imag(x)
    y = _readout(params, x_re, x_im, skip)  # (T, B, H), valid where mask
    # a padded step holds the last valid y (or the initial one): gather at the last valid index
    T = xw.shape[0]
    last = jax.lax.cummax(jnp.where(mask, jnp.arange(T)[:, None], -1), axis=0)  # (T, B)
    held = jnp.take_along_axis(y, jnp.broadcast_to(jnp.maximum(last, 0)[:, :, None], y.shape),
                               axis=0)
    hs = jnp.where((last >= 0)[:, :, None], held, carry0["h"][None])
    final = {"h": hs[-1], "c": jnp.concatenate([x_re[-1], x_im[-1]], axis=-1)}
    return final, {"h": hs}


@register("lru", "linear recurrent unit: x_t = λ⊙x_{t−1} + γ⊙B u_t (complex diagonal), "
          "y = Re(C x_t) + D u_t; parallel scan",
          "Orvieto et al. (2023), Resurrecting recurrent neural networks for long sequences")
class LRUCell(RecurrentCell):
    """LRU (Orvieto et al. 2023); equations, shapes and initialisation in the module docstring."""

    blocks = 2
    own_input_init = True
    carry_names = ("h", "c")
    sequence = staticmethod(_sequence)
    recurrent_names = ("nu_log", "theta_log", "gamma_log")  # λ and its normalisation; not C
    r_min: float = 0.9
    r_max: float = 0.999
    theta_max: float = math.pi / 10

    def __init__(self, in_features, config, *, rngs, dtype=jnp.float32, last_layer=True):
        super().__init__(in_features, config, rngs=rngs, dtype=dtype, last_layer=last_layer)
        N, H = self.hidden // 2, self.hidden
        k_b, k_d = jax.random.split(rngs.params())
        b = jax.random.normal(k_b, (in_features, H), dtype) / math.sqrt(2 * in_features)
        d = jax.nn.initializers.lecun_normal()(k_d, (in_features, H), dtype)
        self.w_ih[...] = jnp.concatenate([b[:, :N], b[:, N:], d], axis=1)

    @classmethod
    def check_config(cls, config):
        if config.hidden % 2:
            raise UserError(f"hidden={config.hidden} must be even for arch=lru "
                            "(H/2 complex units stored as real and imaginary parts)")

    def recurrent_params(self, key, dtype):
        N, H = self.hidden // 2, self.hidden
        k1, k2, k3, k4 = jax.random.split(key, 4)
        u1 = jax.random.uniform(k1, (N,), dtype)
        u2 = jax.random.uniform(k2, (N,), dtype, minval=1e-6)  # log of a positive phase
        mod_sq = u1 * (self.r_max ** 2 - self.r_min ** 2) + self.r_min ** 2  # |λ|²
        nu_log = jnp.log(-0.5 * jnp.log(mod_sq))
        return {"nu_log": nu_log,
                "theta_log": jnp.log(self.theta_max * u2),
                "gamma_log": 0.5 * jnp.log1p(-mod_sq),
                "c_re": jax.random.normal(k3, (N, H), dtype) / math.sqrt(N),
                "c_im": jax.random.normal(k4, (N, H), dtype) / math.sqrt(N)}

    @staticmethod
    def step(params, carry, xw):
        lam_re, lam_im, gamma = _lambda_gamma(params)
        bu, skip = jnp.split(xw, 2, axis=-1)
        bu_re, bu_im = jnp.split(bu, 2, axis=-1)
        x_re, x_im = jnp.split(carry["c"], 2, axis=-1)
        new_re = lam_re * x_re - lam_im * x_im + gamma * bu_re
        new_im = lam_re * x_im + lam_im * x_re + gamma * bu_im
        y = _readout(params, new_re, new_im, skip)
        return {"h": y, "c": jnp.concatenate([new_re, new_im], axis=-1)}, {}
