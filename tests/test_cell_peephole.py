"""Peephole LSTM (Gers & Schmidhuber 2000) against an independent float64 reference."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from tests import cell_checks
from tests.reference_cells import peephole_step


def test_outputs_match_numpy_loop_float64():
    cell_checks.check_outputs("peephole", peephole_step)


def test_gradients_match_finite_differences_of_numpy_loop():
    cell_checks.check_gradients("peephole", peephole_step)


def test_probes_match_jacrev_of_reference_loop():
    cell_checks.check_probes("peephole", peephole_step)


def test_init_peepholes_uniform_and_zero_peepholes_give_the_lstm():
    """Peepholes start in [−0.1, 0.1] (Gers et al. 2002); with p = 0 the cell is the LSTM."""
    model = Recurrence(3, CellConfig(arch="peephole", hidden=8), rngs=nnx.Rngs(0))
    p = model.cells[0].params()
    peep = np.concatenate([np.asarray(p[k]) for k in ("p_i", "p_f", "p_o")])
    assert np.all(np.abs(peep) <= 0.1) and np.std(peep) > 0.02
    np.testing.assert_allclose(np.asarray(p["bias"][8:16]), 1.0)  # forget bias as the LSTM's
    lstm = Recurrence(3, CellConfig(arch="lstm", hidden=8), rngs=nnx.Rngs(0))
    for k in ("w_ih", "w_hh", "bias"):
        getattr(lstm.cells[0], k)[...] = p[k]
    for k in ("p_i", "p_f", "p_o"):
        getattr(model.cells[0], k)[...] = jnp.zeros(8)
    x = jax.random.normal(jax.random.key(1), (2, 5, 3))
    np.testing.assert_allclose(model(x).outputs, lstm(x, collect=("c",)).outputs, atol=1e-6)


def test_chrono_sets_input_bias_to_minus_forget_bias():
    """Chrono (Tallec & Ollivier 2018) on the peephole LSTM, as on the LSTM: b_f ~ log U[1,
    T_max − 1] and b_i = −b_f, blocks (i, f, g, o); b_g = b_o = 0."""
    H, tmax = 256, 40.0
    b = np.asarray(Recurrence(3, CellConfig(arch="peephole", hidden=H, chrono_tmax=tmax),
                              rngs=nnx.Rngs(0)).cells[0].params()["bias"]).reshape(4, H)
    bi, bf = b[0], b[1]
    np.testing.assert_array_equal(bi, -bf)
    assert bf.min() >= 0 and bf.max() <= np.log(tmax - 1) + 1e-6 and bf.std() > 0.3
    np.testing.assert_array_equal(b[2:], 0.0)
