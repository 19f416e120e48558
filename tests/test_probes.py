"""Gradient-flow probes against independent references.

References: ``jax.jacrev`` of a plain Python loop over time (the cell's ``step``, its own input
projection and masking, a zero perturbation added to one part of the carry after every step),
closed forms (linear-regime tanh RNN, LSTM with a constant forget gate), ``np.linalg.svd``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence
from lstm_jax.cells import step_fn
from lstm_jax.errors import UserError
from lstm_jax.probes import (
    gate_statistics,
    jacobian_norms,
    last_step_readout_loss,
    loss_grad,
    loss_grad_autodiff,
    probe,
    spectral_norms,
)
from lstm_jax.probes.layer import stack_params

B, T, D, H = 3, 16, 4, 6


def _model(arch, layers=1, hidden=H, seed=0, **cfg):
    return Recurrence(D, CellConfig(arch=arch, hidden=hidden, **cfg), layers, rngs=nnx.Rngs(seed))


def _inputs(seed=1, batch=B, length=T):
    x = jax.random.normal(jax.random.key(seed), (batch, length, D))
    mask = np.ones((batch, length), bool)
    mask[1, length - 4:] = False  # padded at the end: anchor 11
    mask[2, 5:8] = False  # a gap in the middle: identity steps
    return x, jnp.asarray(mask)


def _loop(model, x, mask, *, eps_layer, eps_part, eps):
    """Plain Python loop over time; ``eps (B, T, H)`` added to ``eps_part`` of layer
    ``eps_layer`` after each step. Returns that layer's ``eps_part`` after every step
    ``(T, B, H)`` and the top layer's outputs ``(B, T, H)``."""
    step = step_fn(model.config)
    xs = [x[:, t] for t in range(x.shape[1])]
    for li, cell in enumerate(model.cells):
        p = cell.params()
        carry = {k: jnp.zeros((x.shape[0], model.config.hidden)) for k in cell.carry_names}
        hs, seen = [], []
        for t, x_t in enumerate(xs):
            new, _ = step(p, carry, x_t @ p["w_ih"] + p["bias"])
            carry = {k: jnp.where(mask[:, t:t + 1], new[k], carry[k]) for k in carry}
            if li == eps_layer:
                carry[eps_part] = carry[eps_part] + eps[:, t]
                seen.append(carry[eps_part])
            hs.append(carry["h"])
        xs = hs
        if li == eps_layer:
            part_seq = jnp.stack(seen)
    return part_seq, jnp.stack(xs, axis=1)


def _reference_jacobian(model, x, mask, anchors, layer, part):
    """∂part_{T_b}/∂part_t per row by jacrev of the unrolled loop: ``(B, H, T, H)``."""
    Bx, Tx = x.shape[:2]
    rows = jnp.arange(Bx)

    def f(eps):
        seq, _ = _loop(model, x, mask, eps_layer=layer, eps_part=part, eps=eps)
        return seq[jnp.asarray(anchors), rows]  # (B, H)

    jac = jax.jit(jax.jacrev(f))(jnp.zeros((Bx, Tx, model.config.hidden)))  # (B, H, B, T, H)
    return np.asarray(jac)[np.arange(Bx), :, np.arange(Bx)]


def _reference_log10(model, x, mask, anchors, layer, part):
    """log10 ‖∂part_T/∂part_{T−k}‖_F per row and lag ``(B, T)`` (NaN beyond the anchor)."""
    jac = _reference_jacobian(model, x, mask, anchors, layer, part)
    fro = np.linalg.norm(jac.astype(np.float64), axis=(1, 3))  # (B, T) per perturbed step
    out = np.full(fro.shape, np.nan)
    for b, a in enumerate(anchors):
        out[b, : a + 1] = np.log10(fro[b, a - np.arange(a + 1)])
    return out, jac


def _chain_reference_log10(model, x, mask, anchors, layer):
    """Per row and lag, log10 of the Frobenius norm of each diagonal block of
    ∂carry_T/∂carry_{T−k}, by the chain rule in float64: per-step Jacobians from ``jax.jacfwd`` of
    one masked step, multiplied in a plain NumPy loop over time. ``{part: (B, T)}``."""
    cell = model.cells[layer]
    parts = cell.carry_names
    step = step_fn(model.config)
    p = cell.params()
    res = model(x, mask, collect=parts)
    inputs = x if layer == 0 else res.sequences[layer - 1]["h"]
    seq = res.sequences[layer]

    def one(carry, x_t, m_t):  # one row, one step: (carry_{t−1}) -> carry_t
        new, _ = step(p, {k: v[None] for k, v in carry.items()}, x_t[None] @ p["w_ih"] + p["bias"])
        return jnp.concatenate([jnp.where(m_t, new[k][0], carry[k]) for k in parts])

    jac = jax.jit(jax.vmap(jax.vmap(jax.jacfwd(one))))
    prev = {k: jnp.concatenate([jnp.zeros_like(seq[k][:, :1]), seq[k][:, :-1]], axis=1)
            for k in parts}
    J = {k: np.asarray(v, np.float64) for k, v in jac(prev, inputs, mask).items()}
    # J[part]: (B, T, P·H, H) = ∂carry_t/∂part_{t−1}
    Hh = model.config.hidden
    out = {k: np.full(x.shape[:2], np.nan) for k in parts}
    for b, a in enumerate(anchors):
        M = np.eye(len(parts) * Hh)
        for k in range(a + 1):
            for i, part in enumerate(parts):
                blk = M[i * Hh:(i + 1) * Hh, i * Hh:(i + 1) * Hh]
                out[part][b, k] = np.log10(np.linalg.norm(blk))
            Jt = np.concatenate([J[part][b, a - k] for part in parts], axis=1)
            M = M @ Jt
    return out


@pytest.fixture(scope="module")
def lstm_case():
    model = _model("lstm")
    x, mask = _inputs()
    return model, x, mask, jacobian_norms(model, x, mask)


def test_exact_matches_jacrev_of_unrolled_loop():
    """The literal reference: jax.jacrev of a plain Python loop over time, 2 layers, layer 1."""
    model = _model("lstm", 2)
    x, mask = _inputs(length=9)  # short: the loop is unrolled into the compiled reference
    got = jacobian_norms(model, x, mask, layer=1, probes=["hidden", "cell"])
    np.testing.assert_array_equal(got["anchor"], [8, 4, 8])
    for name, part in (("hidden", "h"), ("cell", "c")):
        ref, _ = _reference_log10(model, x, mask, got["anchor"], 1, part)
        np.testing.assert_allclose(got[name]["log10"], ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("arch,layers,layer", [("rnn", 1, 0), ("lstm", 1, 0), ("gru", 2, 1)])
def test_exact_matches_chain_rule_of_step_jacobians(arch, layers, layer, lstm_case):
    if arch == "lstm":
        model, x, mask, got = lstm_case
    else:
        model = _model(arch, layers)
        x, mask = _inputs()
        got = jacobian_norms(model, x, mask, layer=layer)
    ref = _chain_reference_log10(model, x, mask, got["anchor"], layer)
    for name, part in (("hidden", "h"), ("cell", "c")):
        if name in got:
            np.testing.assert_allclose(got[name]["log10"], ref[part], atol=2e-5, rtol=0)
    # the gap: steps 5..7 of row 2 are the identity, so the curve is flat across them
    lag = lambda t: T - 1 - t  # noqa: E731
    h2 = got["hidden"]["log10"][2]
    np.testing.assert_allclose(h2[lag(7)], h2[lag(4)], atol=2e-5)


@pytest.mark.parametrize("arch,cfg", [("lstm", {}), ("rnn", {}), ("gru", {}),
                                      ("gru", {"gru_reset_after": False})])
def test_unmasked_and_generic_step_paths_match_chain_rule(arch, cfg):
    """``mask=None`` runs the fused forward loop without selects; the reset-before GRU has no
    fused step, so its probes pull back with ``jax.vjp`` of the step. Both against the chain
    rule of per-step Jacobians."""
    model = _model(arch, **cfg)
    x, _ = _inputs()
    got = jacobian_norms(model, x, None)
    np.testing.assert_array_equal(got["anchor"], [T - 1] * B)
    ref = _chain_reference_log10(model, x, jnp.ones((B, T), bool), got["anchor"], 0)
    for name, part in (("hidden", "h"), ("cell", "c")):
        if name in got:
            np.testing.assert_allclose(got[name]["log10"], ref[part], atol=2e-5, rtol=0)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
def test_step_jacobian_factors_match_vjp_of_the_cell_step_float64(arch):
    """``carry_vjp`` on the factors from the fused forward loop = ``jax.vjp`` of the cell's own
    masked step at every step, for 3 probe vectors per row, in float64 (padded rows included)."""
    from lstm_jax.fused import forward_with_residuals
    from lstm_jax.probes.step_jacobian import carry_vjp, step_jacobians

    with jax.enable_x64(True):
        model = Recurrence(D, CellConfig(arch=arch, hidden=H), rngs=nnx.Rngs(3), dtype=jnp.float64)
        p = model.cells[0].params()
        step = step_fn(model.config)
        x, mask = _inputs()
        xs, m = jnp.swapaxes(x, 0, 1).astype(jnp.float64), jnp.swapaxes(mask, 0, 1)
        carry0 = {k: 0.3 * jax.random.normal(jax.random.key(i), (B, H), jnp.float64)
                  for i, k in enumerate(model.cells[0].carry_names)}
        hs, cs, res = forward_with_residuals(arch, p, xs, m, carry0)
        jac = step_jacobians(arch, res)
        carries = {"h": hs, "c": cs} if arch == "lstm" else {"h": hs}
        prev = {k: jnp.concatenate([carry0[k][None], v[:-1]]) for k, v in carries.items()}
        for t in range(T):
            def masked(c, t=t):
                new, _ = step(p, c, xs[t] @ p["w_ih"] + p["bias"])
                return {k: jnp.where(m[t][:, None], new[k], c[k]) for k in c}

            now, pull = jax.vjp(masked, {k: v[t] for k, v in prev.items()})
            for k in now:  # the fused forward carries the same states
                np.testing.assert_allclose(now[k], carries[k][t], rtol=1e-12, atol=1e-13)
            vs = {k: jax.random.normal(jax.random.key(100 + t), (3, B, H), jnp.float64)
                  for k in now}
            jac_t = jax.tree.map(lambda a, t=t: a[t], jac)
            want = jax.vmap(lambda v, pull=pull: pull(v)[0])(vs)
            got = jax.vmap(lambda v, jac_t=jac_t: carry_vjp(arch, p["w_hh"], jac_t, v))(vs)
            for k in want:
                np.testing.assert_allclose(got[k], want[k], rtol=1e-11, atol=1e-12)


def test_rnn_linear_regime_closed_form_to_1e_minus_99():
    """h_t = tanh(λ Q h_{t−1}) at h = 0: ∂h_T/∂h_{T−k} = (λQ)^k, Frobenius norm λ^k √H."""
    lam, length = 0.1, 100
    model = _model("rnn", hidden=8, recurrent_scale=lam)
    cell = model.cells[0]
    cell.bias[...] = jnp.zeros_like(cell.bias[...])
    x = 1e-6 * jax.random.normal(jax.random.key(0), (2, length, D))  # tanh' = 1 − O(1e-12)
    got = jacobian_norms(model, x)["hidden"]["log10"]
    k = np.arange(length)
    truth = k * math.log10(lam) + 0.5 * math.log10(8)
    assert truth[-1] < -98
    np.testing.assert_allclose(got, np.broadcast_to(truth, got.shape), atol=1e-3, rtol=0)


def _constant_forget_lstm(f, w_hh_scale=0.0, hidden=8):
    model = _model("lstm", hidden=hidden)
    cell = model.cells[0]
    Hh = hidden
    w_ih = cell.w_ih[...].at[:, Hh:2 * Hh].set(0.0)  # forget gate ignores x
    bias = cell.bias[...].at[Hh:2 * Hh].set(math.log(f / (1 - f)))
    cell.w_ih[...] = w_ih
    cell.bias[...] = bias
    cell.w_hh[...] = cell.w_hh[...] * w_hh_scale
    return model


def test_lstm_constant_forget_gate_cell_is_f_to_the_k_far_lags():
    """Zero recurrent weights, σ(b_f) = f: ∂C_T/∂C_{T−k} = f^k I exactly; ~1e-80 at k = 88."""
    f, length = 0.125, 90
    model = _constant_forget_lstm(f)
    x = jax.random.normal(jax.random.key(3), (2, length, D))
    got = jacobian_norms(model, x, probes=["cell", "cec"])
    k = np.arange(length)
    truth = k * math.log10(f) + 0.5 * math.log10(8)
    assert truth[-2] < -78
    for name in ("cell", "cec"):
        assert np.all(np.isfinite(got[name]["log10"]))
        np.testing.assert_allclose(got[name]["log10"], np.broadcast_to(truth, (2, length)),
                                   atol=1e-3, rtol=0)


def test_lstm_cell_at_lag_one_is_the_forget_gate_and_differs_from_cec_later(lstm_case):
    model, x, mask, got = lstm_case
    f = np.asarray(model(x, mask, collect=("f",)).sequences[0]["f"], np.float64)  # (B, T, H)
    for row, a in enumerate(got["anchor"]):
        want = np.log10(np.linalg.norm(f[row, a]))
        assert got["cell"]["log10"][row, 1] == pytest.approx(want, abs=1e-6)
        assert got["cec"]["log10"][row, 1] == pytest.approx(want, abs=1e-6)
    diff = np.abs(got["cell"]["log10"][:, 2:6] - got["cec"]["log10"][:, 2:6])
    assert np.nanmax(diff) > 1e-2  # the paths through h matter from k = 2 on


def test_hutchinson_within_four_standard_errors_of_exact(lstm_case):
    model, x, mask, ex = lstm_case
    probes = ["hidden", "cell"]
    hu = jacobian_norms(model, x, mask, probes=probes, method="hutchinson", samples=32,
                        key=jax.random.key(11))
    for name in probes:
        exact_sq = 10.0 ** (2 * ex[name]["log10"])
        est_sq = 10.0 ** (2 * hu[name]["log10"])
        se = 10.0 ** hu[name]["log10_se"]
        valid = ~np.isnan(exact_sq)
        err = np.abs(est_sq - exact_sq)[valid]
        assert np.all(err <= 4 * se[valid] + 1e-5 * exact_sq[valid])
        assert np.all(se[valid][exact_sq[valid] < 0.999 * H] > 0)  # an estimate, not exact


def _readout_all_steps(outputs):
    w = jnp.linspace(-1.0, 1.0, outputs.shape[-1])
    return jnp.sum(jnp.sin(outputs @ w) * jnp.arange(outputs.shape[1]) / outputs.shape[1])


@pytest.mark.parametrize("arch,layers,layer,loss", [("lstm", 2, 0, "all_steps"),
                                                    ("gru", 2, 1, "last_step")])
def test_loss_grad_matches_grad_of_unrolled_loop(arch, layers, layer, loss):
    model = _model(arch, layers, seed=7)
    x, mask = _inputs(seed=8, length=10)  # short: the reference loop runs eagerly
    anchor = np.array([9, 5, 9])
    if loss == "all_steps":
        loss_fn = _readout_all_steps
    else:
        loss_fn = last_step_readout_loss(jax.random.key(2), H, jnp.asarray(anchor))
    got = loss_grad(model, x, mask, loss_fn, layer=layer)["log10"]
    # autodiff with the zero-perturbation trick of the scan
    g = loss_grad_autodiff(step_fn(model.config), stack_params(model), x, mask,
                           model.init_carry(B), layer, loss_fn)

    # independent: jax.grad of the loss of the Python loop, against eps on h
    def loop_loss(eps, loss_fn=loss_fn):
        return loss_fn(_loop(model, x, mask, eps_layer=layer, eps_part="h", eps=eps)[1])

    ref = jax.jit(jax.grad(loop_loss))(jnp.zeros((B, 10, H)))
    with np.errstate(divide="ignore"):
        auto = np.log10(np.linalg.norm(np.asarray(g, np.float64), axis=-1))
        ref = np.log10(np.linalg.norm(np.asarray(ref, np.float64), axis=-1))
    for row, a in enumerate(anchor):
        np.testing.assert_allclose(got[row, : a + 1], ref[row, : a + 1], atol=1e-4)
        np.testing.assert_allclose(auto[row, : a + 1], ref[row, : a + 1], atol=1e-4)
        assert np.all(np.isnan(got[row, a + 1:]))


def test_loss_grad_stays_finite_where_float32_autodiff_underflows():
    lam, length = 0.1, 80
    model = _model("rnn", hidden=8, recurrent_scale=lam)
    model.cells[0].bias[...] = jnp.zeros_like(model.cells[0].bias[...])
    x = jnp.zeros((1, length, D))

    def loss_fn(outputs):  # at h = 0: ∂L/∂h_T = 1, so ∂L/∂h_t = (λQ)^{T−t} 1
        return jnp.sum(outputs[:, -1] * 1.0) + jnp.sum(outputs[:, -1] ** 2)

    got = loss_grad(model, x, None, loss_fn)["log10"][0]
    q = np.asarray(model.cells[0].w_hh[...], np.float64)  # (λQ), row-vector convention h @ W
    v, ref = np.ones(8), []
    for _ in range(length):
        ref.append(np.log10(np.linalg.norm(v)))
        v = q @ v
    np.testing.assert_allclose(got, ref[::-1], atol=1e-3)
    g = loss_grad_autodiff(step_fn(model.config), stack_params(model), x, None,
                           model.init_carry(1), 0, loss_fn)
    assert np.any(np.asarray(g)[0, :10] == 0.0)  # what plain float32 gives


def test_spectral_norm_matches_svd_of_jacobian():
    model = _model("lstm", seed=9)
    x, mask = _inputs(seed=10)
    lags = np.array([0, 1, 3, 7])
    got = spectral_norms(model, x, mask, lags=lags, iters=60)
    anchors = [T - 1, T - 5, T - 1]
    _, jac = _reference_log10(model, x, mask, anchors, 0, "h")  # (B, H_out, T, H_in)
    for row, a in enumerate(anchors):
        for j, k in enumerate(lags):
            sigma = np.linalg.svd(jac[row, :, a - k, :].astype(np.float64), compute_uv=False)[0]
            assert got["log10"][row, j] == pytest.approx(np.log10(sigma), abs=2e-3)


def test_gate_statistics_against_collected_gates():
    model = _model("gru", seed=12)
    x, mask = _inputs(seed=13)
    stats = gate_statistics(model, x, mask)
    seq = model(x, mask, collect=("r", "z")).sequences[0]
    m = np.asarray(mask)
    for g in ("r", "z"):
        vals = np.asarray(seq[g])
        for t in (0, 6, T - 1):
            rows = vals[m[:, t], t]
            assert stats[g]["mean"][t] == pytest.approx(rows.mean(), abs=1e-6)
            sat = ((rows < 0.05) | (rows > 0.95)).mean()
            assert stats[g]["saturated"][t] == pytest.approx(sat, abs=1e-6)


def test_probe_record_is_batch_summary_and_json_ready(lstm_case):
    import json

    model, x, mask, per_row = lstm_case
    rec = probe(model, x, mask)
    json.dumps(rec, allow_nan=True)
    assert rec["method"] == "exact" and len(rec["k"]) == T
    np.testing.assert_allclose(rec["log10_cec"][:12], per_row["cec"]["log10"][:, :12].mean(0),
                               atol=1e-6)
    assert set(rec["gates"]) == {"i", "f", "o"}
    assert rec["log10_hidden"][0] == pytest.approx(0.5 * math.log10(H), abs=1e-5)  # k = 0: I


def test_user_errors():
    model = _model("rnn")
    x, mask = _inputs()
    with pytest.raises(UserError, match="probe"):
        jacobian_norms(model, x, probes=["cell"])
    with pytest.raises(UserError, match="method"):
        jacobian_norms(model, x, method="svd")
    with pytest.raises(UserError, match="layer"):
        jacobian_norms(model, x, layer=1)
    with pytest.raises(UserError, match="anchor"):
        jacobian_norms(model, x, anchor=T)


def test_cli_probe_writes_json_and_figures(tmp_path, lstm_case):
    from lstm_jax.cli import main
    from lstm_jax.io import read_json
    from lstm_jax.plots.probes import plot_decay, plot_loss_grad, plot_training_heatmap

    out = tmp_path / "probe"
    rc = main(["probe", "--arch", "lstm", "--hidden", "4", "--seq-len", "12", "--batch", "2",
               "--features", "3", "--method", "hutchinson", "--samples", "3", "--out", str(out)])
    assert rc == 0
    res = read_json(out / "probe.json")
    assert res["k"] == list(range(12)) and res["config"]["method"] == "hutchinson"
    rec = res["archs"]["lstm"]
    assert {"log10_hidden", "log10_cell", "log10_cec", "log10_loss_grad", "cell_rel_se"} <= set(rec)
    assert (out / "probe.png").stat().st_size > 0 and (out / "loss_grad.png").stat().st_size > 0
    assert main(["probe", "--arch", "rnn", "--method", "svd", "--out", str(out)]) == 2
    # overlaying architectures, and the training-loop figure from records over steps
    rnn_like = {k: v for k, v in rec.items() if "cell" not in k and "cec" not in k}
    both = {"archs": {"lstm": rec, "rnn": dict(rnn_like, arch="rnn")}}
    assert plot_decay(both, tmp_path / "both.png").stat().st_size > 0
    assert plot_loss_grad(both, tmp_path / "lg.png").stat().st_size > 0
    recs = [dict(rec, step=s) for s in (0, 10, 20)]
    assert plot_training_heatmap(recs, tmp_path / "heat.png").stat().st_size > 0
