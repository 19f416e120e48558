"""Jacobian norms per lag: ‖∂h_T/∂h_{T−k}‖_F, ‖∂C_T/∂C_{T−k}‖_F, the forget-gate product, σ_max.

Definition (perturb the carry). The carry is ``(h, C)`` for the LSTM and ``h`` for the RNN and
GRU. ``∂y_T/∂x_{T−k}`` is the derivative of part ``y`` of the carry after step T with respect to
a perturbation of part ``x`` of the carry after step T−k, the other part held fixed, through
every path from there to T. Hence ``∂C_T/∂C_{T−1} = diag(f_T)`` exactly for this LSTM (no
peepholes), and from k = 2 on the paths through h make ``cell`` differ from ``cec``, the product
``diag(∏_{j=T−k+1..T} f_j)`` that the constant-error-carousel argument keeps (Hochreiter &
Schmidhuber 1997; Gers et al. 2000). A padded step is the identity.

Methods (for J = ∂y_T/∂x_{T−k}, H units, T steps, B rows):

* ``exact``: ``‖J‖_F² = Σ_i ‖e_iᵀ J‖²`` with the H basis vectors e_i, pulled back together
  (vmapped) in one reverse sweep that yields *every* lag. Cost: one forward pass plus a backward
  sweep whose matmuls are H times wider than a training step's, per probe (hidden, cell).
  Use it for H up to a few hundred, for tests and for figures.
* ``hutchinson``: ``E‖vᵀJ‖² = ‖J‖_F²`` for Rademacher v (Hutchinson 1989); K vectors give an
  unbiased estimate of ``‖J‖_F²`` and its standard error ``sd/√K``. Cost: like a training step
  with a batch K times larger, per probe. Use it inside training loops and for large H.
* ``spectral``: σ_max(∂h_T/∂h_{T−k}) by power iteration on ``J Jᵀ`` with one vjp sweep and one
  jvp sweep per iteration (all requested lags at once): the quantity in Pascanu et al. (2013)'s
  bound ``‖∂h_T/∂h_{T−k}‖₂ ≤ (γ‖W_hh‖)^k``.

Measured (``benchmarks/probe_cost.py``, B=64, D=64, H=128, T=100, 2 shared CPU cores, in units
of one jitted forward+backward training step of the same layer, which runs the fused recurrence):
see ``benchmarks/results/probe_cost.json`` and the table in ``benchmarks/README.md``.

All norms are carried in log scale (:mod:`lstm_jax.probes.sweep`): the results are natural-log
arrays that stay finite at 1e-300.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from lstm_jax.probes.layer import LayerView, by_lag
from lstm_jax.probes.sweep import Vec, forward_sweep, normalise, reverse_sweep

METHODS = ("exact", "hutchinson")
#: probe name -> (part perturbed at T−k, part read at T)
JACOBIAN_PROBES = {"hidden": "h", "cell": "c"}


def _seeds(probes, H: int, B: int, method: str, samples: int, key, dtype) -> tuple[Vec, list]:
    """Stacked seed vectors for all probes and, per probe, (slice, part)."""
    blocks, groups, start = {"h": [], "c": []}, [], 0
    for name in probes:
        part = JACOBIAN_PROBES[name]
        if method == "exact":
            v = jnp.broadcast_to(jnp.eye(H, dtype=dtype)[:, None, :], (H, B, H))
        else:
            key, sub = jax.random.split(key)
            v = jax.random.rademacher(sub, (samples, B, H), dtype)
        n = v.shape[0]
        for p in blocks:
            blocks[p].append(v if p == part else jnp.zeros_like(v))
        groups.append((slice(start, start + n), part))
        start += n
    return {p: jnp.concatenate(b, axis=0) for p, b in blocks.items() if b}, groups


def jacobian_log_norms(step, view: LayerView, anchor: jax.Array, probes: tuple[str, ...], *,
                       method: str = "exact", samples: int = 8, key=None) -> dict:
    """Log Frobenius norms of ∂y_T/∂y_{T−k} for every lag, one reverse sweep for all probes.

    Args:
      step: the cell's pure step; view: :func:`lstm_jax.probes.layer.layer_view` of the layer.
      anchor: ``(B,)`` step T per row. probes: names from ``JACOBIAN_PROBES``.
      method: ``"exact"`` or ``"hutchinson"`` (``samples`` Rademacher vectors drawn from ``key``).

    Returns:
      ``{name: {"ln_sq": (B, T), "ln_se": (B, T) | None}}``: natural log of ‖J_k‖_F² (exact, or
      the Hutchinson estimate) and of the estimate's standard error, indexed by lag k (NaN where
      k > anchor).
    """
    parts = tuple(view.carry0)
    T, B = view.mask.shape
    H = view.carry0["h"].shape[-1]
    dtype = view.xw.dtype
    seeds, groups = _seeds(probes, H, B, method, samples, key, dtype)
    for p in parts:
        seeds.setdefault(p, jnp.zeros_like(seeds["h"]))
    seeds = {p: seeds[p] for p in parts}

    def reduce(logs):
        out = []
        for sl, part in groups:
            ln2 = 2.0 * logs[part][sl]  # (n, B)
            out.append(logsumexp(ln2, axis=0) if method == "exact" else ln2)
        return out

    per_step, _ = reverse_sweep(view.pullback, view.pull_inputs, view.mask, view.carry0,
                                seeds=seeds, anchor=anchor, reduce=reduce)
    result = {}
    for name, ln2 in zip(probes, per_step, strict=True):
        if method == "exact":
            result[name] = {"ln_sq": by_lag(ln2, anchor), "ln_se": None}
        else:  # ln2: (T, K, B)
            K = ln2.shape[1]
            ln_mean = logsumexp(ln2, axis=1) - math.log(K)
            m = jnp.max(ln2, axis=1, keepdims=True)
            m0 = jnp.where(jnp.isfinite(m), m, 0.0)
            rel = jnp.exp(ln2 - m0)
            sd = jnp.std(rel, axis=1, ddof=1) if K > 1 else jnp.full(rel.shape[::2], jnp.inf)
            ln_se = m0[:, 0] + jnp.log(sd / math.sqrt(K))
            result[name] = {"ln_sq": by_lag(ln_mean, anchor), "ln_se": by_lag(ln_se, anchor)}
    return result


def forget_product_log_norm(view: LayerView, anchor: jax.Array, gate: str = "f") -> jax.Array:
    """``ln ‖diag(∏_{j=T−k+1..T} f_j)‖_F`` for every lag, ``(B, T)``, for a cell with a forget
    gate (named ``gate`` in ``view.gates``; the cell's ``forget_gate``).

    Padded steps count as ``f = 1`` (the carry is copied). NaN where k > anchor.
    """
    logf = jnp.where(view.mask[..., None], jnp.log(view.gates[gate]), 0.0)  # (T, B, H)
    ts = jnp.arange(logf.shape[0])

    def body(acc, inputs):
        t, lf = inputs
        acc = jnp.where((anchor == t)[:, None], 0.0, acc)
        out = 0.5 * logsumexp(2.0 * acc, axis=-1)
        return acc + lf, out

    _, per_step = jax.lax.scan(body, jnp.zeros(logf.shape[1:], logf.dtype), (ts, logf),
                               reverse=True)
    return by_lag(per_step, anchor)


def spectral_log_norms(step, view: LayerView, anchor: jax.Array, lags: jax.Array, *,
                       iters: int = 20, key=None) -> jax.Array:
    """``ln σ_max(∂h_T/∂h_{T−k})`` for each lag in ``lags`` ``(L,)``, by power iteration.

    Power iteration on ``J Jᵀ`` (``J`` the H×H Jacobian of one row): ``w = Jᵀu`` by a reverse
    (vjp) sweep, ``u ← J ŵ`` by a forward (jvp) sweep, both in log scale; after ``iters`` rounds
    ``‖J ŵ‖`` (a lower bound that converges to σ_max) is returned, ``(B, L)``; NaN where the lag
    exceeds the anchor. The C part is held fixed at T−k, as in ``hidden``.
    """
    parts = tuple(view.carry0)
    T, B = view.mask.shape
    H = view.carry0["h"].shape[-1]
    L = lags.shape[0]
    dtype = view.xw.dtype
    start = anchor[None, :] - lags[:, None]  # (L, B) step whose carry is perturbed
    valid = start >= 0
    start = jnp.where(valid, start, -1)  # never reached: sweeps see t in 0..T−1
    key = jax.random.key(0) if key is None else key
    u, _ = normalise({"h": jax.random.normal(key, (L, B, H), dtype)}, jnp.zeros((L, B), dtype))

    def zeros_like_parts(v):
        return {p: v.get(p, jnp.zeros((L, B, H), dtype)) for p in parts}

    def one_round(u, _):
        _, (w, _) = reverse_sweep(view.pullback, view.pull_inputs, view.mask, view.carry0,
                                  seeds=zeros_like_parts({"h": u}), anchor=anchor, capture_at=start,
                                  reduce=lambda logs: None)
        w, _ = normalise({"h": w["h"]}, jnp.zeros((L, B), dtype))
        (v, s) = forward_sweep(step, view.params, view.xw, view.mask, view.carries_prev,
                               start=start, seeds=zeros_like_parts(w),
                               seed_s=jnp.zeros((L, B), dtype),
                               capture_at=jnp.broadcast_to(anchor, (L, B)))
        vh, ds = normalise({"h": v["h"]}, s)
        return vh["h"], ds

    _, ln_sigma = jax.lax.scan(one_round, u["h"], None, length=iters)
    return jnp.where(valid, ln_sigma[-1], jnp.nan).T
