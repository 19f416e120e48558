"""The cell registry, the no-branching-on-names rule, and a cell without fast paths.

A toy cell defined here (no fused path, no Jacobian factors, an extra parameter) must train
through ``Recurrence`` (plain ``lax.scan`` + ``jax.grad``) and be probed (generic ``jax.vjp``
sweep, log-domain), checked against a plain Python loop written independently of the cell.
"""

from __future__ import annotations

import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax import CellConfig, Recurrence, UserError
from lstm_jax.cells import ARCHS, RecurrentCell, cell_class, register, registered, registry, step_fn
from lstm_jax.fused import fused_arch
from lstm_jax.probes import jacobian_norms

BUILT_IN = ("rnn", "lstm", "gru", "peephole", "cifg", "janet", "indrnn", "exprnn", "lru")
PACKAGE = Path(__file__).resolve().parents[1] / "lstm_jax"


def test_registry_lists_every_cell_with_description_and_paper(capsys):
    entries = registered()
    assert tuple(entries)[: len(BUILT_IN)] == BUILT_IN
    for name in BUILT_IN:
        e = entries[name]
        assert issubclass(e.cls, RecurrentCell) and e.cls.arch == name
        assert len(e.description) > 10 and re.search(r"\(\d{4}\)", e.paper)
        assert e.cls.__doc__ and re.search(r"\d{4}", e.cls.__doc__)
    from lstm_jax.cli import main

    assert main(["archs"]) == 0
    out = capsys.readouterr().out
    for name in BUILT_IN:
        assert re.search(rf"^{name}\s", out, re.M) and entries[name].paper in out


def test_archs_counts_parameters_and_finds_matching_widths(capsys):
    """One layer's parameters against the closed forms G·(D·H + H² + H) (+ H for the GRU's b_hn,
    + 3H for the peepholes), and the width of each cell closest to the LSTM's count."""
    from lstm_jax.cli import main
    from lstm_jax.cli.archs import layer_parameters, matching_width

    D, H = 2, 128
    block = D * H + H * H + H
    want = {"rnn": block, "lstm": 4 * block, "gru": 3 * block + H, "cifg": 3 * block,
            "janet": 2 * block, "peephole": 4 * block + 3 * H}
    assert {a: layer_parameters(a, D, H) for a in want} == want
    target = want["lstm"]  # 67,072
    # the tanh RNN: H'² + 3H' = 66,820 at 257, 67,338 at 258: 257 is the closer
    assert matching_width("rnn", D, target) == 257
    for arch in ("gru", "janet", "lru"):  # any cell: no other width is closer
        h = matching_width(arch, D, target)
        gap = abs(layer_parameters(arch, D, h) - target)
        for other in (h - 2, h - 1, h + 1, h + 2):
            try:
                assert abs(layer_parameters(arch, D, other) - target) >= gap, (arch, other)
            except UserError:  # the LRU refuses odd widths
                assert arch == "lru" and other % 2
    assert matching_width("lstm", D, target) == H
    assert main(["archs", "--hidden", "128", "--input-dim", "2", "--match-params", "lstm"]) == 0
    out = capsys.readouterr().out
    assert "16,768 parameters in one layer (H=128, D=2); H=257 has 66,820" in out
    assert main(["archs", "--match-params", "lstm"]) == 2
    assert "--match-params needs --hidden" in capsys.readouterr().err


def test_unknown_arch_lists_the_registered_names():
    from lstm_jax.cli.common import parse_archs
    from lstm_jax.config import TrainConfig

    for make in (lambda: CellConfig(arch="nope"), lambda: parse_archs("lstm,nope"),
                 lambda: TrainConfig(arch="nope"), lambda: cell_class("nope")):
        with pytest.raises(UserError, match="rnn, lstm, gru, peephole, cifg, janet"):
            make()


def test_cell_options_are_validated_by_the_cell():
    from lstm_jax.config import TrainConfig

    with pytest.raises(UserError, match="chrono_tmax applies to arch=.*not rnn"):
        CellConfig(arch="rnn", chrono_tmax=50.0)
    assert CellConfig(arch="janet", chrono_tmax=50.0).chrono_tmax == 50.0
    assert TrainConfig(arch="janet", chrono=40.0).cell().chrono_tmax == 40.0
    assert TrainConfig(arch="rnn", chrono=40.0).cell().chrono_tmax is None
    TrainConfig(arch="indrnn", chrono=10.0)
    with pytest.raises(UserError, match="fused"):
        TrainConfig(arch="indrnn", matmul_dtype="bfloat16")
    for arch in ("cifg", "janet", "peephole"):  # they have a fused path
        TrainConfig(arch=arch, matmul_dtype="bfloat16")
    # fast paths are asked of the cell, per configuration
    assert fused_arch(step_fn(CellConfig(arch="gru"))) is not None
    assert fused_arch(step_fn(CellConfig(arch="gru", gru_reset_after=False))) is None
    assert [a for a in BUILT_IN if step_fn(CellConfig(arch=a)).fused] == [
        "rnn", "lstm", "gru", "peephole", "cifg", "janet"]


# Comparisons of something named *arch* with a string literal, membership tests against literal
# tuples of names, and loops over literal name tuples: what "branching on a name" looks like.
_BRANCH = [
    re.compile(r"\barch\w*\s*(==|!=)\s*['\"]"),
    re.compile(r"['\"]\s*(==|!=)\s*\w*arch\w*\b"),
    re.compile(r"\barch\w*\s+(not\s+)?in\s+[\(\[\{]\s*['\"]"),
    re.compile(r"\bfor\s+\w*arch\w*\s+in\s+[\(\[]\s*['\"]"),
    re.compile(r"\.get\(\s*arch\w*\s*\)\s*$"),
]


def test_no_code_outside_cells_branches_on_an_architecture_name():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "cells" in path.relative_to(PACKAGE).parts:
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if any(p.search(code) for p in _BRANCH):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{i}: {line.strip()}")
    assert not offenders, "ask the cell instead:\n" + "\n".join(offenders)


def test_the_branch_patterns_catch_what_they_should():
    for bad in ('if arch == "lstm":', "x = 1 if cfg.arch != 'rnn' else 2",
                'if arch in ("lstm", "gru"):', 'for arch in ("rnn", "lstm"):',
                'if "gru" == arch:'):
        assert any(p.search(bad) for p in _BRANCH), bad
    for fine in ('arch: str = "lstm"', 'def f(arch="lstm"):', "check_choice('arch', a, ARCHS)"):
        assert not any(p.search(fine) for p in _BRANCH), fine


# ----------------------------------------------------------------------------------------------
# A cell without fast paths.

B, T, D, H = 3, 12, 2, 4


@pytest.fixture(scope="module")
def leaky():
    """``h_t = λ ⊙ h_{t−1} + tanh(W x_t + U h_{t−1} + b)``, λ an extra (H,) parameter."""

    @register("test_leaky", "test-only leaky tanh RNN", "none (2026)")
    class LeakyCell(RecurrentCell):
        blocks = 1

        def extra_params(self, key, dtype):
            return {"lam": jnp.full((self.hidden,), 0.5, dtype)}

        @staticmethod
        def step(params, carry, xw):
            h = params["lam"] * carry["h"] + jnp.tanh(xw + carry["h"] @ params["w_hh"])
            return {"h": h}, {}

    yield LeakyCell
    registry._REGISTRY.pop("test_leaky")


def _loop(p, x, mask):
    """Independent reference: a Python loop, x (B, T, D) → hs (T, B, H)."""
    h = jnp.zeros((x.shape[0], p["w_hh"].shape[0]), x.dtype)
    hs = []
    for t in range(x.shape[1]):
        new = p["lam"] * h + jnp.tanh(x[:, t] @ p["w_ih"] + p["bias"] + h @ p["w_hh"])
        h = jnp.where(mask[:, t, None], new, h)
        hs.append(h)
    return jnp.stack(hs)


def _data(dtype=jnp.float32):
    x = jax.random.normal(jax.random.key(0), (B, T, D), dtype)
    mask = np.ones((B, T), bool)
    mask[2, 8:] = False
    return x, jnp.asarray(mask)


def test_cell_without_fast_paths_trains_through_the_plain_scan(leaky):
    assert "test_leaky" in ARCHS
    with jax.enable_x64(True):
        model = Recurrence(D, CellConfig(arch="test_leaky", hidden=H), rngs=nnx.Rngs(0),
                           dtype=jnp.float64)  # impl="fused" by default: must fall back
        assert fused_arch(step_fn(model.config)) is None
        x, mask = _data(jnp.float64)
        r = jax.random.normal(jax.random.key(3), (T, B, H), jnp.float64)
        graphdef, state = nnx.split(model)

        def loss(state):
            out = nnx.merge(graphdef, state)(x, mask).outputs
            return jnp.sum(jnp.swapaxes(out, 0, 1) * r)

        got = jax.jit(jax.grad(loss))(state)["cells"][0]
        want = jax.grad(lambda p: jnp.sum(_loop(p, x, mask) * r))(model.cells[0].params())
        for name, g in want.items():
            np.testing.assert_allclose(got[name][...], g, rtol=1e-10, atol=1e-12)
        assert float(jnp.abs(want["lam"]).max()) > 0


def test_cell_without_fast_paths_is_probed_by_the_generic_sweep(leaky):
    with jax.enable_x64(True):
        model = Recurrence(D, CellConfig(arch="test_leaky", hidden=H), rngs=nnx.Rngs(1),
                           dtype=jnp.float64)
        x, mask = _data(jnp.float64)
        got = jacobian_norms(model, x, mask)
        assert set(got) == {"k", "anchor", "hidden"}  # no cell state, no forget gate
        p = model.cells[0].params()
        hs = _loop(p, x, mask)
        for b, anchor in enumerate((T - 1, T - 1, 7)):
            for k in (0, 1, 4, anchor):
                t0 = anchor - k

                def f(h, t0=t0, anchor=anchor):
                    for t in range(t0 + 1, anchor + 1):
                        new = p["lam"] * h + jnp.tanh(x[:, t] @ p["w_ih"] + p["bias"]
                                                      + h @ p["w_hh"])
                        h = jnp.where(mask[:, t, None], new, h)
                    return h

                J = jax.jacrev(f)(hs[t0])[b, :, b, :]
                np.testing.assert_allclose(got["hidden"]["log10"][b, k],
                                           np.log10(np.linalg.norm(J)), atol=1e-10)


def test_generic_sweep_is_log_domain_far_below_float32(leaky):
    """U = 0, λ = 0.01: ∂h_T/∂h_{T−k} = diag(λ)^k, so log10‖·‖_F = 0.5 log10 H − 2k, down to
    1e-22 at k = 11 ... and beyond float32's 1e-45 with T = 30, in float32."""
    model = Recurrence(D, CellConfig(arch="test_leaky", hidden=H), rngs=nnx.Rngs(0))
    cell = model.cells[0]
    cell.w_hh[...] = jnp.zeros_like(cell.w_hh[...])
    cell.lam[...] = jnp.full((H,), 0.01)
    x = jax.random.normal(jax.random.key(0), (2, 30, D))
    got = jacobian_norms(model, x)["hidden"]["log10"]
    k = np.arange(30)
    np.testing.assert_allclose(got, np.broadcast_to(0.5 * np.log10(H) - 2.0 * k, got.shape),
                               atol=1e-3)
    assert got[:, -1].max() < -55
