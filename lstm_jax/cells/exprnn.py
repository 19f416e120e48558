"""expRNN, the orthogonal RNN of Lezcano-Casado & Martínez-Rubio (2019), "Cheap orthogonal
constraints in neural networks: a simple parametrization of the orthogonal and unitary group"
(ICML 2019, arXiv:1901.08428)::

    A = S − Sᵀ,   S = triu(w_skew, 1)           (skew-symmetric; upper-triangular parameters)
    B = expm(A)                                  (orthogonal, det B = 1: the exponential map)
    h_t = modrelu(W x_t + h_{t−1} B + b)
    modrelu(z) = sign(z) ⊙ relu(|z| + b_mod)     (Arjovsky et al. 2016; real version)

Unconstrained gradient descent on ``w_skew`` keeps B exactly orthogonal at every step (up to
the rounding of ``expm``): the norm-preserving alternative to gating. Rows are vectors here
(``h @ B``), i.e. the recurrent matrix of the paper's column convention is Bᵀ = expm(−A), also
orthogonal. The strictly lower triangle of ``w_skew`` is not used (it gets zero gradient).

Nonlinearity: modrelu, as in the paper's experiments, with its bias ``b_mod (H,)``.

Initialisation (the paper's code): Henaff et al. (2016)'s — A block-diagonal with 2×2 blocks
``[[0, θ], [−θ, 0]]``, ``θ ~ U[−π, π]`` (B then rotates each pair of units by its own angle);
``W`` He normal (``kaiming_normal``); ``b = 0``; ``b_mod ~ U[−0.01, 0.01]``. The paper's code
also trains ``A`` at a tenth of the other parameters' rate (``lr_orth``): ``TrainConfig(
recurrent_lr_scale=0.1)``, not the default. Its input projection has no bias (here ``b``, from 0).

:func:`expm` is matmul-only (no LAPACK solve, which can deadlock inside compiled, vmapped
programs on this jaxlib): scaling and squaring with a Taylor polynomial. For skew-symmetric A
the spectral norm is at most the Frobenius norm, so ``s = ⌈log2(‖A‖_F / 0.5)⌉`` (clipped to
``[0, MAX_SQUARINGS]``) makes ``‖A/2^s‖₂ ≤ 0.5``, where the degree-``TAYLOR_DEGREE`` Taylor
remainder is below ``0.5^19/19! ≈ 2e−23``. ``s`` is data-dependent and jit needs static loops,
so the ``MAX_SQUARINGS`` squarings always run (``lax.fori_loop``) and square only while
``i < s``: ``TAYLOR_DEGREE + MAX_SQUARINGS`` = 38 matmuls of ``(H, H)`` per call. Exact to
float64 rounding while ``‖A‖_F ≤ 0.5·2^20 ≈ 5e5``.

B is computed once per sequence by the whole-sequence fast path (``sequence``: ``expm``, then a
``lax.scan`` of the step, so the backward pass differentiates ``expm`` once); the plain
``step`` (used by the probes) recomputes it at every step.

Carry ``{"h"}``; parameters ``w_ih (D, H)``, ``w_skew (H, H)``, ``bias (H,)``, ``b_mod (H,)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from lstm_jax.cells.base import RecurrentCell
from lstm_jax.cells.registry import register

TAYLOR_DEGREE = 18
MAX_SQUARINGS = 20


def expm(a: jax.Array) -> jax.Array:
    """``exp(a)`` for a square ``a`` with ``‖a‖₂ ≤ ‖a‖_F`` (any matrix), matmuls only.

    Scaling and squaring with a degree-``TAYLOR_DEGREE`` Taylor polynomial (Horner); see the
    module docstring for the error bound and the cost. Differentiable, jit/vmap-safe.
    """
    n = a.shape[-1]
    eye = jnp.eye(n, dtype=a.dtype)
    norm = jnp.sqrt(jnp.sum(a * a))
    s = jnp.clip(jnp.ceil(jnp.log2(jnp.maximum(norm, 1e-30) / 0.5)), 0, MAX_SQUARINGS)
    s = jax.lax.stop_gradient(s)
    x = a / (2.0 ** s)
    p = eye
    for k in range(TAYLOR_DEGREE, 0, -1):  # I + x/1 (I + x/2 (I + … (I + x/m)))
        p = eye + (x @ p) / k

    def square(i, m):
        return jnp.where(i < s, m @ m, m)

    return jax.lax.fori_loop(0, MAX_SQUARINGS, square, p)


def skew(w_skew: jax.Array) -> jax.Array:
    """``A = S − Sᵀ`` with ``S`` the strictly upper triangle of ``w_skew (H, H)``."""
    s = jnp.triu(w_skew, 1)
    return s - s.T


def modrelu(z: jax.Array, b: jax.Array) -> jax.Array:
    """``sign(z) ⊙ relu(|z| + b)`` (Arjovsky, Shah & Bengio 2016), real inputs."""
    return jnp.sign(z) * jax.nn.relu(jnp.abs(z) + b)


def _step_with(params, b_rec, carry, xw):
    return {"h": modrelu(xw + carry["h"] @ b_rec, params["b_mod"])}, {}


def _sequence(params, xw, mask, carry0):
    b_rec = expm(skew(params["w_skew"]))

    def body(carry, inputs):
        xw_t, m_t = inputs
        new, _ = _step_with(params, b_rec, carry, xw_t)
        new = {k: jnp.where(m_t[:, None], new[k], carry[k]) for k in carry}
        return new, new["h"]

    final, hs = jax.lax.scan(body, carry0, (xw, mask))
    return final, {"h": hs}


@register("exprnn", "orthogonal RNN: h_t = modrelu(W x_t + h_{t−1} expm(A) + b), A skew-symmetric",
          "Lezcano-Casado & Martínez-Rubio (2019), Cheap orthogonal constraints in neural networks")
class ExpRNNCell(RecurrentCell):
    """expRNN (Lezcano-Casado & Martínez-Rubio 2019); equations in the module docstring."""

    blocks = 1
    own_input_init = True
    sequence = staticmethod(_sequence)
    recurrent_names = ("w_skew",)

    def __init__(self, in_features, config, *, rngs, dtype=jnp.float32, last_layer=True):
        super().__init__(in_features, config, rngs=rngs, dtype=dtype, last_layer=last_layer)
        self.w_ih[...] = jax.nn.initializers.he_normal()(rngs.params(), self.w_ih[...].shape, dtype)

    def recurrent_params(self, key, dtype):
        """Henaff et al. (2016)'s init: 2×2 rotation generators with angles U[−π, π]."""
        H = self.hidden
        theta = jax.random.uniform(key, (H // 2,), dtype, minval=-math.pi, maxval=math.pi)
        i = jnp.arange(H // 2) * 2
        return {"w_skew": jnp.zeros((H, H), dtype).at[i, i + 1].set(theta)}

    def extra_params(self, key, dtype):
        return {"b_mod": jax.random.uniform(key, (self.hidden,), dtype, minval=-0.01, maxval=0.01)}

    @staticmethod
    def step(params, carry, xw):
        return _step_with(params, expm(skew(params["w_skew"])), carry, xw)
