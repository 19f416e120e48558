"""The shared scan: masking, stacking, perturbation, remat/unroll, compile size, bad input."""

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_jax import CellConfig, Recurrence, UserError
from tests.reference import numpy_run

ARCHS = ["rnn", "lstm", "gru"]
B, T, D, H = 3, 8, 2, 4


def _model(arch, layers=1, **kw):
    return Recurrence(D, CellConfig(arch=arch, hidden=H), layers, rngs=nnx.Rngs(0), **kw)


_runners = {}


def _jitted(arch):
    """One compiled runner per architecture (hypothesis calls it many times with one shape)."""
    if arch not in _runners:
        graphdef, state = nnx.split(_model(arch, layers=2))

        @jax.jit
        def run(x, mask):
            r = nnx.merge(graphdef, state)(x, mask)
            return r.outputs, r.final_carry

        _runners[arch] = run
    return _runners[arch]


@settings(max_examples=20, deadline=None)
@given(arch=st.sampled_from(ARCHS),
       valid=st.lists(st.lists(st.booleans(), min_size=T, max_size=T), min_size=B, max_size=B),
       seed=st.integers(0, 2**16))
def test_padding_never_changes_results(arch, valid, seed):
    """Rows with padded steps anywhere give the results of the same rows with the padding removed."""
    mask = np.array(valid)
    mask[:, 0] = True  # every row has at least one real step
    x = np.random.default_rng(seed).normal(size=(B, T, D)).astype(np.float32)
    garbage = np.where(mask[..., None], x, 1e3)  # padded steps hold values that would show
    out, final = _jitted(arch)(jnp.asarray(garbage), jnp.asarray(mask))
    for b in range(B):
        idx = np.flatnonzero(mask[b])
        ref_out, ref_final = _jitted_single(arch, x[b, idx])
        np.testing.assert_allclose(np.asarray(out)[b, idx], ref_out, rtol=1e-5, atol=1e-5)
        for layer, carry in enumerate(final):
            for k, v in carry.items():
                np.testing.assert_allclose(v[b], ref_final[layer][k], rtol=1e-5, atol=1e-5)


def _jitted_single(arch, x_row):
    out, final = _jitted_unmasked(arch, len(x_row))(jnp.asarray(x_row[None]))
    return np.asarray(out)[0], [{k: np.asarray(v)[0] for k, v in c.items()} for c in final]


_unmasked = {}


def _jitted_unmasked(arch, length):
    # Compile per (arch, length); lengths are 1..T so at most 24 programs.
    if (arch, length) not in _unmasked:
        graphdef, state = nnx.split(_model(arch, layers=2))

        @jax.jit
        def run(x):
            r = nnx.merge(graphdef, state)(x)
            return r.outputs, r.final_carry

        _unmasked[(arch, length)] = run
    return _unmasked[(arch, length)]


@pytest.mark.parametrize("arch", ARCHS)
def test_two_layer_stack_matches_numpy(arch):
    model = _model(arch, layers=2)
    x = np.random.default_rng(0).normal(size=(B, T, D)).astype(np.float32)
    h1, _ = numpy_run(arch, model.cells[0].params(), x)
    h2, final2 = numpy_run(arch, model.cells[1].params(), h1)
    result = model(jnp.asarray(x))
    assert result.outputs.shape == (B, T, H)
    assert len(result.final_carry) == 2 and len(result.sequences) == 2
    np.testing.assert_allclose(result.sequences[0]["h"], h1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.outputs, h2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(result.final_carry[1]["h"], final2["h"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["scan", "fused"])
@pytest.mark.parametrize("arch", [*ARCHS, "peephole"])  # peephole: a cell without a fused path
def test_remat_and_unroll_give_the_same_values_and_gradients(arch, impl):
    """remat and unroll change the schedule, not the numbers, on both paths: the plain scan's
    ``jax.checkpoint``/``unroll`` and the fused recurrence's segments, against the plain scan."""
    x = jax.random.normal(jax.random.key(0), (B, T, D))
    models = [_model(arch, impl="scan"), _model(arch, remat=True, impl=impl),
              _model(arch, unroll=4, impl=impl)]

    def loss(model):
        return jnp.sum(model(x).outputs ** 2)

    values = [nnx.value_and_grad(loss)(m) for m in models]
    for v, g in values[1:]:
        np.testing.assert_allclose(v, values[0][0], rtol=1e-6)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), g, values[0][1])


@pytest.mark.parametrize("arch", ARCHS)
def test_zero_perturbation_changes_nothing_and_its_gradient_is_dL_dcarry(arch):
    """∂L/∂ε_t equals the gradient with respect to the carry, checked on the last step."""
    model = _model(arch)
    x = jax.random.normal(jax.random.key(1), (B, T, D))
    names = ("h", "c") if arch == "lstm" else ("h",)
    eps = {k: jnp.zeros((B, T, H)) for k in names}
    # A perturbed call always runs the plain scan: bit-identical to impl="scan"; the default
    # (fused) forward is a different XLA program, equal up to float32 rounding accumulated over
    # T steps (tens of ULPs; tests/test_fused.py checks the two at 1e-11 in float64).
    perturbed = model(x, perturb=[eps]).outputs
    np.testing.assert_array_equal(perturbed, _model(arch, impl="scan")(x).outputs)
    np.testing.assert_allclose(perturbed, model(x).outputs, rtol=1e-5, atol=1e-6)
    w = jax.random.normal(jax.random.key(2), (H,))

    def loss(e):
        return jnp.sum(model(x, perturb=[e]).final_carry[0]["h"] @ w)

    g = jax.jit(jax.grad(loss))(eps)
    np.testing.assert_allclose(g["h"][:, -1], jnp.broadcast_to(w, (B, H)), rtol=1e-6)
    # Earlier steps get a non-zero signal through the recurrence.
    assert float(jnp.abs(g["h"][:, 0]).max()) > 0


def _count_eqns(jaxpr) -> int:
    n = 0
    for eqn in jaxpr.eqns:
        n += 1
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            n += _count_eqns(sub)
    return n


@pytest.mark.parametrize("arch", ARCHS)
def test_compiled_program_does_not_grow_with_T(arch):
    model = _model(arch, layers=2)

    def f(x):
        return model(x).outputs

    short = jax.make_jaxpr(f)(jnp.zeros((B, 10, D)))
    long = jax.make_jaxpr(f)(jnp.zeros((B, 1000, D)))
    assert _count_eqns(short.jaxpr) == _count_eqns(long.jaxpr)
    hlo_short = jax.jit(f).lower(jnp.zeros((B, 10, D))).as_text()
    hlo_long = jax.jit(f).lower(jnp.zeros((B, 1000, D))).as_text()
    assert abs(len(hlo_short.splitlines()) - len(hlo_long.splitlines())) == 0


@pytest.mark.parametrize("call, field", [
    (lambda m: m(jnp.zeros((B, T))), "x must have shape"),
    (lambda m: m(jnp.zeros((B, T, D + 1))), "in_features"),
    (lambda m: m(jnp.zeros((B, T, D)), jnp.ones((B, T + 1), bool)), "mask"),
    (lambda m: m(jnp.zeros((B, T, D)), jnp.ones((T, B), bool)), "mask"),
    (lambda m: m(jnp.zeros((B, T, D)), perturb=[None, None]), "perturb"),
])
def test_bad_inputs_name_the_argument(call, field):
    with pytest.raises(UserError, match=field):
        call(_model("lstm"))


def test_bad_stack_arguments():
    with pytest.raises(UserError, match="layers"):
        Recurrence(D, CellConfig(), 0, rngs=nnx.Rngs(0))
    with pytest.raises(UserError, match="in_features"):
        Recurrence(0, CellConfig(), rngs=nnx.Rngs(0))
    with pytest.raises(UserError, match="unroll"):
        Recurrence(D, CellConfig(), unroll=0, rngs=nnx.Rngs(0))


def test_eager_call_is_one_compiled_program_equal_to_the_op_by_op_run():
    """A call outside any transformation runs compiled (once per shape), and gives what the
    same stack computes op by op with ``jax.disable_jit`` (the scan then a Python loop)."""
    model = _model("lstm", layers=2)
    x = jax.random.normal(jax.random.key(1), (B, T, D))
    mask = jnp.arange(T)[None, :] < jnp.array([[T], [5], [1]])
    with jax.disable_jit():
        ref = model(x, mask, collect=("c", "f"))
    got = model(x, mask, collect=("c", "f"))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)

    x2, x3, mask3 = x + 1.0, x[:, :3], mask[:, :3]
    compiles = []
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, _secs, **_: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
    try:
        model(x2, mask, collect=("c", "f"))  # same shapes: nothing new to compile
        assert compiles == []
        model(x3, mask3)  # a new shape: one program for the whole stack
        assert len(compiles) == 1
    finally:
        jax.monitoring.clear_event_listeners()
