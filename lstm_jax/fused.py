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

Memory is what made the first version of this module slow on a CPU (1.4–2.1× PyTorch's LSTM
step): every call allocates its temporaries afresh, and each fresh page costs a page fault and
zeroing. So one ``(T, B, G·H)`` buffer is used three times, updated in place: it holds
``x W_ih``, then the forward loop writes each step's activated gates over that step's row, then
the backward loop writes each step's ``dz`` over the gates it has just read. Besides it, the LSTM
keeps one ``(T, B, H)`` tensor (the cell state each step reads) and recomputes ``tanh c'`` in the
backward loop; the GRU keeps ``u``. For the LSTM at B=64, H=128, T=100 that cut the step's
temporaries from 56 to 22 MiB and its minor page faults from ~14,000 to ~700 per call
(``benchmarks/README.md``).

With ``remat=True`` the sequence is cut into segments of
``segment ≈ √T`` steps (Chen et al. 2016, "Training deep nets with sublinear memory cost"):
the forward pass keeps only the carries at segment boundaries, and the backward pass recomputes
each segment's input projection and gates just before running back through it, so activation
memory is O(T/S + S) per-step tensors instead of O(T) (the inputs ``x``, the outputs ``h`` and
``dx`` stay O(T)).

With ``matmul_dtype="bfloat16"`` (mixed precision) the input projection and the loops' per-step
products ``h W_hh`` and ``dz W_hhᵀ`` round their operands to bfloat16 and accumulate in float32;
everything else, the weight-gradient products included, stays float32 (on XLA:CPU with AMX the
per-step products get 1.3–2.9× faster, bfloat16 weight-gradient products slower;
``benchmarks/README.md``).

With a data mesh in context (``jax.set_mesh``, as the training step and the benchmarks set it)
and a batch that splits evenly over its ``"data"`` axis, each device runs the layer on its share
of the batch (``jax.shard_map``) and the weight gradients are summed over devices. On a CPU split
into one device per core (``lstm-jax --cpu-devices N``), that lets each core run its own
recurrence instead of sharing every small per-step product with the other core.

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
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from lstm_jax.cells import GRUCell, LSTMCell, RNNCell
from lstm_jax.sharding import AXIS, mesh_to_split


def fused_arch(step) -> str | None:
    """The architecture whose step ``step`` is, if the fused path supports it, else None."""
    return {RNNCell.step: "rnn", LSTMCell.step: "lstm", GRUCell.step: "gru"}.get(step)


# ----------------------------------------------------------------------------------------------
# One step forward (returns the residuals the backward step needs) and one step backward.


def _block_mask(a, block: int, blocks: int = 4):
    """``(G·H,)``: 1 on the columns of gate block ``block`` of ``a``'s last axis, 0 elsewhere."""
    H = a.shape[-1] // blocks
    return (jnp.arange(blocks * H) // H == block).astype(a.dtype)


def _dot(a, b, mm, contract=((1,), (0,))):
    """``a · b`` contracting ``contract``, in ``a``'s dtype.

    ``mm`` is the matmul dtype: None multiplies in the operands' dtype; ``jnp.bfloat16`` rounds
    both operands to it and accumulates in ``a``'s dtype (mixed precision, as on TPUs and in
    PyTorch's autocast). The caller casts weights once, outside the loops.
    """
    if mm is None:
        return jax.lax.dot_general(a, b, (contract, ((), ())))
    return jax.lax.dot_general(a.astype(mm), b.astype(mm), (contract, ((), ())),
                               preferred_element_type=a.dtype)


def _lstm_gates(a):
    """``[σ(a_i), σ(a_f), tanh(a_g), σ(a_o)]`` for pre-activations ``a (B, 4H)``.

    One elementwise expression over all 4H columns, with ``tanh x = 2σ(2x) − 1`` for the
    candidate block: XLA:CPU then emits one kernel, where four slices and a concatenation cost
    five kernels per step inside the loop (forward loop 56.6 → 46.2 ms at B=64, H=256, T=100).
    """
    k = 1.0 + _block_mask(a, 2)  # 1 for the σ gates, 2 for the candidate
    return jax.nn.sigmoid(a * k) * k - (k - 1.0)


def _cell_forward(arch, xw_t, h, c, w_hh, b_hn, mm=None):
    """One step. Returns (h', c' or None, big, small).

    ``big`` (B, G·H) or None is the residual written over ``xw_t`` in place; ``small`` is a tuple of
    (B, H) residuals stacked by the scan. :func:`_cell_backward` reads both.
    """
    if arch == "rnn":
        return jnp.tanh(xw_t + _dot(h, w_hh, mm)), None, None, ()
    if arch == "lstm":
        gates = _lstm_gates(xw_t + _dot(h, w_hh, mm))
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        c_new = f * c + i * g
        return o * jnp.tanh(c_new), c_new, gates, (c,)
    # gru (reset-after)
    xr, xz, xn = jnp.split(xw_t, 3, axis=-1)
    hr, hz, hn = jnp.split(_dot(h, w_hh, mm), 3, axis=-1)
    r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
    u = hn + b_hn
    n = jnp.tanh(xn + r * u)
    h_new = (1.0 - z) * n + z * h
    return h_new, None, jnp.concatenate([r, z, n], axis=-1), (u,)


def _cell_backward(arch, big, small, h_t, c_new, dh, dc):
    """Gradients of one step. ``dh``/``dc`` flow into h'/c' (already zero on padded steps).

    ``h_t`` is the step's output h' (tanh RNN) or its input h (GRU), ``c_new`` the LSTM's c'.

    Returns (dz_x (B,G·H) w.r.t. ``xw_t``, dz_h (B,G·H) w.r.t. ``h W_hh`` or None if equal to
    dz_x, dh_extra (the direct h→h' path, GRU only, else None), dc_prev or None).
    """
    if arch == "rnn":
        return dh * (1.0 - h_t * h_t), None, None, None
    if arch == "lstm":
        (c_prev,) = small
        tc = jnp.tanh(c_new)
        i, f, g, o = jnp.split(big, 4, axis=-1)
        dcb = dc + dh * o * (1.0 - tc * tc)
        # [dcb g, dcb c, dcb i, dh tanh c'] times each gate's derivative in one (B, 4H) pass:
        # (1 − a)(a + e), e = 1 on the candidate's columns, is σ(1 − σ) for the gates and
        # (1 − g)(1 + g) = tanh' for the candidate. Before: four (B, H) products, each a kernel.
        upstream = jnp.concatenate([dcb * g, dcb * c_prev, dcb * i, dh * tc], axis=-1)
        da = upstream * (1.0 - big) * (big + _block_mask(big, 2))
        return da, None, None, dcb * f
    (u,) = small
    h_prev = h_t
    r, z, n = jnp.split(big, 3, axis=-1)
    dn = dh * (1.0 - z)
    dan = dn * (1.0 - n * n)
    dar = dan * u * r * (1.0 - r)
    daz = dh * (h_prev - n) * z * (1.0 - z)
    dz_x = jnp.concatenate([dar, daz, dan], axis=-1)
    dz_h = jnp.concatenate([dar, daz, dan * r], axis=-1)
    return dz_x, dz_h, dh * z, None


# ----------------------------------------------------------------------------------------------
# Forward and backward loops over one block of steps.


def _row(buf, t):
    """``buf[t]`` (B, ·); t is clamped into range, as ``dynamic_slice`` does."""
    return jax.lax.dynamic_index_in_dim(buf, t, keepdims=False)


def _forward_loop(arch, xw, bias, mask, h0, c0, w_hh, b_hn, unroll, mm=None):
    """Scan over ``xw (S,B,G·H)``.

    Returns (hN, cN, hs (S,B,H), buf, small): ``buf`` is ``xw``'s buffer with each step's ``big``
    residual written over it in place (``xw`` itself for the tanh RNN), ``small`` the stacked
    (S,B,H) residuals.
    """
    lstm = arch == "lstm"

    # Row t is read and overwritten in the same step; XLA keeps this in place (the written gates
    # are computed from the row read, so the read comes first). The backward loop cannot do the
    # same, see there.
    def body(carry, inputs):
        h, c, buf = carry
        t, m_t = inputs
        h_new, c_new, big, small = _cell_forward(arch, _row(buf, t) + bias, h, c, w_hh, b_hn, mm)
        if big is not None:
            buf = jax.lax.dynamic_update_index_in_dim(buf, big, t, 0)
        if m_t is not None:
            m = m_t[:, None]
            h_new = jnp.where(m, h_new, h)
            if lstm:
                c_new = jnp.where(m, c_new, c)
        return (h_new, c_new, buf), (h_new, small)

    steps = jnp.arange(xw.shape[0])
    (hN, cN, buf), (hs, small) = jax.lax.scan(body, (h0, c0, xw), (steps, mask), unroll=unroll)
    return hN, cN, hs, buf, small


def _backward_loop(arch, buf, small, h_in, cN, mask, dhs, dhN, dcN, w_hh, unroll, mm=None):
    """Reverse scan through one block.

    Reads each step's ``big`` residual from ``buf`` and writes that step's dz_x over it in place.
    Returns (dh0, dc0, dz_x (S,B,G·H), dz_h (S,B,G·H)).
    """
    lstm = arch == "lstm"

    # Row t−1 is read after row t is written, and carried into the next step: then the write is
    # the old buffer's only reader, and XLA updates it in place. (Reading row t within the step,
    # as the forward loop does, made XLA copy the whole buffer every step, 8× slower; see
    # benchmarks/README.md.) The LSTM carries c' back: step t's c' is step t+1's c, read from
    # ``small`` one step earlier.
    def body(carry, inputs):
        dh, dc, buf, big_t, c_new = carry
        t, small_t, h_t, m_t, dhs_t = inputs
        dh = dh + dhs_t
        if m_t is None:
            dh_cell, dc_cell = dh, dc
        else:
            m = m_t[:, None]
            zero = jnp.zeros_like(dh)
            dh_cell = jnp.where(m, dh, zero)
            dc_cell = jnp.where(m, dc, zero) if lstm else None
        dz_x, dz_h, dh_extra, dc_prev = _cell_backward(arch, big_t, small_t, h_t, c_new,
                                                       dh_cell, dc_cell)
        buf = jax.lax.dynamic_update_index_in_dim(buf, dz_x, t, 0)
        big_next = _row(buf, jnp.maximum(t - 1, 0))
        dh_prev = _dot(dz_x if dz_h is None else dz_h, w_hh, mm, ((1,), (1,)))
        if m_t is not None:
            dh_prev = dh_prev + jnp.where(m, zero, dh)
            if lstm:
                dc_prev = dc_prev + jnp.where(m, zero, dc)
        if dh_extra is not None:
            dh_prev = dh_prev + dh_extra
        c_prev = small_t[0] if lstm else None
        return (dh_prev, dc_prev, buf, big_next, c_prev), dz_h

    steps = jnp.arange(buf.shape[0])
    inputs = (steps, small, h_in, mask, dhs)
    (dh0, dc0, dz_x, _, _), dz_h = jax.lax.scan(body, (dhN, dcN, buf, buf[-1], cN), inputs,
                                                reverse=True, unroll=unroll)
    return dh0, dc0, dz_x, dz_x if dz_h is None else dz_h


def _project(xs, w_ih, mm=None):
    """``xs W_ih`` for all steps, one matmul; the bias is added inside the forward loop (adding it
    here would cost a second (S, B, G·H) buffer)."""
    if mm is None:
        return jnp.einsum("tbd,dg->tbg", xs, w_ih)
    return jnp.einsum("tbd,dg->tbg", xs.astype(mm), w_ih.astype(mm),
                      preferred_element_type=xs.dtype)


def _h_prev(h0, hs):
    """``(S, B, H)``: the h each step reads, ``[h0, hs[0], …, hs[S−2]]``."""
    return jnp.concatenate([h0[None], hs[:-1]])


def _weight_grads(arch, xs, h_prev, dz_x, dz_h, w_ih):
    """The large matmuls over all steps of a block: dW_ih, dbias, dW_hh, db_hn, dxs.

    Written on 2-D views, ``(dzᵀ x)ᵀ``: an einsum contracting (S, B) at once made XLA:CPU
    transpose both operands first, 2× slower.
    """
    G, H = dz_x.shape[-1], h_prev.shape[-1]
    dz_x2, dz_h2 = dz_x.reshape(-1, G), dz_h.reshape(-1, G)
    dw_ih = (dz_x2.T @ xs.reshape(-1, xs.shape[-1])).T
    dbias = dz_x2.sum(0)
    dw_hh = (dz_h2.T @ h_prev.reshape(-1, H)).T
    dxs = (dz_x2 @ w_ih.T).reshape(*xs.shape)
    db_hn = dz_h2[:, 2 * H:].sum(0) if arch == "gru" else None
    return dw_ih, dbias, dw_hh, db_hn, dxs


def _block_backward(arch, xs, w_ih, w_hh, mask, h0, hs, cN, buf, small, dhs, dhN, dcN, unroll,
                    mm):
    """The backward loop through one block, then its weight gradients.

    ``w_ih``/``w_hh`` are already in the matmul dtype ``mm``; only the loop's per-step products
    use it. The weight gradients and ``dxs`` are products in the cotangents' dtype (on XLA:CPU,
    bfloat16 made those large products slower, ``benchmarks/README.md``).

    Returns (dh0, dc0, (dW_ih, dbias, dW_hh, db_hn, dxs)).
    """
    h_prev = _h_prev(h0, hs)
    h_in = {"rnn": hs, "gru": h_prev}.get(arch)  # what the backward loop reads as h_t
    dh0, dc0, dz_x, dz_h = _backward_loop(arch, buf, small, h_in, cN, mask, dhs, dhN, dcN, w_hh,
                                          unroll, mm)
    return dh0, dc0, _weight_grads(arch, xs, h_prev, dz_x, dz_h, w_ih)


# ----------------------------------------------------------------------------------------------
# The custom_vjp: whole sequence (remat=False) or √T segments (remat=True).


def _in_matmul_dtype(mm, *weights):
    """The weights cast to the matmul dtype once, outside the loops (unchanged if ``mm`` is None)."""
    return tuple(w if mm is None else w.astype(mm) for w in weights)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _layer(arch, segment, unroll, mm, xs, w_ih, bias, w_hh, b_hn, mask, h0, c0):
    out, _ = _layer_fwd(arch, segment, unroll, mm, xs, w_ih, bias, w_hh, b_hn, mask, h0, c0)
    return out


def _layer_fwd(arch, segment, unroll, mm, xs, w_ih, bias, w_hh, b_hn, mask, h0, c0):
    w_ih, w_hh = _in_matmul_dtype(mm, w_ih, w_hh)
    if segment is None:
        xw = _project(xs, w_ih, mm)
        hN, cN, hs, buf, small = _forward_loop(arch, xw, bias, mask, h0, c0, w_hh, b_hn, unroll,
                                               mm)
        return (hs, hN, cN), (xs, w_ih, w_hh, mask, h0, hs, cN, buf, small)
    T = xs.shape[0]
    nseg = T // segment
    xs_s = xs.reshape(nseg, segment, *xs.shape[1:])
    mask_s = None if mask is None else mask.reshape(nseg, segment, mask.shape[1])

    def seg_body(carry, inputs):
        h, c = carry
        xs_k, m_k = inputs
        hN, cN, hs_k, _, _ = _forward_loop(arch, _project(xs_k, w_ih, mm), bias, m_k, h, c,
                                           w_hh, b_hn, unroll, mm)
        return (hN, cN), (hs_k, h, c)

    (hN, cN), (hs_s, h_starts, c_starts) = jax.lax.scan(seg_body, (h0, c0), (xs_s, mask_s))
    hs = hs_s.reshape(T, *hs_s.shape[2:])
    return (hs, hN, cN), (xs, w_ih, bias, w_hh, b_hn, mask, h_starts, c_starts)


def _layer_bwd(arch, segment, unroll, mm, saved, cotangents):
    """The weights in ``saved`` are already in the matmul dtype; their gradients come out in the
    cotangents' dtype."""
    dhs, dhN, dcN = cotangents
    if segment is None:
        xs, w_ih, w_hh, mask, h0, hs, cN, buf, small = saved
        dh0, dc0, (dw_ih, dbias, dw_hh, db_hn, dxs) = _block_backward(
            arch, xs, w_ih, w_hh, mask, h0, hs, cN, buf, small, dhs, dhN, dcN, unroll, mm)
        return dxs, dw_ih, dbias, dw_hh, db_hn, None, dh0, dc0
    xs, w_ih, bias, w_hh, b_hn, mask, h_starts, c_starts = saved
    T = xs.shape[0]
    nseg = T // segment
    xs_s = xs.reshape(nseg, segment, *xs.shape[1:])
    mask_s = None if mask is None else mask.reshape(nseg, segment, mask.shape[1])
    dhs_s = dhs.reshape(nseg, segment, *dhs.shape[1:])
    zeros = lambda a: None if a is None else jnp.zeros(a.shape, dhs.dtype)
    acc0 = (zeros(w_ih), zeros(bias), zeros(w_hh), zeros(b_hn))

    def seg_body(carry, inputs):
        (dh, dc), acc = carry
        xs_k, m_k, dhs_k, h_k, c_k = inputs
        _, cN_k, hs_k, buf_k, small_k = _forward_loop(arch, _project(xs_k, w_ih, mm), bias, m_k,
                                                      h_k, c_k, w_hh, b_hn, unroll, mm)
        dh, dc, grads = _block_backward(arch, xs_k, w_ih, w_hh, m_k, h_k, hs_k, cN_k, buf_k,
                                        small_k, dhs_k, dh, dc, unroll, mm)
        acc = tuple(None if a is None else a + g for a, g in zip(acc, grads[:4], strict=True))
        return ((dh, dc), acc), grads[4]

    ((dh0, dc0), acc), dxs_s = jax.lax.scan(seg_body, ((dhN, dcN), acc0),
                                            (xs_s, mask_s, dhs_s, h_starts, c_starts),
                                            reverse=True)
    dw_ih, dbias, dw_hh, db_hn = acc
    return dxs_s.reshape(xs.shape), dw_ih, dbias, dw_hh, db_hn, None, dh0, dc0


_layer.defvjp(_layer_fwd, _layer_bwd)


def _split_batch(layer, mesh):
    """``layer`` run on each device's share of the batch (``jax.shard_map`` over the data axis).

    Every row of the batch is an independent recurrence, so this is exact; the replicated weights'
    gradients are summed over devices by shard_map's transpose. Left to the partitioner
    (GSPMD), the fused layer's 2-D views ``(T·B, G·H)`` of batch-sharded tensors made it
    all-gather inside the step: 2 CPU devices, LSTM H=128, T=100, 125 ms against 62 ms here.
    """
    b = P(None, AXIS)  # (T, B, ...) time-major
    in_specs = (b, P(), P(), P(), P(), b, P(AXIS), P(AXIS))
    out_specs = (b, P(AXIS), P(AXIS))
    return jax.shard_map(layer, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                         check_vma=False)


def default_segment(T: int) -> int:
    """Segment length for ``remat=True``: ⌈√T⌉ (memory O(√T) per-step tensors, one extra forward)."""
    return max(1, math.isqrt(T - 1) + 1) if T > 1 else 1


def fused_layer(arch: str, params: dict, xs: jax.Array, mask: jax.Array | None, carry0: dict, *,
                unroll: int = 1, remat: bool = False, segment: int | None = None,
                matmul_dtype: str | None = None):
    """One recurrent layer, same contract as :func:`lstm_jax.recurrence.scan_layer`.

    Args:
      arch: ``"rnn"``, ``"lstm"`` or ``"gru"`` (reset-after), see :func:`fused_arch`.
      params: ``w_ih (D,G·H)``, ``w_hh (H,G·H)``, ``bias (G·H,)`` and for the GRU ``b_hn (H,)``.
      xs: ``(T, B, D)``; mask ``(T, B)`` bool or None; carry0 ``{"h": (B,H)[, "c": (B,H)]}``.
      unroll: ``lax.scan`` unroll factor of the forward and backward loops. Keep 1: with the
        in-place buffer, ``unroll=2`` made XLA copy the whole buffer every step (10× slower).
      remat: checkpoint in segments (module doc); ``segment`` defaults to ⌈√T⌉. T is padded
        with masked steps up to a multiple of ``segment`` (a masked step keeps the carry, so the
        result is exact).
      matmul_dtype: None (every product in ``xs``'s dtype) or ``"bfloat16"``: mixed precision.
        The forward products (input projection, per-step ``h W_hh``) and the backward loop's
        per-step ``dz W_hhᵀ`` round their operands to bfloat16 and accumulate in ``xs``'s dtype;
        the gates, the cell state, every carry and the weight gradients stay in ``xs``'s dtype.
        The gradient treats the rounding as the identity (straight-through): it is the exact
        gradient of the network with bfloat16-rounded weights, up to rounding of h and dz.

    Returns:
      ``(final_carry, {"h": (T, B, H)})``.
    """
    T = xs.shape[0]
    h0 = carry0["h"]
    c0 = carry0["c"] if arch == "lstm" else jnp.zeros((0,), h0.dtype)
    b_hn = params.get("b_hn") if arch == "gru" else None
    seg = None
    xs_in, mask_in = xs, mask
    if remat:
        seg = min(T, segment or default_segment(T))
        pad = (-T) % seg
        if pad:
            if mask is None:
                mask = jnp.ones(xs.shape[:2], bool)
            xs_in = jnp.concatenate([xs, jnp.zeros((pad, *xs.shape[1:]), xs.dtype)])
            mask_in = jnp.concatenate([mask, jnp.zeros((pad, mask.shape[1]), bool)])
    if arch != "lstm":
        c0 = None
    mm = None if matmul_dtype is None else jnp.dtype(matmul_dtype)
    layer = partial(_layer, arch, seg, unroll, mm)
    mesh = mesh_to_split(h0.shape[0])
    if mesh is not None:
        layer = _split_batch(layer, mesh)
    hs, hN, cN = layer(xs_in, params["w_ih"], params["bias"], params["w_hh"], b_hn, mask_in, h0,
                       c0)
    final = {"h": hN} if arch != "lstm" else {"h": hN, "c": cN}
    return final, {"h": hs[:T]}


# ----------------------------------------------------------------------------------------------
# For the probes: the same forward loop, with what it saves for the backward pass returned.

#: Where each gate the cells report sits in the ``big`` residual's G blocks.
GATE_BLOCKS = {"rnn": {}, "lstm": {"i": 0, "f": 1, "o": 3}, "gru": {"r": 0, "z": 1}}


class StepResiduals(NamedTuple):
    """What the forward loop saves of each step, stacked over steps (leading axis T).

    Fields an architecture does not use are None (see :func:`forward_with_residuals`)."""

    big: jax.Array | None  # (T, B, G·H) activated gates: LSTM [i, f, g, o], GRU [r, z, n]
    small: tuple  # LSTM (c_{t−1},), GRU (u = h_{t−1} U_n + b_hn,), RNN ()
    h: jax.Array | None  # (T, B, H): tanh RNN h_t, GRU h_{t−1}
    c_new: jax.Array | None  # (T, B, H): LSTM c_t
    mask: jax.Array | None  # (T, B) bool


def forward_with_residuals(arch: str, params: dict, xs: jax.Array, mask: jax.Array | None,
                           carry0: dict):
    """The forward loop of the fused layer, not differentiated: for the probes.

    Returns ``(hs (T,B,H), cs (T,B,H) or None, StepResiduals)``: ``hs``/``cs`` the carry after
    each step (what :func:`lstm_jax.recurrence.scan_layer` returns), then the residuals.
    """
    lstm = arch == "lstm"
    h0 = carry0["h"]
    _, cN, hs, buf, small = _forward_loop(arch, _project(xs, params["w_ih"]), params["bias"],
                                          mask, h0, carry0["c"] if lstm else None,
                                          params["w_hh"], params.get("b_hn"), 1)
    cs = jnp.concatenate([small[0][1:], cN[None]]) if lstm else None
    h_res = {"rnn": hs, "gru": _h_prev(h0, hs)}.get(arch)
    return hs, cs, StepResiduals(None if arch == "rnn" else buf, small, h_res, cs, mask)
