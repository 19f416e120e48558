"""JANET (van der Westhuizen & Lasenby 2018) against an independent float64 reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence, UserError
from lstm_jax.probes import jacobian_norms
from tests import cell_checks
from tests.reference_cells import janet_step


def test_outputs_match_numpy_loop_float64():
    cell_checks.check_outputs("janet", janet_step)


def test_gradients_match_finite_differences_of_numpy_loop():
    cell_checks.check_gradients("janet", janet_step, chrono_tmax=20.0)


def test_probes_match_jacrev_of_reference_loop():
    _, got = cell_checks.check_probes("janet", janet_step)
    assert set(got) >= {"hidden", "cec"} and "cell" not in got  # h = C: one carry part


def test_chrono_forget_bias_at_init():
    """b_f ~ log U[1, T_max − 1] (the paper's chrono init), b_c = 0; default T_max = 100."""
    for tmax, want_max in ((None, np.log(99.0)), (30.0, np.log(29.0))):
        cfg = CellConfig(arch="janet", hidden=256, chrono_tmax=tmax)
        b = np.asarray(Recurrence(2, cfg, rngs=nnx.Rngs(0)).cells[0].params()["bias"])
        bf = b[:256]
        assert bf.min() >= 0.0 and bf.max() <= want_max + 1e-6
        # exp(b_f) ~ U[1, M]: its median is (1 + M)/2
        np.testing.assert_allclose(np.median(np.exp(bf)), 1 + (np.exp(want_max) - 1) / 2,
                                   rtol=0.15)
        np.testing.assert_allclose(b[256:], 0.0)
    with pytest.raises(UserError, match="forget_bias|chrono"):
        CellConfig(arch="rnn", chrono_tmax=10.0)


def test_hidden_jacobian_is_the_forget_product_without_recurrent_weights():
    """With U = 0, ∂h_t/∂h_{t−1} = diag(f_t) exactly: the hidden probe equals ∏f ("cec")."""
    model = Recurrence(3, CellConfig(arch="janet", hidden=6), rngs=nnx.Rngs(0))
    model.cells[0].w_hh[...] = jnp.zeros_like(model.cells[0].w_hh[...])
    x = jax.random.normal(jax.random.key(2), (3, 25, 3))
    got = jacobian_norms(model, x)
    np.testing.assert_allclose(got["hidden"]["log10"], got["cec"]["log10"], atol=2e-5)
    assert np.all(np.diff(got["cec"]["log10"], axis=1) < 0)  # f < 1: the product decays
