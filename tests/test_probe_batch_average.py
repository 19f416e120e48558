"""probe()'s batch average is a geometric mean over rows, and every record says so.

Reference: per-row Frobenius norms of ∂h_T/∂h_{T−k} by the chain rule over ``jax.jacfwd`` of the
cell's one-step map, averaged in NumPy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from lstm_jax.cells import step_fn
from lstm_jax.probes import probe

B, T, D, H = 3, 6, 2, 4


def _per_row_norms(model, x) -> np.ndarray:
    """(B, T): ‖∂h_T/∂h_{T−k}‖_F per row and lag k, by the chain rule over the step Jacobians
    ``jax.jacfwd`` of the cell's one-step map gives (products in float64 NumPy)."""
    step, p = step_fn(model.config), model.cells[0].params()

    def one(h, x_t):
        return step(p, {"h": h[None]}, x_t[None] @ p["w_ih"] + p["bias"])[0]["h"][0]

    one_and_jac = jax.jit(lambda h, x_t: (one(h, x_t), jax.jacfwd(one)(h, x_t)))
    out = np.zeros((B, T))
    for b in range(B):
        h, jacs = jnp.zeros(H), []
        for t in range(T):
            h, J = one_and_jac(h, x[b, t])
            jacs.append(np.asarray(J, np.float64))  # ∂h_t/∂h_{t−1}
        M = np.eye(H)
        for k in range(T):  # M = ∂h_{T−1}/∂h_{T−1−k}
            out[b, k] = np.linalg.norm(M)
            M = M @ jacs[T - 1 - k]
    return out


def test_probe_record_states_and_takes_a_geometric_mean_over_rows():
    model = Recurrence(D, CellConfig(arch="rnn", hidden=H), rngs=nnx.Rngs(3))
    # rows at very different scales, so arithmetic and geometric means differ clearly
    x = jax.random.normal(jax.random.key(1), (B, T, D)) * jnp.array([0.1, 1.0, 4.0])[:, None, None]
    rec = probe(model, x)
    assert "geometric mean" in rec["batch_average"]
    norms = _per_row_norms(model, x)
    geo = np.exp(np.log(norms).mean(0))
    np.testing.assert_allclose(10.0 ** np.asarray(rec["log10_hidden"]), geo, rtol=1e-4)
    np.testing.assert_allclose(rec["log10_hidden_std"], np.log10(norms).std(0), atol=1e-4)
    arith = norms.mean(0)
    assert np.all(np.abs(np.log10(arith[1:]) - np.asarray(rec["log10_hidden"][1:])) > 1e-3)


def test_hutchinson_with_no_row_reaching_the_last_step_warns_nothing():
    """Every row padded at the last step: the lags no row reaches are NaN in every summary,
    including the relative standard error, and nothing warns (the suite turns warnings into
    errors, so a bare ``np.nanmean`` over an all-NaN column would fail here)."""
    model = Recurrence(D, CellConfig(arch="rnn", hidden=H), rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (B, T, D))
    mask = jnp.ones((B, T), bool).at[:, -1].set(False)
    rec = probe(model, x, mask, method="hutchinson", samples=2)
    assert np.isnan(rec["hidden_rel_se"][-1]) and np.isfinite(rec["hidden_rel_se"][0])
    assert np.isnan(rec["log10_hidden"][-1]) and np.isfinite(rec["log10_hidden"][0])
