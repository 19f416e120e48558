"""The probes of a ``flax.nnx.RNN`` of any ``nnx.RNNCellBase``: cores and public functions.

:mod:`lstm_jax.probes.flax_rnn` turns the model into a pure step over named carry parts (and
defines the quantities and leaf names); here the sweeps of :mod:`lstm_jax.probes.sweep` run on
it: one reverse sweep (``jax.vjp`` of the masked step, log scale) gives every lag for every leaf
and the total (exact: basis vectors; Hutchinson: Rademacher vectors), one more gives the loss
gradient per step, and power iteration (reverse + forward sweeps) gives σ_max. The functions of
:mod:`lstm_jax.probes.api` call these for an ``nnx.RNN``; shapes and keys as there.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from lstm_jax.errors import UserError, check_choice, check_positive
from lstm_jax.probes.flax_rnn import (
    TOTAL,
    CarrySpec,
    make_step,
    mask_or_ones,
    run_forward,
    setup,
)
from lstm_jax.probes.layer import by_lag, resolve_anchor
from lstm_jax.probes.loss import last_step_readout_loss
from lstm_jax.probes.sweep import (
    forward_sweep,
    masked_step,
    normalise,
    reverse_sweep,
    vjp_pullback,
)

LN10 = math.log(10.0)


def _hutchinson_stats(ln2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(T, K, B)`` log squared norms of K samples → log of their mean and of its std. error."""
    K = ln2.shape[1]
    ln_mean = logsumexp(ln2, axis=1) - math.log(K)
    m = jnp.max(ln2, axis=1, keepdims=True)
    m0 = jnp.where(jnp.isfinite(m), m, 0.0)
    rel = jnp.exp(ln2 - m0)
    sd = jnp.std(rel, axis=1, ddof=1) if K > 1 else jnp.full(rel.shape[::2], jnp.inf)
    return ln_mean, m0[:, 0] + jnp.log(sd / math.sqrt(K))


def _seeds(spec: CarrySpec, seeded: tuple[str, ...], B: int, method: str, samples: int, key,
           dtype):
    """Seed vectors ``{name: (N, B, n)}``: per seeded leaf a block of basis (exact) or Rademacher
    (hutchinson) vectors that are zero in every other leaf; and each leaf's slice of N."""
    sizes = spec.sizes()
    blocks, groups, start = {n: [] for n in spec.names}, {}, 0
    for leaf in seeded:
        n = sizes[leaf]
        if method == "exact":
            v = jnp.broadcast_to(jnp.eye(n, dtype=dtype)[:, None, :], (n, B, n))
        else:
            key, sub = jax.random.split(key)
            v = jax.random.rademacher(sub, (samples, B, n), dtype)
        for p in spec.names:
            blocks[p].append(v if p == leaf else jnp.zeros((v.shape[0], B, sizes[p]), dtype))
        groups[leaf] = slice(start, start + v.shape[0])
        start += v.shape[0]
    return {p: jnp.concatenate(b, axis=0) for p, b in blocks.items()}, groups


@functools.partial(jax.jit, static_argnames=("graphdef", "spec", "probes", "method", "samples"))
def _jacobian_core(state, xs, mask_t, carry0, anchor, key, *, graphdef, spec, probes, method,
                   samples):
    step = make_step(graphdef, spec)
    mask_t = mask_or_ones(mask_t, xs)
    prev, _ = run_forward(step, state, xs, mask_t, carry0)
    B = xs.shape[1]
    dtype = carry0[spec.names[0]].dtype
    # ‖J‖_F² = Σ over seeded rows (leaves at T) of the pulled-back norm²: the total needs every
    # leaf seeded and reads all parts; a leaf's diagonal block reads only its own part.
    seeded = spec.names if TOTAL in probes else probes
    seeds, groups = _seeds(spec, seeded, B, method, samples, key, dtype)

    def reduce(logs):  # {part: (N, B)} log norms of each part of every pulled-back vector
        full = 0.5 * logsumexp(2.0 * jnp.stack([logs[p] for p in spec.names]), axis=0)
        return {leaf: (2.0 * logs[leaf][sl], 2.0 * full[sl]) for leaf, sl in groups.items()}

    per_step, _ = reverse_sweep(vjp_pullback(step, state), (prev, xs, mask_t), mask_t, carry0,
                                seeds=seeds, anchor=anchor, reduce=reduce)
    out = {}
    if method == "exact":
        for leaf in seeded:
            if leaf in probes:
                out[leaf] = (by_lag(logsumexp(per_step[leaf][0], axis=1), anchor), None)
        if TOTAL in probes:
            ln = logsumexp(jnp.stack([logsumexp(per_step[p][1], axis=1) for p in seeded]), axis=0)
            out[TOTAL] = (by_lag(ln, anchor), None)
        return out
    totals = []
    for leaf in seeded:  # per_step[leaf]: ((T, K, B), (T, K, B))
        mean, se = _hutchinson_stats(per_step[leaf][0])
        if leaf in probes:
            out[leaf] = (by_lag(mean, anchor), by_lag(se, anchor))
        totals.append(_hutchinson_stats(per_step[leaf][1]))
    if TOTAL in probes:  # Σ over leaves of independent estimates: means add, variances add
        mean = logsumexp(jnp.stack([m for m, _ in totals]), axis=0)
        se = 0.5 * logsumexp(jnp.stack([2.0 * s for _, s in totals]), axis=0)
        out[TOTAL] = (by_lag(mean, anchor), by_lag(se, anchor))
    return out


def default_probes(spec: CarrySpec) -> tuple[str, ...]:
    """Every carry leaf, then ``"total"``."""
    return spec.names + (TOTAL,)


def _default_key():
    return jax.random.key(0)


def jacobian_norms(model, x, mask=None, *, layer: int = 0, anchor=None, probes=None,
                   method: str = "exact", samples: int = 8, key=None,
                   initial_carry=None) -> dict:
    """log10 ‖∂p_T/∂p_{T−k}‖_F per carry leaf p and ‖∂carry_T/∂carry_{T−k}‖_F (``"total"``).

    Args:
      model: an ``nnx.RNN`` of an ``nnx.RNNCellBase``; x: ``(B, T, *features)``; mask: ``(B, T)``.
      anchor: step T per row (None: each row's last valid step; an int; or ``(B,)`` ints).
      probes: leaf names and/or ``"total"``; default all (:func:`default_probes`).
      method: ``"exact"`` (one basis vector per carry unit) or ``"hutchinson"`` (``samples``
        Rademacher vectors per leaf from ``key``; the total sums the per-leaf estimates of its
        row blocks).

    Returns:
      ``{"k": (T,), "anchor": (B,), name: {"log10": (B, T), "log10_se": (B, T) | None}}`` as for
      a ``Recurrence`` (:func:`lstm_jax.probes.api.jacobian_norms`).
    """
    s = setup(model, x, mask, initial_carry, layer)
    allowed = default_probes(s.spec)
    probes = allowed if probes is None else tuple(probes)
    for name in probes:
        check_choice("probe", name, allowed)
    check_choice("method", method, ("exact", "hutchinson"))
    if method == "hutchinson":
        check_positive("samples", samples, maximum=1 << 16)
    T, B = s.xs.shape[:2]
    anchor = resolve_anchor(anchor, None if s.mask is None else s.mask.T, B, T)
    out = _jacobian_core(s.state, s.xs, s.mask, s.carry0, anchor,
                         _default_key() if key is None else key, graphdef=s.graphdef,
                         spec=s.spec, probes=probes, method=method, samples=samples)
    result = {"k": np.arange(T), "anchor": np.asarray(anchor)}
    for name in probes:
        ln_sq, ln_se = out[name]
        result[name] = {"log10": np.asarray(ln_sq) / (2 * LN10),
                        "log10_se": None if ln_se is None else np.asarray(ln_se) / LN10}
    return result


@functools.partial(jax.jit, static_argnames=("graphdef", "spec", "loss_fn"))
def _loss_core(state, xs, mask_t, carry0, readout, *, graphdef, spec, loss_fn):
    step = make_step(graphdef, spec)
    mask_t = mask_or_ones(mask_t, xs)
    prev, ys = run_forward(step, state, xs, mask_t, carry0)
    if loss_fn is None:  # rebuilt from arrays so its compile is reused
        key, anchor = readout
        loss_fn = last_step_readout_loss(key, ys.shape[-1], anchor)
    g = jax.grad(lambda y: loss_fn(jax.tree.map(lambda a: jnp.swapaxes(a, 0, 1), y)))(ys)
    fstep = masked_step(step, state)

    def direct(c, x_t, m_t, g_t):  # g_tᵀ ∂y_t/∂carry_{t−1}
        _, pull = jax.vjp(lambda c: fstep(c, x_t, m_t)[1], c)
        return pull(g_t)[0]

    r = jax.vmap(direct)(prev, xs, mask_t, g)
    # carry_t reaches L directly only through y_{t+1}
    inject = {p: jnp.concatenate([r[p][1:], jnp.zeros_like(r[p][:1])])[:, None] for p in r}

    def reduce(logs):
        return {p: logs[p][0] for p in logs}

    per_step, _ = reverse_sweep(vjp_pullback(step, state), (prev, xs, mask_t), mask_t, carry0,
                                inject=inject, n=1, reduce=reduce)
    per_step[TOTAL] = logsumexp(2.0 * jnp.stack(list(per_step.values())), axis=0) / 2.0
    return {p: v.T for p, v in per_step.items()}


def loss_grad(model, x, mask=None, loss_fn=None, *, layer: int | None = None, key=None,
              initial_carry=None) -> dict:
    """log10 ‖∂L/∂carry_t‖ per row and step t, per carry leaf and in total (module doc).

    ``loss_fn(outputs) -> scalar`` takes the RNN's outputs batch-major (``(B, T, F)`` for Flax's
    cells; a pytree of such arrays if the cell emits one); default
    :func:`~lstm_jax.probes.loss.last_step_readout_loss` of ``y`` at each row's anchor step
    (needs ``(B, T, F)`` outputs). A new ``loss_fn`` object means a new compile.

    Returns ``{"t": (T,), "log10": (B, T), "leaves": {name: (B, T)}}`` (``log10`` the total); NaN
    after a row's last valid step, and with the default loss also at it: a change to the carry
    after the anchor step cannot reach ``y`` at the anchor, so its gradient is zero by
    construction, not a measurement.
    """
    s = setup(model, x, mask, initial_carry, 0 if layer is None else layer)
    T, B = s.xs.shape[:2]
    anchor = resolve_anchor(None, None if s.mask is None else s.mask.T, B, T)
    if loss_fn is None:
        if not (isinstance(s.outputs, jax.ShapeDtypeStruct) and len(s.outputs.shape) == 2):
            raise UserError(f"{type(model.cell).__name__} emits outputs {s.outputs}; the default "
                            "loss reads (batch, features) per step, so pass loss_fn=")
        readout = (_default_key() if key is None else key, jnp.asarray(anchor))
    else:
        readout = None
    ln = _loss_core(s.state, s.xs, s.mask, s.carry0, readout, graphdef=s.graphdef, spec=s.spec,
                    loss_fn=loss_fn)
    t, last = np.arange(T)[None, :], np.asarray(anchor)[:, None]
    after_last = t >= last if readout is not None else t > last

    def log10(v):
        return np.where(after_last, np.nan, np.asarray(v) / LN10)

    return {"t": np.arange(T), "log10": log10(ln[TOTAL]),
            "leaves": {p: log10(ln[p]) for p in s.spec.names}}


@functools.partial(jax.jit, static_argnames=("graphdef", "spec", "iters"))
def _spectral_core(state, xs, mask_t, carry0, anchor, lags, key, *, graphdef, spec, iters):
    step = make_step(graphdef, spec)
    mask_t = mask_or_ones(mask_t, xs)
    prev, _ = run_forward(step, state, xs, mask_t, carry0)
    pull, inputs = vjp_pullback(step, state), (prev, xs, mask_t)
    B = xs.shape[1]
    L = lags.shape[0]
    dtype = carry0[spec.names[0]].dtype
    zeros = jnp.zeros((L, B), dtype)
    start = anchor[None, :] - lags[:, None]  # (L, B) step whose carry is perturbed
    valid = start >= 0
    start = jnp.where(valid, start, -1)
    keys = jax.random.split(key, len(spec.names))
    u, _ = normalise({p: jax.random.normal(k, (L, B, carry0[p].shape[-1]), dtype)
                      for p, k in zip(spec.names, keys, strict=True)}, zeros)

    def one_round(u, _):  # w = Jᵀu (reverse), then J ŵ (forward): power iteration on J Jᵀ
        _, (w, _) = reverse_sweep(pull, inputs, mask_t, carry0, seeds=u, anchor=anchor,
                                  capture_at=start, reduce=lambda logs: None)
        w, _ = normalise(w, zeros)
        v, s = forward_sweep(step, state, xs, mask_t, prev, start=start, seeds=w, seed_s=zeros,
                             capture_at=jnp.broadcast_to(anchor, (L, B)))
        return normalise(v, s)

    _, ln_sigma = jax.lax.scan(one_round, u, None, length=iters)
    return jnp.where(valid, ln_sigma[-1], jnp.nan).T


def spectral_norms(model, x, mask=None, *, layer: int = 0, anchor=None, lags=None,
                   iters: int = 20, key=None, initial_carry=None) -> dict:
    """log10 σ_max(∂carry_T/∂carry_{T−k}) of the whole carry (all leaves) for ``lags``.

    Power iteration with one vjp and one jvp sweep per round (a lower bound converging to σ_max).
    Returns ``{"k": (L,), "log10": (B, L)}``.
    """
    from lstm_jax.probes.api import default_spectral_lags

    check_positive("iters", iters, maximum=10_000)
    s = setup(model, x, mask, initial_carry, layer)
    T, B = s.xs.shape[:2]
    anchor = resolve_anchor(anchor, None if s.mask is None else s.mask.T, B, T)
    lags = default_spectral_lags(T) if lags is None else np.asarray(lags, int)
    if lags.ndim != 1 or lags.size == 0 or lags.min() < 0 or lags.max() >= T:
        raise UserError(f"lags must be a non-empty list of steps in 0..{T - 1}; got {lags!r}")
    ln = _spectral_core(s.state, s.xs, s.mask, s.carry0, anchor, jnp.asarray(lags, jnp.int32),
                        _default_key() if key is None else key, graphdef=s.graphdef,
                        spec=s.spec, iters=iters)
    return {"k": lags, "log10": np.asarray(ln) / LN10}


def gate_statistics(model, x, mask=None, *, layer: int = 0, initial_carry=None) -> dict:
    """An ``nnx.RNN`` exposes no gates: ``{}`` (after checking the inputs)."""
    setup(model, x, mask, initial_carry, layer)
    return {}


def probe(model, x, mask=None, *, layer: int = 0, probes=None, method: str = "exact",
          samples: int = 8, loss_fn=None, spectral: bool = False, spectral_iters: int = 20,
          key=None, initial_carry=None) -> dict:
    """All probes of an ``nnx.RNN``, summarised over the batch: a JSON-able record.

    Keys as for a ``Recurrence`` (:func:`lstm_jax.probes.api.probe`) with the carry leaves as the
    Jacobian probes: ``log10_<leaf>``/``log10_total`` (+ ``_std``, + ``<name>_rel_se`` for
    ``hutchinson``); ``log10_loss_grad`` is ‖∂L/∂carry_t‖ of the whole carry and
    ``log10_loss_grad_<leaf>`` per leaf; ``arch`` is the cell's class name, ``model``
    ``"flax.nnx.RNN"``, ``carry_sizes`` ``{leaf: units}``; ``gates`` is empty.
    """
    from lstm_jax.probes.api import BATCH_AVERAGE, batch_summary, jacobian_record

    key = _default_key() if key is None else key
    k_jac, k_loss, k_spec = jax.random.split(key, 3)
    s = setup(model, x, mask, initial_carry, layer)
    rec = {"arch": type(model.cell).__name__, "model": "flax.nnx.RNN", "layer": layer,
           "method": method, "samples": samples if method == "hutchinson" else None,
           "carry_sizes": s.spec.sizes(), "seq_len": int(s.xs.shape[0]),
           "batch": int(s.xs.shape[1]), "batch_average": BATCH_AVERAGE}
    kw = {"initial_carry": initial_carry}
    rec |= jacobian_record(jacobian_norms(model, x, mask, layer=layer, probes=probes,
                                          method=method, samples=samples, key=k_jac, **kw))
    lg = loss_grad(model, x, mask, loss_fn, layer=layer, key=k_loss, **kw)
    rec["t"] = lg["t"].tolist()
    for suffix, v in [("", lg["log10"])] + [(f"_{p}", v) for p, v in lg["leaves"].items()]:
        mean, std = batch_summary(v)
        rec[f"log10_loss_grad{suffix}"] = mean.tolist()
        rec[f"log10_loss_grad{suffix}_std"] = std.tolist()
    rec["gates"] = {}
    if spectral:
        sp = spectral_norms(model, x, mask, layer=layer, iters=spectral_iters, key=k_spec, **kw)
        mean, std = batch_summary(sp["log10"])
        rec["spectral_k"] = sp["k"].tolist()
        rec["log10_spectral"], rec["log10_spectral_std"] = mean.tolist(), std.tolist()
    return rec
