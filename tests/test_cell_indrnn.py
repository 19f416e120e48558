"""IndRNN (Li et al. 2018) against an independent float64 reference and its closed form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence, UserError
from lstm_jax.probes import jacobian_norms
from tests import cell_checks
from tests.reference_cells import indrnn_step


def test_outputs_match_numpy_loop_float64():
    cell_checks.check_outputs("indrnn", indrnn_step)


def test_gradients_match_finite_differences_of_numpy_loop():
    cell_checks.check_gradients("indrnn", indrnn_step)


def test_probes_match_jacrev_of_reference_loop():
    def mostly_active(cell):  # a row whose every unit is off at one step has J = 0 (log −inf)
        cell.bias[...] = cell.bias[...] + 0.8

    model, got = cell_checks.check_probes("indrnn", indrnn_step, adjust=mostly_active)
    assert set(got) == {"k", "anchor", "hidden"}  # no cell state, no forget gate
    assert set(model.cells[0].params()) == {"w_ih", "u", "bias"}  # u replaces w_hh


def test_recurrent_weights_start_inside_the_papers_bound():
    """u ~ U(0, 2^{1/T_max}) with T_max = chrono_tmax; U(0, 1) when no T is given."""
    for tmax, hi in ((None, 1.0), (20.0, 2.0 ** (1 / 20))):
        cfg = CellConfig(arch="indrnn", hidden=512, chrono_tmax=tmax)
        u = np.asarray(Recurrence(2, cfg, rngs=nnx.Rngs(0)).cells[0].params()["u"])
        assert u.min() >= 0.0 and u.max() <= hi
        assert u.max() > 0.98 * hi and u.min() < 0.02 * hi  # spread over the whole range
        np.testing.assert_allclose(u.mean(), hi / 2, rtol=0.06)
    with pytest.raises(UserError, match="chrono_tmax"):
        CellConfig(arch="indrnn", chrono_tmax=1.0)


def test_hidden_jacobian_is_diag_u_to_the_k_when_input_kernel_is_zero():
    """W = 0 and b > 0, u > 0 keep every pre-activation positive: ∂h_T/∂h_{T−k} = diag(u^k),
    so ‖·‖_F = sqrt(Σ u_n^{2k}) exactly (Li et al. 2018, eq. 5), the largest |u| dominating."""
    with jax.enable_x64(True):
        H, T = 5, 30
        model = Recurrence(3, CellConfig(arch="indrnn", hidden=H), rngs=nnx.Rngs(0),
                           dtype=jnp.float64)
        cell = model.cells[0]
        u = np.array([0.3, 0.7, 0.9, 1.02, 0.5])
        cell.w_ih[...] = jnp.zeros_like(cell.w_ih[...])
        cell.bias[...] = jnp.ones((H,), jnp.float64)
        cell.u[...] = jnp.asarray(u)
        x = jax.random.normal(jax.random.key(2), (2, T, 3), jnp.float64)
        got = jacobian_norms(model, x)["hidden"]["log10"]
        k = np.arange(T)
        want = 0.5 * np.log10((u[None, :] ** (2 * k[:, None])).sum(1))
        np.testing.assert_allclose(got, np.broadcast_to(want, got.shape), rtol=0, atol=1e-12)
        # the slope tends to log10 max|u| (the spectral norm max|u|^k)
        np.testing.assert_allclose(got[0, -1] - got[0, -2], np.log10(u.max()), atol=1e-3)


def test_training_keeps_u_inside_the_papers_bound(monkeypatch):
    """Li et al. (2018) clip |u| to 2^{1/T} after every update: a step with a huge learning rate
    lands on the bound where the plain update would leave it, and equals the plain update (the
    same program without the projection) everywhere else."""
    from lstm_jax.cells.indrnn import IndRNNCell, u_bound
    from lstm_jax.config import TrainConfig
    from lstm_jax.sharding import data_mesh
    from lstm_jax.steps import build_programs, seed_keys

    def one_step(cfg):
        progs = build_programs(cfg, data_mesh())
        keys = seed_keys(cfg)
        state = progs.init(keys["init"])
        u0 = np.asarray(state["params"]["recurrence"]["cells"][0]["u"][...])
        state, _ = progs.train_step(state, keys["data"], keys["dropout"], np.int32(0),
                                    progs.task.device_data())
        return u0, np.asarray(state["params"]["recurrence"]["cells"][0]["u"][...])

    cfg = TrainConfig(task="adding", seq_len=6, arch="indrnn", hidden=16, chrono=4.0, steps=1,
                      batch=8, optimizer="sgd", momentum=0.0, lr=300.0, clip=None, seeds=2,
                      eval_every=1, eval_size=8)
    bound = u_bound(4.0)
    u0, u1 = one_step(cfg)
    assert np.all(np.abs(u0) <= bound) and np.all(np.abs(u1) <= bound + 1e-6)
    monkeypatch.setattr(IndRNNCell, "project", lambda self: None)  # the plain update
    monkeypatch.setattr(IndRNNCell, "constrained", classmethod(lambda cls: False))
    u0_plain, u1_plain = one_step(cfg.replace(eval_every=2))  # another program, same init
    np.testing.assert_array_equal(u0, u0_plain)
    np.testing.assert_allclose(u1, np.clip(u1_plain, -bound, bound), rtol=1e-6, atol=1e-7)
    assert (np.abs(u1_plain) > bound).any(), "the step never left the bound: test is vacuous"


def test_project_clips_u_to_the_papers_bound():
    from lstm_jax.cells.indrnn import u_bound

    model = Recurrence(3, CellConfig(arch="indrnn", hidden=6, chrono_tmax=4.0), rngs=nnx.Rngs(0))
    cell = model.cells[0]
    u = np.array([-3.0, -1.0, 0.0, 0.5, 1.1, 3.0], np.float32)
    cell.u[...] = jnp.asarray(u)
    model.project()
    np.testing.assert_array_equal(np.asarray(cell.u[...]), np.clip(u, -u_bound(4.0), u_bound(4.0)))
    free = Recurrence(3, CellConfig(arch="indrnn", hidden=6), rngs=nnx.Rngs(0))  # no T: no bound
    free.cells[0].u[...] = jnp.asarray(u)
    free.project()
    np.testing.assert_array_equal(np.asarray(free.cells[0].u[...]), u)


def test_cells_without_a_constraint_leave_the_training_step_alone():
    from lstm_jax.cells import cell_class

    assert cell_class("indrnn").constrained()
    assert not any(cell_class(a).constrained() for a in ("rnn", "lstm", "gru", "janet", "lru"))
