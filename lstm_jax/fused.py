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

Each cell's per-step factors (one step forward returning the residuals the backward step
needs, and one step backward) live with the cell, in its :class:`~lstm_jax.cells.FusedPath`
(``lstm_jax/cells/lstm.py`` etc., derivations in each module's docstring); this module holds the
loops, the buffer discipline and the custom VJP, which are the same for every cell. A cell
without a fused path (the reset-before GRU, IndRNN, expRNN, the LRU) makes :func:`fused_arch`
return None, and the caller falls back to the plain scan.
"""

from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from lstm_jax.cells.base import matmul as _dot
from lstm_jax.cells.kernel import CellStep, FusedPath, StepResiduals, fused_path
from lstm_jax.cells.registry import cell_class
from lstm_jax.sharding import AXIS, mesh_to_split


def fused_arch(step) -> FusedPath | None:
    """The fused fast path of ``step`` if the cell offers one, else None (plain scan)."""
    return fused_path(step)


def _resolve(cell) -> CellStep:
    """A registered name (its default configuration) or a :class:`CellStep`."""
    return cell_class(cell).kernel() if isinstance(cell, str) else cell


# ----------------------------------------------------------------------------------------------
# Forward and backward loops over one block of steps.


def _row(buf, t):
    """``buf[t]`` (B, ·); t is clamped into range, as ``dynamic_slice`` does."""
    return jax.lax.dynamic_index_in_dim(buf, t, keepdims=False)


def _forward_loop(fp, xw, bias, mask, h0, c0, w_hh, extra, unroll, mm=None, emit_c=False):
    """Scan over ``xw (S,B,G·H)``; a cell state is carried when ``c0`` is not None.

    Returns (hN, cN, hs (S,B,H), buf, small) and, with ``emit_c``, also cs (S,B,H) or None:
    ``buf`` is ``xw``'s buffer with each step's ``big`` residual written over it in place (``xw``
    itself for a cell whose step writes none, the tanh RNN), ``small`` the stacked (S,B,H)
    residuals.
    """
    lstm = c0 is not None

    # Row t is read and overwritten in the same step; XLA keeps this in place (the written gates
    # are computed from the row read, so the read comes first). The backward loop cannot do the
    # same, see there.
    def body(carry, inputs):
        h, c, buf = carry
        t, m_t = inputs
        h_new, c_new, big, small = fp.forward(_row(buf, t) + bias, h, c, w_hh, extra, mm)
        if big is not None:
            buf = jax.lax.dynamic_update_index_in_dim(buf, big, t, 0)
        if m_t is not None:
            m = m_t[:, None]
            h_new = jnp.where(m, h_new, h)
            if lstm:
                c_new = jnp.where(m, c_new, c)
        return (h_new, c_new, buf), (h_new, small, c_new if emit_c else None)

    steps = jnp.arange(xw.shape[0])
    (hN, cN, buf), (hs, small, cs) = jax.lax.scan(body, (h0, c0, xw), (steps, mask),
                                                  unroll=unroll)
    if emit_c:
        return hN, cN, hs, buf, small, cs
    return hN, cN, hs, buf, small


def _backward_loop(fp, buf, small, h_in, cN, mask, dhs, dhN, dcN, w_hh, extra, unroll, mm=None):
    """Reverse scan through one block.

    Reads each step's ``big`` residual from ``buf`` and writes that step's dz_x over it in place.
    Returns (dh0, dc0, dz_x (S,B,G·H), dz_h (S,B,G·H)).
    """
    lstm = cN is not None

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
        dz_x, dz_h, dh_extra, dc_prev = fp.backward(big_t, small_t, h_t, c_new, dh_cell,
                                                   dc_cell, extra)
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


def _weight_grads(fp, xs, h_prev, dz_x, dz_h, w_ih, small, cN):
    """The large matmuls over all steps of a block: dW_ih, dbias, dW_hh, dxs, and the gradients
    of the cell's extra parameters (``FusedPath.extra_grad``, reductions over all steps).

    Written on 2-D views, ``(dzᵀ x)ᵀ``: an einsum contracting (S, B) at once made XLA:CPU
    transpose both operands first, 2× slower.
    """
    G, H = dz_x.shape[-1], h_prev.shape[-1]
    dz_x2, dz_h2 = dz_x.reshape(-1, G), dz_h.reshape(-1, G)
    dw_ih = (dz_x2.T @ xs.reshape(-1, xs.shape[-1])).T
    dbias = dz_x2.sum(0)
    dw_hh = (dz_h2.T @ h_prev.reshape(-1, H)).T
    dxs = (dz_x2 @ w_ih.T).reshape(*xs.shape)
    dextra = tuple(fp.extra_grad(dz_x, dz_h, small, cN)) if fp.extra else ()
    return dw_ih, dbias, dw_hh, dextra, dxs


def _block_backward(fp, xs, w_ih, w_hh, extra, mask, h0, hs, cN, buf, small, dhs, dhN, dcN,
                    unroll, mm):
    """The backward loop through one block, then its weight gradients.

    ``w_ih``/``w_hh`` are already in the matmul dtype ``mm``; only the loop's per-step products
    use it. The weight gradients and ``dxs`` are products in the cotangents' dtype (on XLA:CPU,
    bfloat16 made those large products slower, ``benchmarks/README.md``).

    Returns (dh0, dc0, (dW_ih, dbias, dW_hh, dextra, dxs)).
    """
    h_prev = _h_prev(h0, hs)
    h_in = {"new": hs, "prev": h_prev}.get(fp.h_residual)  # what the backward loop reads as h_t
    dh0, dc0, dz_x, dz_h = _backward_loop(fp, buf, small, h_in, cN, mask, dhs, dhN, dcN, w_hh,
                                          extra, unroll, mm)
    return dh0, dc0, _weight_grads(fp, xs, h_prev, dz_x, dz_h, w_ih, small, cN)


# ----------------------------------------------------------------------------------------------
# The custom_vjp: whole sequence (remat=False) or √T segments (remat=True).


def _in_matmul_dtype(mm, *weights):
    """The weights cast to the matmul dtype once, outside the loops (unchanged if ``mm`` is None)."""
    return tuple(w if mm is None else w.astype(mm) for w in weights)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def _layer(fp, segment, unroll, mm, xs, w_ih, bias, w_hh, extra, mask, h0, c0):
    out, _ = _layer_fwd(fp, segment, unroll, mm, xs, w_ih, bias, w_hh, extra, mask, h0, c0)
    return out


def _layer_fwd(fp, segment, unroll, mm, xs, w_ih, bias, w_hh, extra, mask, h0, c0):
    w_ih, w_hh = _in_matmul_dtype(mm, w_ih, w_hh)
    if segment is None:
        xw = _project(xs, w_ih, mm)
        hN, cN, hs, buf, small = _forward_loop(fp, xw, bias, mask, h0, c0, w_hh, extra, unroll,
                                               mm)
        return (hs, hN, cN), (xs, w_ih, w_hh, extra, mask, h0, hs, cN, buf, small)
    T = xs.shape[0]
    nseg = T // segment
    xs_s = xs.reshape(nseg, segment, *xs.shape[1:])
    mask_s = None if mask is None else mask.reshape(nseg, segment, mask.shape[1])

    def seg_body(carry, inputs):
        h, c = carry
        xs_k, m_k = inputs
        hN, cN, hs_k, _, _ = _forward_loop(fp, _project(xs_k, w_ih, mm), bias, m_k, h, c,
                                           w_hh, extra, unroll, mm)
        return (hN, cN), (hs_k, h, c)

    (hN, cN), (hs_s, h_starts, c_starts) = jax.lax.scan(seg_body, (h0, c0), (xs_s, mask_s))
    hs = hs_s.reshape(T, *hs_s.shape[2:])
    return (hs, hN, cN), (xs, w_ih, bias, w_hh, extra, mask, h_starts, c_starts)


def _layer_bwd(fp, segment, unroll, mm, saved, cotangents):
    """The weights in ``saved`` are already in the matmul dtype; their gradients come out in the
    cotangents' dtype."""
    dhs, dhN, dcN = cotangents
    if segment is None:
        xs, w_ih, w_hh, extra, mask, h0, hs, cN, buf, small = saved
        dh0, dc0, (dw_ih, dbias, dw_hh, dextra, dxs) = _block_backward(
            fp, xs, w_ih, w_hh, extra, mask, h0, hs, cN, buf, small, dhs, dhN, dcN, unroll, mm)
        return dxs, dw_ih, dbias, dw_hh, dextra, None, dh0, dc0
    xs, w_ih, bias, w_hh, extra, mask, h_starts, c_starts = saved
    T = xs.shape[0]
    nseg = T // segment
    xs_s = xs.reshape(nseg, segment, *xs.shape[1:])
    mask_s = None if mask is None else mask.reshape(nseg, segment, mask.shape[1])
    dhs_s = dhs.reshape(nseg, segment, *dhs.shape[1:])
    zeros = lambda a: None if a is None else jnp.zeros(a.shape, dhs.dtype)
    acc0 = (zeros(w_ih), zeros(bias), zeros(w_hh), tuple(zeros(e) for e in extra))

    def seg_body(carry, inputs):
        (dh, dc), acc = carry
        xs_k, m_k, dhs_k, h_k, c_k = inputs
        _, cN_k, hs_k, buf_k, small_k = _forward_loop(fp, _project(xs_k, w_ih, mm), bias, m_k,
                                                      h_k, c_k, w_hh, extra, unroll, mm)
        dh, dc, grads = _block_backward(fp, xs_k, w_ih, w_hh, extra, m_k, h_k, hs_k, cN_k,
                                        buf_k, small_k, dhs_k, dh, dc, unroll, mm)
        acc = jax.tree.map(lambda a, g: a + g, acc, grads[:4])
        return ((dh, dc), acc), grads[4]

    ((dh0, dc0), acc), dxs_s = jax.lax.scan(seg_body, ((dhN, dcN), acc0),
                                            (xs_s, mask_s, dhs_s, h_starts, c_starts),
                                            reverse=True)
    dw_ih, dbias, dw_hh, dextra = acc
    return dxs_s.reshape(xs.shape), dw_ih, dbias, dw_hh, dextra, None, dh0, dc0


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


def fused_layer(cell, params: dict, xs: jax.Array, mask: jax.Array | None, carry0: dict, *,
                unroll: int = 1, remat: bool = False, segment: int | None = None,
                matmul_dtype: str | None = None):
    """One recurrent layer, same contract as :func:`lstm_jax.recurrence.scan_layer`.

    Args:
      cell: a cell's :class:`~lstm_jax.cells.CellStep` with a fused path (``step_fn(config)``),
        or a registered name (its default configuration), e.g. ``"lstm"``.
      params: ``w_ih (D,G·H)``, ``w_hh (H,G·H)``, ``bias (G·H,)`` and the fused path's ``extra``
        parameters, if any (GRU ``b_hn (H,)``; the peephole LSTM's ``p_i, p_f, p_o (H,)``).
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
    step = _resolve(cell)
    fp = _require(step)
    T = xs.shape[0]
    h0 = carry0["h"]
    c0 = carry0["c"] if step.has_cell_state else None
    extra = tuple(params[n] for n in fp.extra)
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
    mm = None if matmul_dtype is None else jnp.dtype(matmul_dtype)
    layer = partial(_layer, fp, seg, unroll, mm)
    mesh = mesh_to_split(h0.shape[0])
    if mesh is not None:
        layer = _split_batch(layer, mesh)
    hs, hN, cN = layer(xs_in, params["w_ih"], params["bias"], params["w_hh"], extra, mask_in, h0,
                       c0)
    final = {"h": hN, "c": cN} if step.has_cell_state else {"h": hN}
    return final, {"h": hs[:T]}


def _require(step) -> FusedPath:
    fp = fused_path(step)
    if fp is None:
        from lstm_jax.errors import UserError

        raise UserError(f"{getattr(step, 'fn', step)!r} has no fused path; run it with "
                        "lstm_jax.recurrence.scan_layer(impl='scan')")
    return fp


# ----------------------------------------------------------------------------------------------
# For the probes: the same forward loop, with what it saves for the backward pass returned.


def gate_blocks(cell) -> dict[str, int]:
    """Where each gate the cell reports sits in the ``big`` residual's G blocks."""
    return dict(_require(_resolve(cell)).gate_blocks)


def forward_with_residuals(cell, params: dict, xs: jax.Array, mask: jax.Array | None,
                           carry0: dict):
    """The forward loop of the fused layer, not differentiated: for the probes.

    ``cell`` as in :func:`fused_layer`. Returns ``(hs (T,B,H), cs (T,B,H) or None,
    StepResiduals)``: ``hs``/``cs`` the carry after each step (what
    :func:`lstm_jax.recurrence.scan_layer` returns), then the residuals.
    """
    step = _resolve(cell)
    fp = _require(step)
    h0 = carry0["h"]
    c0 = carry0["c"] if step.has_cell_state else None
    extra = tuple(params[n] for n in fp.extra)
    xw = _project(xs, params["w_ih"])
    _, _, hs, buf, small, cs = _forward_loop(fp, xw, params["bias"], mask, h0, c0,
                                             params["w_hh"], extra, 1, emit_c=True)
    big = jax.eval_shape(fp.forward, xw[0], h0, c0, params["w_hh"], extra)[2]
    h_res = {"new": hs, "prev": _h_prev(h0, hs)}.get(fp.h_residual)
    return hs, cs, StepResiduals(None if big is None else buf, small, h_res, cs, mask)
