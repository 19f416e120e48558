"""LRU (Orvieto et al. 2023): parallel scan against a sequential loop and a complex-arithmetic
float64 reference, ring initialisation, and the probes' closed form diag(λ^k)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence, UserError
from lstm_jax.cells import LRUCell, step_fn
from lstm_jax.probes import jacobian_norms
from lstm_jax.recurrence import scan_layer
from tests import cell_checks
from tests.reference_cells import lru_step


def test_outputs_match_numpy_loop_float64():
    """Recurrence runs the associative-scan fast path; the reference is a complex NumPy loop."""
    cell_checks.check_outputs("lru", lru_step)


def test_gradients_match_finite_differences_of_numpy_loop():
    cell_checks.check_gradients("lru", lru_step)


def test_probes_match_jacrev_of_reference_loop():
    _, got = cell_checks.check_probes("lru", lru_step)
    assert np.all(np.isneginf(got["hidden"]["log10"][:, 1:][np.isfinite(got["cell"]["log10"][:, 1:])]))


def test_parallel_scan_equals_sequential_scan_outputs_and_gradients():
    """The ``sequence`` fast path (associative scan) vs ``lax.scan`` of the step, float64, with
    padding anywhere and a nonzero initial carry: outputs, final carry and every gradient."""
    with jax.enable_x64(True):
        model = cell_checks.random_model("lru")
        params = model.cells[0].params()
        x, mask = cell_checks.inputs()
        xs, m = jnp.swapaxes(jnp.asarray(x), 0, 1), jnp.swapaxes(jnp.asarray(mask), 0, 1)
        m = m.at[0, 0].set(False)  # a padded first step holds the initial carry
        rng = np.random.default_rng(3)
        carry0 = {k: jnp.asarray(rng.normal(size=(x.shape[0], 4))) for k in ("h", "c")}
        fast = step_fn(model.config)
        plain = fast.fn  # the bare step: no fast path, so scan_layer runs lax.scan
        assert fast.sequence is not None and getattr(plain, "sequence", None) is None
        r = jnp.asarray(rng.normal(size=(x.shape[1], x.shape[0], 4)))

        def loss(step, params, carry0):
            out = scan_layer(step, params, xs, m, carry0)
            return (jnp.sum(out.sequences["h"] * r)
                    + sum(jnp.sum(v ** 3) for v in out.final_carry.values())), out

        (l1, o1), g1 = jax.jit(jax.value_and_grad(lambda p, c: loss(fast, p, c), (0, 1),
                                                  has_aux=True))(params, carry0)
        (l2, o2), g2 = jax.jit(jax.value_and_grad(lambda p, c: loss(plain, p, c), (0, 1),
                                                  has_aux=True))(params, carry0)
        np.testing.assert_allclose(o1.sequences["h"], o2.sequences["h"], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(o1.sequences["h"][0, 0], carry0["h"][0], atol=1e-12)
        for k in ("h", "c"):
            np.testing.assert_allclose(o1.final_carry[k], o2.final_carry[k], rtol=1e-10,
                                       atol=1e-12)
        for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-11)


def test_ring_initialisation_and_gamma_normalisation():
    cfg = CellConfig(arch="lru", hidden=1024)
    p = {k: np.asarray(v, np.float64)
         for k, v in Recurrence(3, cfg, rngs=nnx.Rngs(0)).cells[0].params().items()}
    mod = np.exp(-np.exp(p["nu_log"]))
    theta = np.exp(p["theta_log"])
    lo, hi, tmax = LRUCell.r_min, LRUCell.r_max, LRUCell.theta_max
    assert mod.min() >= lo - 1e-6 and mod.max() <= hi + 1e-6
    # uniform on the ring: |λ|² ~ U[r_min², r_max²] (Kolmogorov–Smirnov, N = 512 units)
    from scipy import stats  # here, not at collection: the import costs every worker ~1 s

    assert stats.kstest((mod ** 2 - lo ** 2) / (hi ** 2 - lo ** 2), "uniform").pvalue > 0.01
    assert theta.min() >= 0 and theta.max() <= tmax * (1 + 1e-6) and theta.max() > 0.95 * tmax
    np.testing.assert_allclose(np.exp(p["gamma_log"]), np.sqrt(1 - mod ** 2), rtol=1e-4)
    with pytest.raises(UserError, match="hidden=7 must be even"):
        CellConfig(arch="lru", hidden=7)


def test_state_probe_is_the_closed_form_lambda_to_the_k():
    """∂x_T/∂x_{T−k} = diag(λ^k): on the packed real state its Frobenius norm is
    √(2 Σ_n |λ_n|^{2k}), whatever the inputs; y is not fed back, so ∂y_T/∂y_{T−k} = 0, k ≥ 1."""
    with jax.enable_x64(True):
        T = 30
        model = Recurrence(3, CellConfig(arch="lru", hidden=6), rngs=nnx.Rngs(0),
                           dtype=jnp.float64)
        nu_log = np.log(-np.log(np.array([0.5, 0.9, 0.99])))
        model.cells[0].nu_log[...] = jnp.asarray(nu_log)
        x = jax.random.normal(jax.random.key(2), (2, T, 3), jnp.float64)
        got = jacobian_norms(model, x)
        k = np.arange(T)
        mod = np.exp(-np.exp(nu_log))
        want = 0.5 * np.log10(2 * (mod[None, :] ** (2 * k[:, None])).sum(1))
        np.testing.assert_allclose(got["cell"]["log10"], np.broadcast_to(want, (2, T)),
                                   rtol=0, atol=1e-12)
        assert np.all(np.isneginf(got["hidden"]["log10"][:, 1:]))


def test_input_and_readout_scales_are_the_papers():
    """Orvieto et al. (2023), Appendix A: B = (N(0,1) + i N(0,1)) / √(2 D_in) and
    C = (N(0,1) + i N(0,1)) / √N; the skip (here dense) LeCun normal, std 1/√D_in."""
    D, H = 256, 512
    N = H // 2
    cell = Recurrence(D, CellConfig(arch="lru", hidden=H), rngs=nnx.Rngs(0)).cells[0]
    p = {k: np.asarray(v, np.float64) for k, v in cell.params().items()}
    b_re, b_im, skip = p["w_ih"][:, :N], p["w_ih"][:, N:H], p["w_ih"][:, H:]
    for part, want in ((b_re, 1 / math.sqrt(2 * D)), (b_im, 1 / math.sqrt(2 * D)),
                       (p["c_re"], 1 / math.sqrt(N)), (p["c_im"], 1 / math.sqrt(N)),
                       (skip, 1 / math.sqrt(D))):
        np.testing.assert_allclose(part.std(), want, rtol=0.03)
        assert abs(part.mean()) < 0.05 * want
    assert np.corrcoef(b_re.ravel(), b_im.ravel())[0, 1] < 0.02  # independent parts
