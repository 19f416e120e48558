"""CIFG, the coupled-gate LSTM (Greff et al. 2017), against an independent float64 reference."""

import jax
import numpy as np
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from tests import cell_checks
from tests.reference_cells import cifg_step


def test_outputs_match_numpy_loop_float64():
    cell_checks.check_outputs("cifg", cifg_step)


def test_gradients_match_finite_differences_of_numpy_loop():
    cell_checks.check_gradients("cifg", cifg_step)


def test_probes_match_jacrev_of_reference_loop():
    _, got = cell_checks.check_probes("cifg", cifg_step)
    assert {"hidden", "cell", "cec"} <= set(got)


def test_input_gate_is_one_minus_forget_gate_and_init():
    model = Recurrence(3, CellConfig(arch="cifg", hidden=5, forget_bias=2.0), rngs=nnx.Rngs(0))
    bias = np.asarray(model.cells[0].params()["bias"])
    assert bias.shape == (15,)  # three blocks: f, C̃, o
    np.testing.assert_allclose(bias[:5], 2.0)
    np.testing.assert_allclose(bias[5:], 0.0)
    x = jax.random.normal(jax.random.key(1), (2, 6, 3))
    seq = model(x, collect=("i", "f")).sequences[0]
    np.testing.assert_allclose(seq["i"], 1.0 - seq["f"], atol=1e-7)
    chrono = Recurrence(3, CellConfig(arch="cifg", hidden=64, chrono_tmax=50.0),
                        rngs=nnx.Rngs(0)).cells[0].params()["bias"]
    bf = np.asarray(chrono[:64])
    assert bf.min() >= 0.0 and bf.max() <= np.log(49.0) + 1e-6 and bf.std() > 0.3
