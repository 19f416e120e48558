"""The three cells against an independent NumPy loop, Flax's own cells, and their initialisers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence, UserError
from tests.reference import numpy_run

ARCHS = ["rnn", "lstm", "gru"]


def _random_params(model, seed=0, scale=0.5):
    """Overwrite every parameter with random values so no structure (zeros, orthogonality) hides bugs."""
    rng = np.random.default_rng(seed)
    for cell in model.cells:
        for name, value in cell.params().items():
            getattr(cell, name)[...] = jnp.asarray(rng.normal(0, scale, value.shape), value.dtype)


@pytest.mark.parametrize("arch, reset_after",
                         [("rnn", True), ("lstm", True), ("gru", True), ("gru", False)])
def test_matches_numpy_loop_float32(arch, reset_after):
    cfg = CellConfig(arch=arch, hidden=6, gru_reset_after=reset_after)
    model = Recurrence(4, cfg, rngs=nnx.Rngs(0))
    _random_params(model)
    x = np.random.default_rng(1).normal(size=(3, 9, 4)).astype(np.float32)
    result = model(jnp.asarray(x))
    ref_h, ref_final = numpy_run(arch, model.cells[0].params(), x, reset_after=reset_after)
    np.testing.assert_allclose(result.outputs, ref_h, rtol=2e-5, atol=2e-5)
    for k, v in ref_final.items():
        np.testing.assert_allclose(result.final_carry[0][k], v, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_matches_numpy_loop_float64(arch):
    with jax.enable_x64(True):
        cfg = CellConfig(arch=arch, hidden=5)
        model = Recurrence(3, cfg, rngs=nnx.Rngs(0), dtype=jnp.float64)
        _random_params(model, seed=3)
        x = np.random.default_rng(2).normal(size=(2, 12, 3))
        mask = np.ones((2, 12), bool)
        mask[0, 7:] = False
        result = model(jnp.asarray(x), jnp.asarray(mask))
        assert result.outputs.dtype == jnp.float64
        ref_h, ref_final = numpy_run(arch, model.cells[0].params(), x, mask)
        np.testing.assert_allclose(result.outputs, ref_h, rtol=1e-12, atol=1e-12)
        for k, v in ref_final.items():
            np.testing.assert_allclose(result.final_carry[0][k], v, rtol=1e-12, atol=1e-12)


def test_lstm_gates_follow_hochreiter_schmidhuber():
    """C_t = f⊙C_{t−1} + i⊙C̃ and h_t = o⊙tanh(C_t), read back from the collected gates."""
    model = Recurrence(3, CellConfig(arch="lstm", hidden=4), rngs=nnx.Rngs(0))
    _random_params(model)
    x = jax.random.normal(jax.random.key(0), (2, 6, 3))
    seq = model(x, collect=("c", "i", "f", "o")).sequences[0]
    c_prev = jnp.concatenate([jnp.zeros((2, 1, 4)), seq["c"][:, :-1]], axis=1)
    h_prev = jnp.concatenate([jnp.zeros((2, 1, 4)), seq["h"][:, :-1]], axis=1)
    p = model.cells[0].params()  # gate blocks (i, f, g=C̃, o), PyTorch's order
    z = x @ p["w_ih"] + h_prev @ p["w_hh"] + p["bias"]
    i, f, c_tilde, o = (z[..., k * 4:(k + 1) * 4] for k in range(4))
    for name, pre in (("i", i), ("f", f), ("o", o)):
        np.testing.assert_allclose(seq[name], jax.nn.sigmoid(pre), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seq["c"], seq["f"] * c_prev + seq["i"] * jnp.tanh(c_tilde),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(seq["h"], seq["o"] * jnp.tanh(seq["c"]), rtol=1e-6, atol=1e-6)


def _copy_to_flax(arch, ours, theirs, H):
    p = {k: np.asarray(v) for k, v in ours.cells[0].params().items()}
    if arch == "lstm":
        for k, (i_name, h_name) in enumerate([("ii", "hi"), ("if_", "hf"), ("ig", "hg"), ("io", "ho")]):
            getattr(theirs, i_name).kernel[...] = p["w_ih"][:, k * H:(k + 1) * H]
            getattr(theirs, h_name).kernel[...] = p["w_hh"][:, k * H:(k + 1) * H]
            getattr(theirs, h_name).bias[...] = p["bias"][k * H:(k + 1) * H]
    elif arch == "gru":
        theirs.dense_i.kernel[...] = p["w_ih"]
        theirs.dense_i.bias[...] = p["bias"]
        theirs.dense_h.kernel[...] = p["w_hh"]
    else:
        theirs.dense_i.kernel[...] = p["w_ih"]
        theirs.dense_i.bias[...] = p["bias"]
        theirs.dense_h.kernel[...] = p["w_hh"]


@pytest.mark.parametrize("arch", ARCHS)
def test_matches_flax_cells(arch):
    """Same weights in Flax's nnx.LSTMCell / nnx.GRUCell / nnx.SimpleCell give the same states.

    Flax's GRUCell has no recurrent candidate bias (our ``b_hn``), so it is zero here.
    """
    H, D = 5, 3
    ours = Recurrence(D, CellConfig(arch=arch, hidden=H), rngs=nnx.Rngs(0))
    _random_params(ours)
    if arch == "gru":
        ours.cells[0].b_hn[...] = jnp.zeros((H,))
    flax_cls = {"lstm": nnx.LSTMCell, "gru": nnx.GRUCell, "rnn": nnx.SimpleCell}[arch]
    theirs = flax_cls(D, H, rngs=nnx.Rngs(1))
    _copy_to_flax(arch, ours, theirs, H)
    x = jax.random.normal(jax.random.key(2), (2, 7, D))
    carry = theirs.initialize_carry((2, D), nnx.Rngs(0))
    outs = []
    for t in range(7):
        carry, y = theirs(carry, x[:, t])
        outs.append(y)
    np.testing.assert_allclose(ours(x).outputs, jnp.stack(outs, 1), rtol=1e-5, atol=1e-5)


def test_forget_bias_and_chrono_init():
    H = 256
    lstm = Recurrence(3, CellConfig(arch="lstm", hidden=H, forget_bias=2.5), rngs=nnx.Rngs(0))
    bias = np.asarray(lstm.cells[0].bias[...]).reshape(4, H)
    np.testing.assert_array_equal(bias[1], 2.5)
    np.testing.assert_array_equal(bias[[0, 2, 3]], 0.0)

    tmax = 1000.0
    chrono = Recurrence(3, CellConfig(arch="lstm", hidden=H, chrono_tmax=tmax), rngs=nnx.Rngs(0))
    b = np.asarray(chrono.cells[0].bias[...]).reshape(4, H)
    assert np.all(b[1] >= 0) and np.all(b[1] <= np.log(tmax - 1) + 1e-5)
    np.testing.assert_allclose(b[0], -b[1])
    # exp(b_f) ~ U[1, T_max − 1]: its mean is T_max / 2 within a few standard errors.
    mean_sd = (tmax - 2) / np.sqrt(12) / np.sqrt(H)
    assert abs(np.exp(b[1]).mean() - tmax / 2) < 4 * mean_sd

    gru = Recurrence(3, CellConfig(arch="gru", hidden=H, chrono_tmax=tmax), rngs=nnx.Rngs(0))
    bz = np.asarray(gru.cells[0].bias[...]).reshape(3, H)[1]
    assert bz.min() >= 0 and bz.max() > 3


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.5])
def test_orthogonal_recurrent_kernel_has_the_requested_spectral_radius(scale):
    H = 32
    rnn = Recurrence(3, CellConfig(arch="rnn", hidden=H, recurrent_scale=scale), rngs=nnx.Rngs(0))
    w = np.asarray(rnn.cells[0].w_hh[...], np.float64)
    np.testing.assert_allclose(w.T @ w, scale**2 * np.eye(H), atol=1e-5)
    np.testing.assert_allclose(np.abs(np.linalg.eigvals(w)), scale, rtol=1e-4)
    lstm = Recurrence(3, CellConfig(arch="lstm", hidden=H), rngs=nnx.Rngs(0))
    blocks = np.split(np.asarray(lstm.cells[0].w_hh[...], np.float64), 4, axis=1)
    for blk in blocks:
        np.testing.assert_allclose(blk.T @ blk, np.eye(H), atol=1e-5)


def test_normal_recurrent_init_spectral_radius_near_scale():
    H = 256
    rnn = Recurrence(3, CellConfig(arch="rnn", hidden=H, recurrent_init="normal",
                                   recurrent_scale=0.8), rngs=nnx.Rngs(0))
    radius = np.abs(np.linalg.eigvals(np.asarray(rnn.cells[0].w_hh[...], np.float64))).max()
    assert 0.7 < radius < 0.9


@pytest.mark.parametrize("kwargs, field", [
    ({"arch": "transformer"}, "arch"),
    ({"hidden": 0}, "hidden"),
    ({"hidden": -3}, "hidden"),
    ({"hidden": 2.5}, "hidden"),
    ({"recurrent_init": "xavier"}, "recurrent_init"),
    ({"recurrent_scale": -1.0}, "recurrent_scale"),
    ({"recurrent_scale": float("nan")}, "recurrent_scale"),
    ({"forget_bias": float("inf")}, "forget_bias"),
    ({"arch": "rnn", "chrono_tmax": 100.0}, "chrono_tmax"),
    ({"arch": "lstm", "chrono_tmax": 1.0}, "chrono_tmax"),
])
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(UserError, match=field):
        CellConfig(**kwargs)
