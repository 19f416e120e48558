"""expRNN (Lezcano-Casado & Martínez-Rubio 2019): matmul-only expm against SciPy, outputs,
gradients and probes against an independent float64 reference, orthogonality through training."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from lstm_jax.cells.exprnn import expm, skew
from tests import cell_checks
from tests.reference_cells import exprnn_step


def _skew(rng, n, scale):
    s = rng.normal(0, scale, (n, n))
    return s - s.T


def test_expm_matches_scipy_float64_and_float32():
    rng = np.random.default_rng(0)
    mats = [_skew(rng, 6, sc) for sc in (1e-3, 0.1, 1.0, 10.0, 300.0)]
    mats += [rng.normal(0, 1, (5, 5)), np.zeros((3, 3))]  # a general matrix; exp(0) = I
    batched = jax.jit(jax.vmap(expm))  # compiled and vmapped: no LAPACK inside
    with jax.enable_x64(True):
        for a in mats:
            want = scipy.linalg.expm(a)
            got = np.asarray(jax.jit(expm)(jnp.asarray(a)))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10 * max(1, np.abs(want).max()))
        stack = np.stack([_skew(rng, 4, 2.0) for _ in range(3)])
        np.testing.assert_allclose(batched(jnp.asarray(stack)),
                                   [scipy.linalg.expm(a) for a in stack], atol=1e-12)
    for a in mats[:4]:
        got = np.asarray(jax.jit(expm)(jnp.asarray(a, jnp.float32)))
        np.testing.assert_allclose(got, scipy.linalg.expm(a), rtol=0, atol=2e-5)
        np.testing.assert_allclose(got.T @ got, np.eye(6), atol=2e-5)  # exp(skew) is orthogonal


def test_outputs_match_numpy_loop_float64():
    cell_checks.check_outputs("exprnn", exprnn_step)


def test_gradients_match_finite_differences_of_numpy_loop():
    cell_checks.check_gradients("exprnn", exprnn_step)


def test_probes_match_jacrev_of_reference_loop():
    model, got = cell_checks.check_probes("exprnn", exprnn_step)
    assert set(got) == {"k", "anchor", "hidden"}
    assert set(model.cells[0].params()) == {"w_ih", "w_skew", "bias", "b_mod"}


def test_henaff_initialisation():
    """A block-diagonal with 2×2 blocks [[0, θ], [−θ, 0]], θ ~ U[−π, π]: B rotates unit pairs."""
    H = 64
    p = Recurrence(3, CellConfig(arch="exprnn", hidden=H), rngs=nnx.Rngs(0)).cells[0].params()
    a = np.asarray(skew(p["w_skew"]))
    theta = np.diag(a, 1)[::2]
    want = np.zeros((H, H))
    want[np.arange(0, H, 2), np.arange(1, H, 2)] = theta
    np.testing.assert_array_equal(a, want - want.T)
    assert np.abs(theta).max() <= math.pi and theta.min() < -2 and theta.max() > 2
    b = np.asarray(expm(jnp.asarray(a)))
    np.testing.assert_allclose(b[:2, :2], [[np.cos(theta[0]), np.sin(theta[0])],
                                           [-np.sin(theta[0]), np.cos(theta[0])]], atol=1e-5)
    assert np.abs(np.asarray(p["b_mod"])).max() <= 0.01


def _orthogonality_error(params):
    b = np.asarray(expm(skew(params["w_skew"])))
    return np.abs(b.T @ b - np.eye(b.shape[0])).max()


def test_recurrent_matrix_stays_orthogonal_through_100_adam_steps():
    """Unconstrained Adam on w_skew (lr 1e-2, 100 steps) keeps B = expm(A) orthogonal (float32)."""
    model = Recurrence(2, CellConfig(arch="exprnn", hidden=8), rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(1), (8, 20, 2))
    y = x[:, :, 0].sum(1) / 10
    readout = jax.random.normal(jax.random.key(2), (8,)) / 3
    graphdef, params = nnx.split(model)
    opt = optax.adam(1e-2)

    @jax.jit
    def train(params):
        def step(carry, _):
            params, opt_state = carry

            def loss(params):
                h = nnx.merge(graphdef, params)(x).outputs[:, -1]
                return jnp.mean((h @ readout - y) ** 2)

            value, grads = jax.value_and_grad(loss)(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), value

        (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), length=100)
        return params, losses

    before = np.asarray(params["cells"][0]["w_skew"][...])
    params, losses = train(params)
    after = np.asarray(params["cells"][0]["w_skew"][...])
    assert losses[-1] < 0.5 * losses[0]
    assert np.abs(np.triu(after - before, 1)).max() > 0.05  # A really moved
    assert _orthogonality_error({"w_skew": jnp.asarray(after)}) < 1e-5


@pytest.mark.slow
def test_recurrent_matrix_stays_orthogonal_after_training_on_adding(tmp_path):
    """The same through ``lstm_jax.train.train``: 100 Adam steps on the adding task."""
    from lstm_jax.config import TrainConfig
    from lstm_jax.train import load_params, train

    cfg = TrainConfig(task="adding", arch="exprnn", seq_len=10, hidden=8, steps=100, batch=8,
                      eval_every=100, eval_size=8)
    train(cfg, tmp_path, progress=False, log=lambda _: None)
    _, params = load_params(tmp_path, cfg)
    leaves = [v for path, v in jax.tree_util.tree_leaves_with_path(params) if "w_skew" in str(path)]
    assert len(leaves) == 1
    w = np.asarray(leaves[0]).reshape(-1, 8, 8)[0]  # stacked over seeds
    assert np.abs(np.triu(w, 1)).max() > 0
    assert _orthogonality_error({"w_skew": jnp.asarray(w)}) < 1e-5


def test_input_weights_are_he_normal():
    """The authors' code initialises the input layer with kaiming_normal (fan-in, ReLU gain):
    std √(2 / D_in)."""
    D = 400
    w = np.asarray(Recurrence(D, CellConfig(arch="exprnn", hidden=256),
                              rngs=nnx.Rngs(0)).cells[0].params()["w_ih"], np.float64)
    np.testing.assert_allclose(w.std(), math.sqrt(2 / D), rtol=0.03)
