"""The fused recurrence (lstm_jax.fused) against jax.grad of the plain scan (lstm_jax.recurrence).

Outputs and gradients with respect to parameters, inputs and the initial carry must agree, with
masks (padded steps keep the carry), for the RNN, LSTM and GRU, with and without segment remat;
float64 for tight tolerances, float32 at float32 tolerances. Also: the dispatch in scan_layer
(probes' perturb/collect always run the plain scan) and the padded-equals-unpadded property.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax.cells import CellConfig, GRUCell, make_cell, step_fn
from lstm_jax.errors import UserError
from lstm_jax.fused import default_segment, fused_arch, fused_layer
from lstm_jax.recurrence import Recurrence, scan_layer

ARCHS = ("rnn", "lstm", "gru", "cifg", "janet", "peephole")


def _setup(arch, dtype, T=9, B=3, D=4, H=5, seed=0, mask_p=0.7):
    cell = make_cell(D, CellConfig(arch, H), rngs=nnx.Rngs(seed), dtype=dtype)
    params = cell.params()
    k = jax.random.split(jax.random.key(seed + 1), 6)
    params = {n: v + 0.3 * jax.random.normal(k[5], v.shape, dtype) for n, v in params.items()}
    xs = jax.random.normal(k[0], (T, B, D), dtype)
    mask = jax.random.bernoulli(k[1], mask_p, (T, B)).at[0, 0].set(False)
    carry0 = {n: 0.5 * jax.random.normal(k[2], (B, H), dtype) for n in cell.carry_names}
    w_seq = jax.random.normal(k[3], (T, B, H), dtype)
    return cell, params, xs, mask, carry0, w_seq


def _loss(layer, w_seq):
    def loss(params, xs, carry0):
        final, seqs = layer(params, xs, carry0)
        return jnp.sum(seqs["h"] * w_seq) + sum(jnp.sum(jnp.sin(v)) for v in final.values())
    return loss


def _outputs_and_grads(layer, w_seq):
    """One jitted function: the layer's outputs and the loss gradient w.r.t. (params, xs, carry0)."""
    def loss(params, xs, carry0):
        out = layer(params, xs, carry0)
        final, seqs = out
        value = jnp.sum(seqs["h"] * w_seq) + sum(jnp.sum(jnp.sin(v)) for v in final.values())
        return value, out
    return jax.grad(loss, argnums=(0, 1, 2), has_aux=True)


def _compare(arch, dtype, variants, tol, use_mask=True, T=9):
    """Compare the plain scan with fused_layer at each (remat, segment) in ``variants``, all in
    one jitted function (one compile)."""
    cell, params, xs, mask, carry0, w_seq = _setup(arch, dtype, T=T)
    mask = mask if use_mask else None
    step = step_fn(cell.config)
    layers = [lambda p, x, c: tuple(scan_layer(step, p, x, mask, c))]
    layers += [lambda p, x, c, r=r, s=s: fused_layer(arch, p, x, mask, c, remat=r, segment=s)
               for r, s in variants]
    fns = [_outputs_and_grads(layer, w_seq) for layer in layers]
    results = jax.jit(lambda *a: [f(*a) for f in fns])(params, xs, carry0)
    ref = results[0]
    for got in results[1:]:
        assert jax.tree.structure(ref) == jax.tree.structure(got)
        for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got), strict=True):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("arch", ARCHS)
def test_fused_matches_scan_float64(arch):
    with jax.enable_x64(True):
        _compare(arch, jnp.float64, [(False, None), (True, 4)], tol=1e-11)


@pytest.mark.parametrize("arch", ARCHS)
def test_fused_matches_scan_float64_no_mask(arch):
    """``mask=None`` takes loops without the carry-keeping selects (a separate code path)."""
    with jax.enable_x64(True):
        _compare(arch, jnp.float64, [(False, None), (True, 4)], tol=1e-11, use_mask=False)


@pytest.mark.parametrize("arch", ["lstm", "cifg", "janet", "peephole",
                                  pytest.param("rnn", marks=pytest.mark.slow),
                                  pytest.param("gru", marks=pytest.mark.slow)])
def test_fused_matches_scan_at_one_step_and_with_a_fully_padded_row(arch):
    """Edge cases of the loops: T = 1 (the backward loop's first row is also its last), and a
    row padded at every step (it keeps carry0; its cotangents pass straight through)."""
    with jax.enable_x64(True):
        for T, pad_row in ((1, False), (5, True)):
            cell, params, xs, mask, carry0, w_seq = _setup(arch, jnp.float64, T=T)
            if pad_row:
                mask = mask.at[:, 1].set(False)
            step = step_fn(cell.config)
            layers = [lambda p, x, c, m=mask, st=step: tuple(scan_layer(st, p, x, m, c))]
            layers += [lambda p, x, c, m=mask, r=r, s=s: fused_layer(arch, p, x, m, c, remat=r,
                                                                     segment=s)
                       for r, s in ((False, None), (True, 2))]
            fns = [_outputs_and_grads(f, w_seq) for f in layers]
            ref, *got = jax.jit(lambda *a, fns=fns: [f(*a) for f in fns])(params, xs, carry0)
            for g in got:
                for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(g), strict=True):
                    np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("arch", ARCHS)
def test_fused_matches_scan_when_only_the_final_state_is_used(arch):
    """A loss of the final carry alone (the outputs get a zero cotangent)."""
    with jax.enable_x64(True):
        cell, params, xs, mask, carry0, _ = _setup(arch, jnp.float64)
        step = step_fn(cell.config)

        def loss(layer):
            return lambda p, x, c: sum(jnp.sum(jnp.sin(v)) for v in layer(p, x, c)[0].values())

        scan = loss(lambda p, x, c: tuple(scan_layer(step, p, x, mask, c)))
        want = jax.jit(jax.grad(scan, argnums=(0, 1, 2)))(params, xs, carry0)
        for remat, segment in [(False, None), (True, 4)]:
            fused = loss(lambda p, x, c, r=remat, s=segment:
                         fused_layer(arch, p, x, mask, c, remat=r, segment=s))
            got = jax.jit(jax.grad(fused, argnums=(0, 1, 2)))(params, xs, carry0)
            for a, b in zip(jax.tree.leaves(want), jax.tree.leaves(got), strict=True):
                np.testing.assert_allclose(b, a, rtol=1e-11, atol=1e-11)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_fused_default_segment_matches_scan_float64(arch):
    with jax.enable_x64(True):
        _compare(arch, jnp.float64, [(True, None)], tol=1e-11, T=17)


@pytest.mark.parametrize("arch", [
    "lstm", pytest.param("rnn", marks=pytest.mark.slow), pytest.param("gru", marks=pytest.mark.slow)])
def test_fused_matches_scan_float32(arch):
    _compare(arch, jnp.float32, [(False, None)], tol=2e-5)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_fused_remat_matches_scan_float32_no_mask(arch):
    _compare(arch, jnp.float32, [(True, 3)], tol=2e-5, use_mask=False, T=7)


def test_fused_gradient_against_finite_differences():
    """Independent of jax.grad: a central difference of the loss along a random direction."""
    with jax.enable_x64(True):
        _, params, xs, mask, carry0, w_seq = _setup("lstm", jnp.float64)
        loss = _loss(lambda p, x, c: fused_layer("lstm", p, x, mask, c), w_seq)
        g = jax.jit(jax.grad(loss))(params, xs, carry0)
        v = jax.tree.map(lambda a: jax.random.normal(jax.random.key(7), a.shape, a.dtype), params)
        eps = 1e-6
        plus = loss(jax.tree.map(lambda a, b: a + eps * b, params, v), xs, carry0)
        minus = loss(jax.tree.map(lambda a, b: a - eps * b, params, v), xs, carry0)
        fd = (plus - minus) / (2 * eps)
        an = sum(jnp.vdot(g[k], v[k]) for k in g)
        np.testing.assert_allclose(fd, an, rtol=1e-7)


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_gives_unpadded_result(arch):
    """Right-padding with masked steps leaves final carry and the valid h's unchanged."""
    cell, params, xs, _, carry0, _ = _setup(arch, jnp.float32, mask_p=1.0)
    pad = jnp.concatenate([xs, 5.0 * jnp.ones((4, *xs.shape[1:]), xs.dtype)])
    mask = jnp.arange(pad.shape[0])[:, None] < xs.shape[0]
    mask = jnp.broadcast_to(mask, pad.shape[:2])
    f0, s0 = fused_layer(arch, params, xs, None, carry0)
    f1, s1 = fused_layer(arch, params, pad, mask, carry0, remat=True, segment=5)
    for k in f0:
        np.testing.assert_allclose(f0[k], f1[k], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(s0["h"], s1["h"][: xs.shape[0]], rtol=1e-6, atol=1e-6)


def test_recurrence_impl_dispatch():
    """Recurrence(impl="fused") matches impl="scan" end to end (2 layers, batch-major, mask);
    probes (perturb/collect) and unsupported steps run the plain scan."""
    x = jax.random.normal(jax.random.key(0), (3, 6, 4))
    mask = jnp.arange(6)[None, :] < jnp.array([6, 4, 1])[:, None]
    cfg = CellConfig("lstm", 5)
    a = Recurrence(4, cfg, layers=2, rngs=nnx.Rngs(0), impl="scan")
    b = Recurrence(4, cfg, layers=2, rngs=nnx.Rngs(0), impl="fused")
    assert Recurrence(4, cfg, rngs=nnx.Rngs(0)).impl == "fused"  # the default
    np.testing.assert_allclose(a(x, mask).outputs, b(x, mask).outputs, rtol=1e-6, atol=1e-6)
    ra, rb = a(x, mask, collect=("c", "f")), b(x, mask, collect=("c", "f"))
    assert set(rb.sequences[0]) == {"h", "c", "f"}
    for k in ("h", "c", "f"):
        np.testing.assert_allclose(ra.sequences[0][k], rb.sequences[0][k], rtol=1e-6, atol=1e-6)
    assert fused_arch(GRUCell.step_reset_before) is None
    g = Recurrence(4, CellConfig("gru", 5, gru_reset_after=False), rngs=nnx.Rngs(0), impl="fused")
    g0 = Recurrence(4, CellConfig("gru", 5, gru_reset_after=False), rngs=nnx.Rngs(0), impl="scan")
    np.testing.assert_allclose(g(x, mask).outputs, g0(x, mask).outputs, rtol=1e-6, atol=1e-6)
    with pytest.raises(UserError, match="impl"):
        Recurrence(4, cfg, rngs=nnx.Rngs(0), impl="cudnn")


def test_default_segment():
    assert [default_segment(t) for t in (1, 2, 4, 5, 100, 101, 10000)] == [1, 2, 2, 3, 10, 11, 100]


def _loop_buffer_copies(hlo: str, shape: str) -> int:
    """Copies of a ``shape`` buffer inside while-loop bodies of compiled HLO text."""
    import re

    bodies = set(re.findall(r"body=(%[\w.\-]+)", hlo))
    count, inside = 0, False
    for line in hlo.splitlines():
        if line and not line.startswith(" "):
            inside = line.split(" ")[0] in bodies
        elif inside and re.search(rf"= f32\[{shape}\]\{{[^}}]*\}} copy\(", line):
            count += 1
    return count


@pytest.mark.parametrize("arch", ARCHS)
def test_loops_update_the_gate_buffer_in_place(arch):
    """The fused loops write each step's row of the (T, B, G·H) buffer in place. A step that
    reads its row from several fusions made XLA copy the whole buffer every step instead
    (JANET's first fused forward: O(T²), 17× slower than the scan at T = 1000)."""
    T, B, D, H = 40, 4, 3, 8
    cell = make_cell(D, CellConfig(arch, H), rngs=nnx.Rngs(0))
    xs = jax.random.normal(jax.random.key(1), (T, B, D))
    c0 = {n: jnp.zeros((B, H)) for n in cell.carry_names}

    def loss(p, x):
        return jnp.sum(fused_layer(arch, p, x, None, c0)[1]["h"][-1])

    hlo = jax.jit(jax.grad(loss)).lower(cell.params(), xs).compile().as_text()
    assert " while(" in hlo
    assert _loop_buffer_copies(hlo, f"{T},{B},{cell.blocks * H}") == 0
