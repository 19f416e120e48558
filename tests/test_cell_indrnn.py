"""IndRNN (Li et al. 2018) against an independent float64 reference and its closed form."""

import tomllib

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


def test_paper_init_is_the_authors_adding_setting():
    """indrnn_init="paper" as github.com/Sunnydreamrain/IndRNN_Theano_Lasagne adding/adding.py
    sets it with MAG = 2: U_bound = 2^{1/T}, U_lowbound = (1/2)^{1/T}; the last layer's
    ``W_hid_to_hid ~ Uniform(U_lowbound, U_bound)``, the first's ``Uniform(0, U_bound)``, every
    ``W_in_to_hid ~ Normal(std=0.001)``. The default ("uniform") keeps U(0, U_bound) everywhere
    and LeCun-normal inputs."""
    T, H = 100.0, 512
    upper, lower = 2.0 ** (1.0 / T), 0.5 ** (1.0 / T)
    cfg = CellConfig(arch="indrnn", hidden=H, chrono_tmax=T, indrnn_init="paper")
    first, last = Recurrence(2, cfg, layers=2, rngs=nnx.Rngs(0)).cells
    u1, u2 = (np.asarray(c.params()["u"]) for c in (first, last))
    assert u1.min() >= 0.0 and u1.max() <= upper and u1.min() < 0.02  # the whole of (0, U_bound)
    assert u2.min() >= lower and u2.max() <= upper
    assert u2.min() < lower + 0.01 * (upper - lower) and u2.max() > upper - 0.01 * (upper - lower)
    assert ((u2 ** T >= 0.5 - 1e-5) & (u2 ** T <= 2.0 + 1e-5)).all()  # every unit keeps memory
    for c in (first, last):
        np.testing.assert_allclose(np.asarray(c.params()["w_ih"]).std(), 0.001, rtol=0.05)
    (only,) = Recurrence(2, cfg, rngs=nnx.Rngs(0)).cells  # one layer: it is the last
    assert np.asarray(only.params()["u"]).min() >= lower
    (plain,) = Recurrence(2, CellConfig(arch="indrnn", hidden=H, chrono_tmax=T),
                          rngs=nnx.Rngs(0)).cells
    assert np.asarray(plain.params()["u"]).min() < 0.02
    assert np.asarray(plain.params()["w_ih"]).std() > 0.5  # LeCun normal, fan-in 2
    with pytest.raises(UserError, match="indrnn_init='paper' needs chrono_tmax"):
        CellConfig(arch="indrnn", indrnn_init="paper")
    with pytest.raises(UserError, match="indrnn_init.*does not apply to arch=lstm"):
        CellConfig(arch="lstm", indrnn_init="paper")
    with pytest.raises(UserError, match="indrnn_init='ring' is not allowed"):
        CellConfig(arch="indrnn", chrono_tmax=T, indrnn_init="ring")


def test_paper_init_reaches_training_protocols_and_the_command_line(capsys):
    from lstm_jax.cli import main
    from lstm_jax.compare.protocol import parse_protocol
    from lstm_jax.config import TrainConfig

    cfg = TrainConfig(arch="indrnn", chrono=50.0, indrnn_init="paper", layers=2)
    assert cfg.cell().indrnn_init == "paper"
    assert TrainConfig(arch="lstm").cell().indrnn_init == "uniform"
    assert main(["train", "--task", "adding", "--arch", "lstm", "--indrnn-init", "paper",
                 "--out", "unused"]) == 2
    assert "--indrnn-init does not apply to --arch=lstm" in capsys.readouterr().err
    text = """name = "p"
description = "d"
seeds = 1
lr_grid = [1e-3]
[budget]
steps = 10
batch = 4
[eval]
every = 5
size = 8
[tasks.adding]
lengths = [20]
success = { metric = "loss", below = 0.1 }
[arms.ind]
arch = "indrnn"
chrono = "T"
indrnn_init = "paper"
"""
    proto = parse_protocol(tomllib.loads(text))
    assert proto.config(proto.points()[0]).cell().indrnn_init == "paper"
    with pytest.raises(UserError, match="arms.bad.indrnn_init does not apply to arch lstm"):
        parse_protocol(tomllib.loads(text + '[arms.bad]\narch = "lstm"\nindrnn_init = "paper"\n'))


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


def test_bidirectional_stacks_get_the_last_layer_init_and_the_projection():
    """Each direction's top layer is a last layer (the head reads both), and training clips u in
    the backward direction as in the forward one."""
    from lstm_jax.cells.indrnn import u_bound
    from lstm_jax.config import TrainConfig
    from lstm_jax.sharding import data_mesh
    from lstm_jax.steps import build_programs, seed_keys

    T = 4.0
    upper, lower = u_bound(T), 1 / u_bound(T)
    cfg = TrainConfig(task="adding", seq_len=6, arch="indrnn", hidden=16, chrono=T,
                      indrnn_init="paper", layers=2, bidirectional=True, steps=1, batch=8,
                      optimizer="sgd", momentum=0.0, lr=1e6, clip=None, eval_every=1,
                      eval_size=8)
    progs = build_programs(cfg, data_mesh())
    keys = seed_keys(cfg)
    state = progs.init(keys["init"])
    for stack in ("recurrence", "backward_recurrence"):
        first, last = (np.asarray(state["params"][stack]["cells"][i]["u"][...]) for i in (0, 1))
        assert first.min() < 0.1 and last.min() >= lower - 1e-6, stack
    state, _ = progs.train_step(state, keys["data"], keys["dropout"], np.int32(0),
                                progs.task.device_data())
    for stack in ("recurrence", "backward_recurrence"):
        top = [np.abs(np.asarray(state["params"][stack]["cells"][i]["u"][...])).max()
               for i in (0, 1)]
        assert max(top) <= upper + 1e-6, stack
        assert max(top) == pytest.approx(upper, abs=1e-6), stack  # the step reached the bound
