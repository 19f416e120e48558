"""Probes of a ``flax.nnx.RNN`` (any ``nnx.RNNCellBase``, any pytree carry) against references.

References: the package's own probes of a ``Recurrence`` given the same weights (Flax's
``LSTMCell``/``OptimizedLSTMCell``/``GRUCell``/``SimpleCell`` are the package's LSTM, LSTM,
reset-after GRU with ``b_hn = 0`` and tanh RNN), and ``jax.jacrev``/``jax.grad`` of a plain
Python loop over time for a user cell with a two-leaf carry of different sizes; the exact
method's mean for Hutchinson; ``np.linalg.svd`` for σ_max. All in float64 where tolerances are
tight.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from lstm_jax.errors import UserError
from lstm_jax.probes import gate_statistics, jacobian_norms, loss_grad, probe, spectral_norms

B, T, D, H = 3, 12, 3, 4
DOC = Path(__file__).resolve().parents[1] / "docs" / "probing_flax_cells.md"


def _mask(length=T):
    m = np.ones((B, length), bool)
    m[1, length - 3:] = False  # padded at the end: anchor length−4
    m[2, 4:6] = False  # a gap: identity steps
    return jnp.asarray(m)


def _x(dtype, seed=1, length=T):
    return jax.random.normal(jax.random.key(seed), (B, length, D), dtype)


def _close_log10(got, want, rtol):
    """Same NaN pattern; finite values equal within ``rtol`` on the norms 10**log10."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    np.testing.assert_allclose(10.0 ** got[ok], 10.0 ** want[ok], rtol=rtol, atol=0)


# --- Flax's cells with the package's weights ---------------------------------------------------

def _blocks(a, n):
    return np.split(np.asarray(a), n, axis=-1)


def _flax_twin(arch: str, cell_cls, pkg: Recurrence):
    """Flax ``cell_cls`` holding the weights of the package's one-layer ``pkg`` (float64)."""
    p = pkg.cells[0].params()
    cell = cell_cls(D, H, dtype=jnp.float64, param_dtype=jnp.float64, rngs=nnx.Rngs(9))
    if cell_cls is nnx.LSTMCell:  # one Linear per gate, gates (i, f, g, o) as ours
        for g, wi, wh, b in zip("ifgo", _blocks(p["w_ih"], 4), _blocks(p["w_hh"], 4),
                                _blocks(p["bias"], 4), strict=True):
            getattr(cell, "if_" if g == "f" else "i" + g).kernel[...] = wi
            getattr(cell, "h" + g).kernel[...] = wh
            getattr(cell, "h" + g).bias[...] = b
    elif cell_cls is nnx.OptimizedLSTMCell:
        cell.dense_i.kernel[...] = p["w_ih"]
        cell.dense_h.kernel[...] = p["w_hh"]
        cell.dense_h.bias[...] = p["bias"]
    else:  # GRUCell (no b_hn: n = tanh(W_n x + b_n + r ⊙ U_n h)) and SimpleCell
        cell.dense_i.kernel[...] = p["w_ih"]
        cell.dense_i.bias[...] = p["bias"]
        cell.dense_h.kernel[...] = p["w_hh"]
    return nnx.RNN(cell)


CELLS = [pytest.param("lstm", nnx.LSTMCell, id="LSTMCell"),
         pytest.param("lstm", nnx.OptimizedLSTMCell, id="OptimizedLSTMCell",
                      marks=pytest.mark.slow),  # same maths as LSTMCell: keep the default run short
         pytest.param("gru", nnx.GRUCell, id="GRUCell"),
         pytest.param("rnn", nnx.SimpleCell, id="SimpleCell")]


@pytest.mark.parametrize("arch,cell_cls", CELLS)
def test_flax_cells_match_package_cells_float64(arch, cell_cls):
    with jax.enable_x64(True):
        pkg = Recurrence(D, CellConfig(arch=arch, hidden=H, recurrent_init="normal"), rngs=nnx.Rngs(0),
                        dtype=jnp.float64)
        c = pkg.cells[0]
        c.bias[...] = 0.5 * jax.random.normal(jax.random.key(5), c.bias[...].shape, jnp.float64)
        if arch == "gru":
            c.b_hn[...] = jnp.zeros_like(c.b_hn[...])
        model = _flax_twin(arch, cell_cls, pkg)
        x, mask = _x(jnp.float64), _mask()

        want = jacobian_norms(pkg, x, mask)
        got = jacobian_norms(model, x, mask)
        np.testing.assert_array_equal(got["anchor"], want["anchor"])
        _close_log10(got["h"]["log10"], want["hidden"]["log10"], 1e-10)
        if arch == "lstm":
            _close_log10(got["c"]["log10"], want["cell"]["log10"], 1e-10)
            assert set(got) == {"k", "anchor", "c", "h", "total"}
        else:  # one leaf: the total is that leaf
            _close_log10(got["total"]["log10"], want["hidden"]["log10"], 1e-10)
            assert set(got) == {"k", "anchor", "h", "total"}


# --- a user's own cell with a two-leaf carry of different sizes --------------------------------

class TwoTimescaleCell(nnx.RNNCellBase):
    """A fast tanh layer and a slow leaky memory of shape (2, 3): carry {"fast", "slow"}."""

    def __init__(self, in_features: int, *, rngs: nnx.Rngs, dtype=jnp.float64):
        kw = {"param_dtype": dtype, "dtype": dtype, "rngs": rngs}
        self.in_features = in_features
        self.x_fast = nnx.Linear(in_features, 5, **kw)
        self.fast_fast = nnx.Linear(5, 5, use_bias=False, **kw)
        self.slow_fast = nnx.Linear(6, 5, use_bias=False, **kw)
        self.fast_slow = nnx.Linear(5, 6, **kw)

    def __call__(self, carry, x):
        b = x.shape[0]
        slow = carry["slow"].reshape(b, 6)
        fast = jnp.tanh(self.x_fast(x) + self.fast_fast(carry["fast"]) + self.slow_fast(slow))
        slow = 0.9 * slow + 0.1 * jnp.tanh(self.fast_slow(fast) * slow + fast.sum(-1, keepdims=True))
        return {"fast": fast, "slow": slow.reshape(b, 2, 3)}, fast

    def initialize_carry(self, input_shape, rngs=None, carry_init=None):
        b = input_shape[:-1]
        return {"fast": jnp.zeros(b + (5,), jnp.float64),
                "slow": 0.5 * jnp.ones(b + (2, 3), jnp.float64)}

    @property
    def num_feature_axes(self) -> int:
        return 1


SLICES = {"fast": slice(0, 5), "slow": slice(5, 11)}
TT = 8  # the unrolled reference's length (its compile grows with T)


def _flat(carry):
    return jnp.concatenate([carry["fast"], carry["slow"].reshape(carry["slow"].shape[0], 6)], -1)


def _loop(cell, x, mask, eps):
    """Plain Python loop; ``eps (T, B, 11)`` added to the (flattened) carry after each step.
    Returns the flattened carries ``(T, B, 11)`` and the outputs ``(B, T, 5)``."""
    carry = cell.initialize_carry((x.shape[0], D))
    seen, ys = [], []
    for t in range(x.shape[1]):
        new, y = cell(carry, x[:, t])
        m = mask[:, t]
        carry = {"fast": jnp.where(m[:, None], new["fast"], carry["fast"]) + eps[t, :, :5],
                 "slow": jnp.where(m[:, None, None], new["slow"], carry["slow"])
                 + eps[t, :, 5:].reshape(-1, 2, 3)}
        seen.append(_flat(carry))
        ys.append(y)
    return jnp.stack(seen), jnp.stack(ys, axis=1)


@pytest.fixture(scope="module")
def toy():
    """The user cell, inputs, mask, anchors and the jacrev reference ``(B, 11, T, 11)``:
    row b's ∂carry_{T_b}/∂carry_t."""
    with jax.enable_x64(True):
        cell = TwoTimescaleCell(D, rngs=nnx.Rngs(2))
        x, mask = _x(jnp.float64, seed=3, length=TT), _mask(TT)
        anchors = np.array([TT - 1, TT - 4, TT - 1])
        rows = jnp.arange(B)

        def at_anchor(eps):
            return _loop(cell, x, mask, eps)[0][jnp.asarray(anchors), rows]  # (B, 11)

        jac = np.asarray(jax.jit(jax.jacrev(at_anchor))(jnp.zeros((TT, B, 11))))  # (B,11,T,B,11)
        jac = jac[np.arange(B), :, :, np.arange(B)]  # (B, 11, T, 11)
        return cell, x, mask, anchors, jac


def _reference_lags(jac, anchors, rows_sl, cols_sl):
    out = np.full((B, TT), np.nan)
    for b, a in enumerate(anchors):
        for k in range(a + 1):
            out[b, k] = np.log10(np.linalg.norm(jac[b, rows_sl, a - k, cols_sl]))
    return out


def test_user_cell_two_leaf_carry_matches_jacrev_of_a_python_loop(toy):
    cell, x, mask, anchors, jac = toy
    with jax.enable_x64(True):
        got = jacobian_norms(nnx.RNN(cell), x, mask)
    np.testing.assert_array_equal(got["anchor"], anchors)
    assert set(got) == {"k", "anchor", "fast", "slow", "total"}
    for name, sl in SLICES.items():
        _close_log10(got[name]["log10"], _reference_lags(jac, anchors, sl, sl), 1e-10)
    _close_log10(got["total"]["log10"], _reference_lags(jac, anchors, slice(None), slice(None)),
                 1e-10)
    # lag 0 is the identity: ‖I_n‖_F = √n
    np.testing.assert_allclose(got["slow"]["log10"][:, 0], 0.5 * np.log10(6), rtol=1e-12)


def test_user_cell_loss_grad_matches_grad_of_a_python_loop(toy):
    cell, x, mask, anchors, _ = toy
    with jax.enable_x64(True):
        w = jax.random.normal(jax.random.key(7), (B, TT, 5), jnp.float64)

        def loss_fn(outputs):  # every step's output enters
            return jnp.sum(jnp.tanh(outputs) * w)

        got = loss_grad(nnx.RNN(cell), x, mask, loss_fn)
        g = np.asarray(jax.jit(jax.grad(lambda e: loss_fn(_loop(cell, x, mask, e)[1])))(
            jnp.zeros((TT, B, 11))))  # (T, B, 11): ∂L/∂carry_t
    after = np.arange(TT)[None, :] > anchors[:, None]
    for name, sl in [*SLICES.items(), ("total", slice(None))]:
        with np.errstate(divide="ignore"):
            want = np.where(after, np.nan, np.log10(np.linalg.norm(g[:, :, sl], axis=-1)).T)
        _close_log10(got["log10"] if name == "total" else got["leaves"][name], want, 1e-10)


@pytest.mark.slow  # a compile of its own (power iteration: reverse and forward sweeps)
def test_user_cell_spectral_matches_svd(toy):
    cell, x, mask, anchors, jac = toy
    lags = np.array([0, 2, 4])
    with jax.enable_x64(True):
        got = spectral_norms(nnx.RNN(cell), x, mask, lags=lags, iters=60)
    want = np.array([[np.linalg.svd(jac[b, :, a - k, :], compute_uv=False)[0] for k in lags]
                     for b, a in enumerate(anchors)])
    np.testing.assert_allclose(10.0 ** got["log10"], want, rtol=1e-6)


# --- Hutchinson, records, errors ---------------------------------------------------------------

@pytest.fixture(scope="module")
def lstm_rnn():
    return nnx.RNN(nnx.LSTMCell(D, H, rngs=nnx.Rngs(4)))


def test_default_loss_grad_is_nan_from_each_rows_anchor_not_minus_inf(lstm_rnn):
    """With the default readout of y at each row's anchor, the carry after the anchor cannot
    reach the loss: that step is NaN (no measurement), like the steps after it, and the batch
    summary stays finite before the earliest anchor instead of turning −inf."""
    x, mask = _x(jnp.float32), _mask()
    lg = loss_grad(lstm_rnn, x, mask)
    anchors = np.array([T - 1, T - 4, T - 1])  # rows 0 and 2 end at T−1, row 1 three steps early
    v = np.asarray(lg["log10"])
    for b, a in enumerate(anchors):
        assert np.isnan(v[b, a:]).all() and np.isfinite(v[b, :a]).all(), (b, a, v[b])
    rec = probe(lstm_rnn, x, mask)
    assert np.isfinite(rec["log10_loss_grad"][: T - 4]).all()
    assert not np.isneginf(rec["log10_loss_grad"]).any()


def test_hutchinson_agrees_with_exact_in_expectation_and_time_major_matches(lstm_rnn):
    x, mask = _x(jnp.float32), _mask()
    exact = jacobian_norms(lstm_rnn, x, mask)
    est = jacobian_norms(lstm_rnn, x, mask, method="hutchinson", samples=2000,
                         key=jax.random.key(11))
    for name in ("c", "h", "total"):
        e, h, se = (np.asarray(v, np.float64) for v in
                    (exact[name]["log10"], est[name]["log10"], est[name]["log10_se"]))
        ok = ~np.isnan(e)
        sq_e, sq_h, se = 10.0 ** (2 * e[ok]), 10.0 ** (2 * h[ok]), 10.0 ** se[ok]
        assert np.all(np.abs(sq_h - sq_e) <= 5 * se + 1e-6 * sq_e), name
        assert np.all(np.abs(sq_h / sq_e - 1) < 0.15), name
    # the same compiled program, fed (time, batch, features)
    tm = jacobian_norms(nnx.RNN(lstm_rnn.cell, time_major=True), jnp.swapaxes(x, 0, 1), mask)
    for name in ("c", "h", "total"):
        np.testing.assert_array_equal(tm[name]["log10"], exact[name]["log10"])
    assert gate_statistics(lstm_rnn, x, mask) == {}


@pytest.mark.parametrize("bad", [nnx.LSTMCell(D, H, rngs=nnx.Rngs(0)),
                                 nnx.Linear(D, H, rngs=nnx.Rngs(0)), lambda x: x,
                                 nnx.RNN(nnx.Linear(D, H, rngs=nnx.Rngs(0)))],
                         ids=["bare-cell", "linear", "function", "rnn-of-linear"])
def test_anything_else_is_a_user_error_naming_what_is_accepted(bad):
    x = _x(jnp.float32)
    for fn in (probe, jacobian_norms, loss_grad, spectral_norms, gate_statistics):
        with pytest.raises(UserError, match=r"flax\.nnx\.RNN.*RNNCellBase|RNNCellBase.*Recurrence"):
            fn(bad, x)


def test_bad_arguments_for_an_nnx_rnn(lstm_rnn):
    x = _x(jnp.float32)
    cases = [(dict(layer=1), "layer"), (dict(probes=("hidden",)), "probe"),
             (dict(mask=jnp.ones((B, T + 1), bool)), "mask")]
    for kw, field in cases:
        with pytest.raises(UserError, match=field):
            jacobian_norms(lstm_rnn, x, **kw)
    with pytest.raises(UserError, match="reverse"):
        jacobian_norms(nnx.RNN(lstm_rnn.cell, reverse=True), x)
    with pytest.raises(UserError, match="features"):
        jacobian_norms(lstm_rnn, x[..., :2])


class PairCell(nnx.RNNCellBase):
    """A carry that is a tuple (a, (b,)): leaves named by their paths unless carry_names is set."""

    def __init__(self, *, rngs):
        self.lin = nnx.Linear(D, 2, rngs=rngs)

    def __call__(self, carry, x):
        a, (b,) = carry
        return (jnp.tanh(self.lin(x) + a), (b * 0.5 + a.sum(-1, keepdims=True),)), a

    def initialize_carry(self, input_shape, rngs=None, carry_init=None):
        return (jnp.zeros(input_shape[:-1] + (2,)), (jnp.zeros(input_shape[:-1] + (3,)),))

    @property
    def num_feature_axes(self):
        return 1


def test_carry_leaf_names():
    from lstm_jax.probes.flax_rnn import setup

    x = _x(jnp.float32)

    def names(cell, **kw):
        return setup(nnx.RNN(cell), x, None, kw.get("initial_carry"), 0).spec.names

    assert names(nnx.LSTMCell(D, H, rngs=nnx.Rngs(0))) == ("c", "h")
    assert names(nnx.OptimizedLSTMCell(D, H, rngs=nnx.Rngs(0))) == ("c", "h")
    assert names(nnx.GRUCell(D, H, rngs=nnx.Rngs(0))) == ("h",)
    assert names(nnx.SimpleCell(D, H, rngs=nnx.Rngs(0))) == ("h",)
    cell = PairCell(rngs=nnx.Rngs(0))
    assert names(cell) == ("0", "1/0")
    PairCell.carry_names = ("fast", "slow")
    try:
        assert names(cell) == ("fast", "slow")
        PairCell.carry_names = ("total", "slow")
        with pytest.raises(UserError, match="carry_names"):
            names(cell)
        PairCell.carry_names = ("a",)
        with pytest.raises(UserError, match="carry_names"):
            names(cell)
    finally:
        del PairCell.carry_names
    with pytest.raises(UserError, match="batch"):
        names(cell, initial_carry=(jnp.zeros((B + 1, 2)), (jnp.zeros((B + 1, 3)),)))
    with pytest.raises(UserError, match="floating point"):
        names(cell, initial_carry=(jnp.zeros((B, 2), jnp.int32), (jnp.zeros((B, 3)),)))


def test_docs_page_runs():
    """The python block of docs/probing_flax_cells.md runs as written."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    ns = {"__name__": "docs_example"}
    exec(compile(blocks[0], str(DOC), "exec"), ns)
    rec, jac = ns["rec"], ns["jac"]  # the record's keys as the page's table lists them
    json.dumps(rec)
    assert rec["arch"] == "LSTMCell" and rec["model"] == "flax.nnx.RNN" and rec["gates"] == {}
    assert rec["carry_sizes"] == {"c": 4, "h": 4}
    for key in ("log10_c", "log10_h", "log10_total", "log10_loss_grad", "log10_loss_grad_c",
                "log10_loss_grad_h"):
        assert len(rec[key]) == len(rec["k"]) == 8 and len(rec[f"{key}_std"]) == 8, key
    assert set(jac) == {"k", "anchor", "fast", "slow", "total"}
    assert jac["total"]["log10_se"].shape == (2, 8)
