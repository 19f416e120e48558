"""Log-domain sweeps through one recurrent layer: the engine under every Jacobian probe.

A probe vector is carried as ``v = exp(s) · u`` with ``u`` of unit norm (over all parts of the
carry, per probe and row) and ``s`` the natural log of its scale (``−inf`` for the zero vector).
Every step renormalises ``u`` and adds the log of the factor to ``s``, so a vector can shrink to
1e-300 (or grow to 1e300) and every lag still gets a finite log norm in float32.

Both sweeps go through the *masked step map* of :func:`lstm_jax.recurrence.scan_layer`:
``carry_t = where(m_t, step(params, carry_{t−1}, xw_t), carry_{t−1})`` with the cell's pure
``step`` and the hoisted ``xw_t = x_t @ w_ih + bias``; a padded step is the identity.

* :func:`reverse_sweep`: vector–Jacobian products from the last step to the first, one pull-back
  per step for all probe vectors at once (vmapped), so the log norms of ``vᵀ ∂y/∂carry_t`` for
  every t cost one backward sweep. The pull-back is a function ``(inputs_t, v) -> v``: either
  :func:`vjp_pullback` (``jax.vjp`` of the step map, which recomputes the step) or, for the three
  standard cells, :func:`lstm_jax.probes.step_jacobian.carry_vjp` on factors saved from the
  forward pass (:func:`lstm_jax.probes.layer.layer_view` picks).
* :func:`forward_sweep`: Jacobian–vector products (``jax.jvp``), used by power iteration.

Shapes: T steps, B rows, H units, N probe vectors per row; vectors are dicts ``{part: (N, B, H)}``
with the carry's parts (``"h"``, and ``"c"`` for the LSTM). Parts may differ in width (a Flax
cell's carry leaves, :mod:`lstm_jax.probes.flax_rnn`): each part's H is its own last axis.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

Vec = dict[str, jax.Array]


def normalise(vec: Vec, s: jax.Array) -> tuple[Vec, jax.Array]:
    """Rescale ``vec`` (N, B, H) to unit norm per (N, B); add the log of the norm to ``s``."""
    sq = _part_sq(vec)
    return _scaled(vec, sq), s + 0.5 * jnp.log(sum(sq.values()))


def log_add(u: Vec, s: jax.Array, g: Vec) -> tuple[Vec, jax.Array]:
    """``exp(s)·u + g`` in the log-scaled form; ``g`` (true scale) may lack some parts (zero)."""
    u, s = dict(u), s
    g = {k: g.get(k, jnp.zeros_like(v)) for k, v in u.items()}
    g_unit, a = normalise(g, jnp.zeros_like(s))
    m = jnp.maximum(s, a)
    finite = jnp.isfinite(m)
    m0 = jnp.where(finite, m, 0.0)
    cu = jnp.where(jnp.isfinite(s), jnp.exp(jnp.where(jnp.isfinite(s), s, 0.0) - m0), 0.0)
    cg = jnp.where(jnp.isfinite(a), jnp.exp(jnp.where(jnp.isfinite(a), a, 0.0) - m0), 0.0)
    new = {k: cu[..., None] * u[k] + cg[..., None] * g_unit[k] for k in u}
    new, ds = normalise(new, jnp.zeros_like(s))
    return new, jnp.where(finite, m0 + ds, -jnp.inf)


def masked_step(step, params):
    """The step map of one layer: ``(carry_{t−1}, xw_t, m_t) -> (carry_t, gates)``."""

    def f(carry, xw_t, m_t):
        new, gates = step(params, carry, xw_t)
        m = m_t[:, None]
        return {k: jnp.where(m, new[k], carry[k]) for k in carry}, gates

    return f


def vjp_pullback(step, params) -> Callable:
    """The pull-back of any cell's masked step map by ``jax.vjp``.

    Returns ``pull((carry_{t−1}, xw_t, m_t), v) -> vᵀ ∂carry_t/∂carry_{t−1}`` (one vector, parts
    ``(B, H)``); its per-step inputs are ``(carries_prev, xw, mask)`` stacked over T.
    """
    fstep = masked_step(step, params)

    def pull(inputs_t, v):
        cprev, xw_t, m_t = inputs_t
        _, pullback, _ = jax.vjp(lambda c: fstep(c, xw_t, m_t), cprev, has_aux=True)
        return pullback(v)[0]

    return pull


def reverse_sweep(pullback: Callable, inputs, mask: jax.Array, carry0: Vec, *,
                  seeds: Vec | None = None, anchor: jax.Array | None = None,
                  inject: Vec | None = None, capture_at: jax.Array | None = None,
                  reduce: Callable | None = None, n: int | None = None):
    """Carry probe vectors backwards through every step of one layer, in log scale.

    At step t (from T−1 down to 0) the state is the cotangent of ``carry_t``: first the rows whose
    ``anchor == t`` get ``seeds`` (for t > anchor the state is zero), then ``inject[t]`` is added,
    then ``reduce`` of each part's log norm is emitted for step t, then the state is pulled back
    through step t to ``carry_{t−1}``.

    Args:
      pullback, inputs: ``pullback(inputs_t, v) -> v`` pulls one vector (parts ``(B, H)``) back
        through step t; ``inputs`` its per-step arguments, stacked over T (leading axis). See
        :attr:`lstm_jax.probes.layer.LayerView.pullback`.
      mask: ``(T, B)`` bool; carry0: ``{part: (B, H)}`` (gives the parts, H and dtype).
      seeds: ``{part: (N, B, H)}`` placed at step ``anchor[b]`` (``(B,)`` int32).
      inject: ``{part: (T, N, B, H)}`` added at every step (e.g. ∂L/∂h_t of a loss).
      capture_at: ``(N, B)`` int: also return the unit vector and log scale at that step.
      reduce: maps ``{part: (N, B)}`` log norms to what is stored per step (default: all).
      n: number of probe vectors N (needed when only ``inject`` is given).

    Returns:
      ``(per_step, captured)``: ``per_step`` stacked over t (leading axis T, in time order);
      ``captured = (u, s)`` or None.
    """
    parts = tuple(carry0)
    T, B = mask.shape
    width = {k: carry0[k].shape[-1] for k in parts}
    if n is None:
        n = next(iter(seeds.values())).shape[0] if seeds else next(iter(inject.values())).shape[1]
    dtype = carry0[parts[0]].dtype
    zero = {k: jnp.zeros((n, B, width[k]), dtype) for k in parts}
    s0 = jnp.full((n, B), -jnp.inf, dtype)
    if seeds is not None:
        seed_u, seed_s = normalise({k: seeds.get(k, zero[k]) for k in parts},
                                   jnp.zeros((n, B), dtype))
        seed_sq = _part_sq(seed_u)
    reduce = reduce or (lambda x: x)
    ts = jnp.arange(T)
    inj = inject if inject is not None else {}

    # The state is (w, s, sq): the vector is exp(s)·w/‖w‖, sq[part] = ‖w_part‖². Keeping w as the
    # pull-back returned it, and scaling it by 1/‖w‖ only as the next pull-back reads it (XLA
    # fuses that into the pull-back), saves a pass over the vectors and a reduction per step.
    def body(state, inputs):
        w, s, sq, cap = state
        t, inputs_t, inj_t = inputs
        if seeds is not None:
            at = (anchor == t)[None, :]
            w = {k: jnp.where(at[..., None], seed_u[k], w[k]) for k in parts}
            sq = {k: jnp.where(at, seed_sq[k], sq[k]) for k in parts}
            s = jnp.where(at, seed_s, s)
        if inj_t:
            w, s = log_add(_scaled(w, sq), s, inj_t)
            sq = _part_sq(w)
        total = sum(sq.values())
        nonzero = total > 0
        log_total = jnp.log(jnp.where(nonzero, total, 1.0))
        out = reduce({k: jnp.where(nonzero, s + 0.5 * (jnp.log(sq[k]) - log_total), -jnp.inf)
                      for k in parts})
        u = _scaled(w, sq)
        if capture_at is not None:
            hit = capture_at == t
            cap = ({k: jnp.where(hit[..., None], u[k], cap[0][k]) for k in parts},
                   jnp.where(hit, s, cap[1]))
        w = jax.vmap(lambda v: pullback(inputs_t, v))(u)
        sq = _part_sq(w)
        s = s + 0.5 * jnp.log(sum(sq.values()))
        return (w, s, sq, cap), out

    sq0 = {k: jnp.zeros((n, B), dtype) for k in parts}
    cap0 = (zero, s0) if capture_at is not None else None
    (_, _, _, cap), per_step = jax.lax.scan(body, (zero, s0, sq0, cap0), (ts, inputs, inj),
                                            reverse=True)
    return per_step, cap


def _part_sq(vec: Vec) -> dict[str, jax.Array]:
    return {k: jnp.sum(v * v, axis=-1) for k, v in vec.items()}


def _scaled(w: Vec, sq: dict[str, jax.Array]) -> Vec:
    """``w / ‖w‖`` (norm over all parts, per probe and row); the zero vector stays zero."""
    total = sum(sq.values())
    inv = jnp.where(total > 0, jax.lax.rsqrt(jnp.where(total > 0, total, 1.0)), 0.0)
    return {k: v * inv[..., None] for k, v in w.items()}


def forward_sweep(step, params, xw: jax.Array, mask: jax.Array, carries_prev: Vec, *,
                  start: jax.Array, seeds: Vec, seed_s: jax.Array, capture_at: jax.Array):
    """Carry tangent vectors forwards (``jax.jvp`` of the masked step map), in log scale.

    The tangent of ``carry_t`` is set to ``exp(seed_s)·seeds`` at ``t == start`` (``(N, B)``),
    pushed through steps ``start+1, …`` and captured at ``t == capture_at`` (``(N, B)``).

    Returns ``(u, s)`` at the capture step: unit vectors ``{part: (N, B, H)}`` and log scales.
    """
    parts = tuple(carries_prev)
    T, B = mask.shape
    n = start.shape[0]
    dtype = xw.dtype
    zero = {k: jnp.zeros((n, B, carries_prev[k].shape[-1]), dtype) for k in parts}
    s0 = jnp.full((n, B), -jnp.inf, dtype)
    fstep = masked_step(step, params)
    seed_u = {k: seeds.get(k, zero[k]) for k in parts}

    def body(state, inputs):
        u, s, cap = state
        t, cprev, xw_t, m_t = inputs
        _, push = jax.linearize(lambda c: fstep(c, xw_t, m_t)[0], cprev)
        u = jax.vmap(push)(u)
        u, s = normalise(u, s)
        at = start == t
        u = {k: jnp.where(at[..., None], seed_u[k], u[k]) for k in parts}
        s = jnp.where(at, seed_s, s)
        hit = capture_at == t
        cap = ({k: jnp.where(hit[..., None], u[k], cap[0][k]) for k in parts},
               jnp.where(hit, s, cap[1]))
        return (u, s, cap), None

    (_, _, cap), _ = jax.lax.scan(body, (zero, s0, (zero, s0)),
                                  (jnp.arange(T), carries_prev, xw, mask))
    return cap
