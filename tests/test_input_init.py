"""Glorot-uniform kernels (``input_init``/``recurrent_init = "glorot"``), the init JANET's reference
code gets from TensorFlow 1's default, against the closed form of U(−a, a), a = √(6/(fan_in+fan_out))."""

import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence, UserError
from lstm_jax.compare.protocol import parse_protocol
from lstm_jax.config import TrainConfig


def _uniform_like(x, bound):
    """x's entries look like U(−bound, bound): inside it, reaching its edges, variance bound²/3."""
    x = np.asarray(x, np.float64).ravel()
    assert np.abs(x).max() <= bound * (1 + 1e-6)
    assert np.abs(x).max() > 0.98 * bound  # thousands of draws reach the edge
    n = x.size  # 4 standard errors: Var(x) = a²/3, and the sample variance's relative sd is √(0.8/n)
    np.testing.assert_allclose(x.var(), bound**2 / 3, rtol=4 * np.sqrt(0.8 / n))
    np.testing.assert_allclose(x.mean(), 0.0, atol=4 * bound / np.sqrt(3 * n))


@pytest.mark.parametrize("arch", ["janet", "lstm", "rnn"])
def test_glorot_kernels_follow_the_closed_form(arch):
    D, H = 5, 64
    cfg = CellConfig(arch=arch, hidden=H, input_init="glorot", recurrent_init="glorot")
    cell = Recurrence(D, cfg, rngs=nnx.Rngs(3)).cells[0]
    p = cell.params()
    GH = cell.blocks * H
    assert p["w_ih"].shape == (D, GH) and p["w_hh"].shape == (H, GH)
    _uniform_like(p["w_ih"], np.sqrt(6 / (D + GH)))
    _uniform_like(p["w_hh"], np.sqrt(6 / (H + GH)))


def test_recurrent_scale_multiplies_glorot_and_the_default_stays_lecun_orthogonal():
    H = 32
    base = Recurrence(3, CellConfig(arch="lstm", hidden=H, recurrent_init="glorot"),
                      rngs=nnx.Rngs(0)).cells[0].params()
    half = Recurrence(3, CellConfig(arch="lstm", hidden=H, recurrent_init="glorot",
                                    recurrent_scale=0.5), rngs=nnx.Rngs(0)).cells[0].params()
    np.testing.assert_allclose(half["w_hh"], 0.5 * base["w_hh"], rtol=1e-6)
    default = Recurrence(3, CellConfig(arch="lstm", hidden=H), rngs=nnx.Rngs(0)).cells[0].params()
    block = np.asarray(default["w_hh"][:, :H], np.float64)
    np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-5)  # orthogonal, not Glorot
    # the input kernel keeps its key and law: LeCun normal, unbounded by the Glorot edge
    assert np.abs(np.asarray(default["w_ih"])).max() > np.sqrt(6 / (3 + 4 * H))


@pytest.mark.parametrize("arch", ["indrnn", "exprnn", "lru"])
def test_cells_with_their_own_input_kernel_refuse_input_init(arch):
    with pytest.raises(UserError, match=f"input_init='glorot' does not apply to arch={arch}"):
        CellConfig(arch=arch, input_init="glorot", **({"chrono_tmax": 10.0}
                                                       if arch == "indrnn" else {}))


def test_bad_values_name_the_field_and_the_choices():
    with pytest.raises(UserError, match="input_init='he' is not allowed.*lecun.*glorot"):
        CellConfig(arch="lstm", input_init="he")
    with pytest.raises(UserError, match="recurrent_init='xavier' is not allowed.*glorot"):
        TrainConfig(recurrent_init="xavier")


def test_train_config_and_protocol_arms_carry_input_init():
    from tests.test_compare_protocol import _with

    assert TrainConfig(arch="janet", input_init="glorot").cell().input_init == "glorot"
    arm = {"arch": "janet", "chrono": "T", "input_init": "glorot", "recurrent_init": "glorot"}
    proto = parse_protocol(_with("arms", {"janet+paper": arm}))
    cell = proto.config(proto.points()[0]).cell()
    assert (cell.input_init, cell.recurrent_init, cell.chrono_tmax) == ("glorot", "glorot", 10.0)
    with pytest.raises(UserError, match="input_init does not apply to arch lru"):
        parse_protocol(_with("arms.bad", {"arch": "lru", "input_init": "glorot"}))


def test_cli_refuses_input_init_for_a_cell_that_sets_its_own_input_kernel(capsys, tmp_path):
    from lstm_jax.cli import main

    assert main(["train", "--task", "adding", "--arch", "lru", "--input-init", "glorot",
                 "--out", str(tmp_path / "run")]) == 2
    assert "--input-init does not apply to --arch=lru" in capsys.readouterr().err
    assert main(["train", "--task", "adding", "--arch", "janet", "--input-init", "he",
                 "--out", str(tmp_path / "run")]) == 2
    assert "input_init='he' is not allowed" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
