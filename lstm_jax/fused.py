"""A faster recurrence for training: a ``jax.custom_vjp`` with the backward pass cuDNN/oneDNN use.

``fused_layer`` computes exactly what :func:`lstm_jax.recurrence.scan_layer` computes (same
outputs, same mask semantics: a padded step keeps the carry), but with a hand-written backward
pass. Differentiating the plain scan with ``jax.grad`` puts, inside the reverse loop, per step:
the data gradient ``dz_t W_hhᵀ`` *and* a small weight-gradient product ``h_{t−1}ᵀ dz_t`` that is
accumulated into an ``(H, G·H)`` carry. Here the reverse loop computes only the per-step gate
gradients ``dz_t`` and ``dh_{t−1} = dz_t W_hhᵀ``; afterwards the weight gradients are single
large products over all steps::

    dW_hh = Σ_t h_{t−1}ᵀ dz_t      one (H, T·B) × (T·B, G·H) matmul
    dW_ih = Σ_t x_tᵀ dz_t          one (D, T·B) × (T·B, G·H) matmul
    dx    = dz W_ihᵀ               one (T·B, G·H) × (G·H, D) matmul

The forward pass saves the activated gates, so the backward pass does no transcendental
recomputation (``remat=False``). With ``remat=True`` the sequence is cut into segments of
``segment ≈ √T`` steps (Chen et al. 2016, "Training deep nets with sublinear memory cost"):
the forward pass keeps only the carries at segment boundaries, and the backward pass recomputes
each segment's input projection and gates just before running back through it, so activation
memory is O(T/S + S) per-step tensors instead of O(T) (the inputs ``x``, the outputs ``h`` and
``dx`` stay O(T)).

The cells (equations in :mod:`lstm_jax.cells`) and their hand-derived backward steps:

* tanh RNN (Elman 1990): ``a = xw + h W``, ``h' = tanh a``; ``da = dh' (1 − h'²)``.
* LSTM (Hochreiter & Schmidhuber 1997; forget gate Gers et al. 2000): with ``c' = f c + i g``,
  ``h' = o tanh c'``: ``dc̄ = dc' + dh' o (1 − tanh²c')``, ``do = dh' tanh c'``, ``di = dc̄ g``,
  ``df = dc̄ c``, ``dg = dc̄ i``, ``dc = dc̄ f``; pre-activations via σ' = σ(1−σ), tanh' = 1−tanh².
* GRU, reset-after (Cho et al. 2014; cuDNN variant): ``u = h U + [0, 0, b_hn]`` blockwise,
  ``n = tanh(x_n + r u_n)``, ``h' = (1 − z) n + z h``. The gradient w.r.t. ``x W_ih`` is
  ``[dr̂, dẑ, dn̂]`` but w.r.t. ``h U`` it is ``[dr̂, dẑ, dn̂ ⊙ r]``, so the GRU keeps two.

Only the three standard steps are fused (``RNNCell.step``, ``LSTMCell.step``, ``GRUCell.step``);
:func:`fused_arch` returns None for any other step (e.g. the reset-before GRU), and the caller
falls back to the plain scan.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

from lstm_jax.cells import GRUCell, LSTMCell, RNNCell


def fused_arch(step) -> str | None:
    """The architecture whose step ``step`` is, if the fused path supports it, else None."""
    return {RNNCell.step: "rnn", LSTMCell.step: "lstm", GRUCell.step: "gru"}.get(step)


# ----------------------------------------------------------------------------------------------
# One step forward (returns the residuals the backward step needs) and one step backward.


def _cell_forward(arch, xw_t, h, c, w_hh, b_hn):
    """Returns (h', c' or None, residual): residual is what :func:`_cell_backward` reads."""
    if arch == "rnn":
        h_new = jnp.tanh(xw_t + h @ w_hh)
        return h_new, None, h_new
    if arch == "lstm":
        a = xw_t + h @ w_hh
        ai, af, ag, ao = jnp.split(a, 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(ai), jax.nn.sigmoid(af), jnp.tanh(ag), jax.nn.sigmoid(ao)
        c_new = f * c + i * g
        h_new = o * jnp.tanh(c_new)
        return h_new, c_new, jnp.concatenate([i, f, g, o], axis=-1)
    # gru (reset-after)
    xr, xz, xn = jnp.split(xw_t, 3, axis=-1)
    hr, hz, hn = jnp.split(h @ w_hh, 3, axis=-1)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    u = hn + b_hn
    n = jnp.tanh(xn + r * u)
    h_new = (1.0 - z) * n + z * h
    return h_new, None, jnp.concatenate([r, z, n, u], axis=-1)


def _cell_backward(arch, res, h_prev, c_prev, c_new, dh, dc):
    """Gradients of one step. ``dh``/``dc`` flow into h'/c' (already zero on padded steps).

    Returns (dz_x (B,G·H) w.r.t. ``xw_t``, dz_h (B,G·H) w.r.t. ``h W_hh``, dh_extra (the direct
    h→h' path, GRU only, else None), dc_prev or None).
    """
    if arch == "rnn":
        da = dh * (1.0 - res * res)
        return da, da, None, None
    if arch == "lstm":
        i, f, g, o = jnp.split(res, 4, axis=-1)
        tc = jnp.tanh(c_new)
        dcb = dc + dh * o * (1.0 - tc * tc)
        dai = dcb * g * i * (1.0 - i)
        daf = dcb * c_prev * f * (1.0 - f)
        dag = dcb * i * (1.0 - g * g)
        dao = dh * tc * o * (1.0 - o)
        da = jnp.concatenate([dai, daf, dag, dao], axis=-1)
        return da, da, None, dcb * f
    r, z, n, u = jnp.split(res, 4, axis=-1)
    dn = dh * (1.0 - z)
    dan = dn * (1.0 - n * n)
    dar = dan * u * r * (1.0 - r)
    daz = dh * (h_prev - n) * z * (1.0 - z)
    dz_x = jnp.concatenate([dar, daz, dan], axis=-1)
    dz_h = jnp.concatenate([dar, daz, dan * r], axis=-1)
    return dz_x, dz_h, dh * z, None


# ----------------------------------------------------------------------------------------------
# Forward and backward loops over one block of steps.


def _forward_loop(arch, xw, mask, h0, c0, w_hh, b_hn, unroll):
    """Scan over ``xw (S,B,G·H)``; returns (hN, cN, hs (S,B,H), cs (S,B,H)|None, res (S,B,·))."""
    lstm = arch == "lstm"

    def body(carry, inputs):
        h, c = carry
        xw_t, m_t = inputs
        h_new, c_new, res = _cell_forward(arch, xw_t, h, c, w_hh, b_hn)
        m = m_t[:, None]
        h_new = jnp.where(m, h_new, h)
        if lstm:
            c_new = jnp.where(m, c_new, c)
        return (h_new, c_new), (h_new, c_new, res)

    (hN, cN), (hs, cs, res) = jax.lax.scan(body, (h0, c0), (xw, mask), unroll=unroll)
    return hN, cN, hs, cs, res


def _backward_loop(arch, res, hs, cs, h0, c0, mask, dhs, dhN, dcN, w_hh, unroll):
    """Reverse scan through one block. Returns (dh0, dc0, dz_x (S,B,G·H), dz_h (S,B,G·H))."""
    lstm, gru = arch == "lstm", arch == "gru"
    h_prev_all = jnp.concatenate([h0[None], hs[:-1]], axis=0)
    c_prev_all = jnp.concatenate([c0[None], cs[:-1]], axis=0) if lstm else None
    w_hh_t = w_hh.T

    def body(carry, inputs):
        dh, dc = carry
        res_t, h_prev, c_prev, c_t, m_t, dhs_t = inputs
        m = m_t[:, None]
        dh = dh + dhs_t
        zero = jnp.zeros_like(dh)
        dh_cell = jnp.where(m, dh, zero)
        dc_cell = jnp.where(m, dc, zero) if lstm else None
        dz_x, dz_h, dh_extra, dc_prev = _cell_backward(arch, res_t, h_prev, c_prev, c_t,
                                                       dh_cell, dc_cell)
        dh_prev = dz_h @ w_hh_t + jnp.where(m, zero, dh)
        if dh_extra is not None:
            dh_prev = dh_prev + dh_extra
        if lstm:
            dc_prev = dc_prev + jnp.where(m, zero, dc)
        outs = (dz_x, dz_h) if gru else (dz_x,)
        return (dh_prev, dc_prev), outs

    inputs = (res, h_prev_all, c_prev_all, cs, mask, dhs)
    (dh0, dc0), outs = jax.lax.scan(body, (dhN, dcN), inputs, reverse=True, unroll=unroll)
    dz_x = outs[0]
    dz_h = outs[1] if gru else dz_x
    return dh0, dc0, dz_x, dz_h, h_prev_all


def _project(xs, w_ih, bias):
    return jnp.einsum("tbd,dg->tbg", xs, w_ih) + bias


def _weight_grads(arch, xs, h_prev_all, dz_x, dz_h, w_ih):
    """The large matmuls over all steps of a block: dW_ih, dbias, dW_hh, db_hn, dxs."""
    dw_ih = jnp.einsum("tbd,tbg->dg", xs, dz_x)
    dbias = dz_x.sum((0, 1))
    dw_hh = jnp.einsum("tbh,tbg->hg", h_prev_all, dz_h)
    dxs = jnp.einsum("tbg,dg->tbd", dz_x, w_ih)
    H = h_prev_all.shape[-1]
    db_hn = dz_h[..., 2 * H:].sum((0, 1)) if arch == "gru" else None
    return dw_ih, dbias, dw_hh, db_hn, dxs


# ----------------------------------------------------------------------------------------------
# The custom_vjp: whole sequence (remat=False) or √T segments (remat=True).


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _layer(arch, segment, unroll, xs, w_ih, bias, w_hh, b_hn, mask, h0, c0):
    out, _ = _layer_fwd(arch, segment, unroll, xs, w_ih, bias, w_hh, b_hn, mask, h0, c0)
    return out


def _layer_fwd(arch, segment, unroll, xs, w_ih, bias, w_hh, b_hn, mask, h0, c0):
    if segment is None:
        xw = _project(xs, w_ih, bias)
        hN, cN, hs, cs, res = _forward_loop(arch, xw, mask, h0, c0, w_hh, b_hn, unroll)
        return (hs, hN, cN), (xs, w_ih, w_hh, mask, h0, c0, hs, cs, res)
    T = xs.shape[0]
    nseg = T // segment
    xs_s = xs.reshape(nseg, segment, *xs.shape[1:])
    mask_s = mask.reshape(nseg, segment, mask.shape[1])

    def seg_body(carry, inputs):
        h, c = carry
        xs_k, m_k = inputs
        hN, cN, hs_k, _, _ = _forward_loop(arch, _project(xs_k, w_ih, bias), m_k, h, c,
                                           w_hh, b_hn, unroll)
        return (hN, cN), (hs_k, h, c)

    (hN, cN), (hs_s, h_starts, c_starts) = jax.lax.scan(seg_body, (h0, c0), (xs_s, mask_s))
    hs = hs_s.reshape(T, *hs_s.shape[2:])
    return (hs, hN, cN), (xs, w_ih, bias, w_hh, b_hn, mask, h_starts, c_starts)


def _layer_bwd(arch, segment, unroll, saved, cotangents):
    dhs, dhN, dcN = cotangents
    if segment is None:
        xs, w_ih, w_hh, mask, h0, c0, hs, cs, res = saved
        dh0, dc0, dz_x, dz_h, h_prev_all = _backward_loop(arch, res, hs, cs, h0, c0, mask, dhs,
                                                          dhN, dcN, w_hh, unroll)
        dw_ih, dbias, dw_hh, db_hn, dxs = _weight_grads(arch, xs, h_prev_all, dz_x, dz_h, w_ih)
        return dxs, dw_ih, dbias, dw_hh, db_hn, None, dh0, dc0
    xs, w_ih, bias, w_hh, b_hn, mask, h_starts, c_starts = saved
    T = xs.shape[0]
    nseg = T // segment
    xs_s = xs.reshape(nseg, segment, *xs.shape[1:])
    mask_s = mask.reshape(nseg, segment, mask.shape[1])
    dhs_s = dhs.reshape(nseg, segment, *dhs.shape[1:])
    zeros = lambda a: None if a is None else jnp.zeros_like(a)
    acc0 = (zeros(w_ih), zeros(bias), zeros(w_hh), zeros(b_hn))

    def seg_body(carry, inputs):
        (dh, dc), acc = carry
        xs_k, m_k, dhs_k, h_k, c_k = inputs
        _, _, hs_k, cs_k, res_k = _forward_loop(arch, _project(xs_k, w_ih, bias), m_k, h_k, c_k,
                                                w_hh, b_hn, unroll)
        dh, dc, dz_x, dz_h, h_prev_k = _backward_loop(arch, res_k, hs_k, cs_k, h_k, c_k, m_k,
                                                      dhs_k, dh, dc, w_hh, unroll)
        grads = _weight_grads(arch, xs_k, h_prev_k, dz_x, dz_h, w_ih)
        acc = tuple(None if a is None else a + g for a, g in zip(acc, grads[:4], strict=True))
        return ((dh, dc), acc), grads[4]

    ((dh0, dc0), acc), dxs_s = jax.lax.scan(seg_body, ((dhN, dcN), acc0),
                                            (xs_s, mask_s, dhs_s, h_starts, c_starts),
                                            reverse=True)
    dw_ih, dbias, dw_hh, db_hn = acc
    return dxs_s.reshape(xs.shape), dw_ih, dbias, dw_hh, db_hn, None, dh0, dc0


_layer.defvjp(_layer_fwd, _layer_bwd)


def default_segment(T: int) -> int:
    """Segment length for ``remat=True``: ⌈√T⌉ (memory O(√T) per-step tensors, one extra forward)."""
    return max(1, math.isqrt(T - 1) + 1) if T > 1 else 1


def fused_layer(arch: str, params: dict, xs: jax.Array, mask: jax.Array | None, carry0: dict, *,
                unroll: int = 1, remat: bool = False, segment: int | None = None):
    """One recurrent layer, same contract as :func:`lstm_jax.recurrence.scan_layer`.

    Args:
      arch: ``"rnn"``, ``"lstm"`` or ``"gru"`` (reset-after), see :func:`fused_arch`.
      params: ``w_ih (D,G·H)``, ``w_hh (H,G·H)``, ``bias (G·H,)`` and for the GRU ``b_hn (H,)``.
      xs: ``(T, B, D)``; mask ``(T, B)`` bool or None; carry0 ``{"h": (B,H)[, "c": (B,H)]}``.
      unroll: ``lax.scan`` unroll factor of the forward and backward loops.
      remat: checkpoint in segments (module doc); ``segment`` defaults to ⌈√T⌉. T is padded
        with masked steps up to a multiple of ``segment`` (a masked step keeps the carry, so the
        result is exact).

    Returns:
      ``(final_carry, {"h": (T, B, H)})``.
    """
    T = xs.shape[0]
    if mask is None:
        mask = jnp.ones(xs.shape[:2], bool)
    h0 = carry0["h"]
    c0 = carry0["c"] if arch == "lstm" else jnp.zeros((0,), h0.dtype)
    b_hn = params.get("b_hn") if arch == "gru" else None
    seg = None
    xs_in, mask_in = xs, mask
    if remat:
        seg = min(T, segment or default_segment(T))
        pad = (-T) % seg
        if pad:
            xs_in = jnp.concatenate([xs, jnp.zeros((pad, *xs.shape[1:]), xs.dtype)])
            mask_in = jnp.concatenate([mask, jnp.zeros((pad, mask.shape[1]), bool)])
    if arch != "lstm":
        c0 = None
    hs, hN, cN = _layer(arch, seg, unroll, xs_in, params["w_ih"], params["bias"], params["w_hh"],
                        b_hn, mask_in, h0, c0)
    final = {"h": hN} if arch != "lstm" else {"h": hN, "c": cN}
    return final, {"h": hs[:T]}
