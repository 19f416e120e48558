"""``matmul_dtype="bfloat16"``: the fused recurrence with bfloat16 products, float32 elsewhere.

The reference is written from the policy alone, not from lstm_jax.fused: a Python loop over time
whose products go through one custom-gradient matmul that rounds its operands to bfloat16 (the
product of two bfloat16 numbers is exact in float32, so ``round(a) @ round(b)`` in float32 is a
bfloat16 product with float32 accumulation), differentiated by ``jax.grad``. Its backward rule is
the straight-through one the fused layer documents: ``da = round?(g) round(b)ᵀ`` (the
cotangent is rounded for the per-step recurrent product only), ``db = aᵀ g`` in float32.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax.cells import CellConfig, step_fn
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.fused import fused_layer
from lstm_jax.recurrence import Recurrence, scan_layer
from tests.test_fused import _setup


def _bf16(a):
    return a.astype(jnp.bfloat16).astype(a.dtype)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def _mixed(a, b, round_cotangent):
    return _bf16(a) @ _bf16(b)


def _mixed_fwd(a, b, round_cotangent):
    return _mixed(a, b, round_cotangent), (a, b)


def _mixed_bwd(round_cotangent, res, g):
    a, b = res
    return ((_bf16(g) if round_cotangent else g) @ _bf16(b).T, a.T @ g)


_mixed.defvjp(_mixed_fwd, _mixed_bwd)


def _reference_layer(arch, p, xs, mask, carry0):
    """One layer, a Python loop over ``xs (T, B, D)``, gate by gate (cells' module doc)."""
    h, c = carry0["h"], carry0.get("c")
    H = h.shape[-1]
    blk = lambda a, k: a[:, k * H:(k + 1) * H]  # noqa: E731
    hs = []
    for t in range(xs.shape[0]):
        xw = _mixed(xs[t], p["w_ih"], False) + p["bias"]
        hw = _mixed(h, p["w_hh"], True)
        a = xw + hw
        if arch == "rnn":
            h_new, c_new = jnp.tanh(a), c
        elif arch == "lstm":
            i, f, o = (jax.nn.sigmoid(blk(a, k)) for k in (0, 1, 3))
            c_new = f * c + i * jnp.tanh(blk(a, 2))
            h_new = o * jnp.tanh(c_new)
        elif arch == "cifg":
            f, o = jax.nn.sigmoid(blk(a, 0)), jax.nn.sigmoid(blk(a, 2))
            c_new = f * c + (1 - f) * jnp.tanh(blk(a, 1))
            h_new = o * jnp.tanh(c_new)
        elif arch == "peephole":  # i, f see C_{t−1}; o sees C_t
            i = jax.nn.sigmoid(blk(a, 0) + p["p_i"] * c)
            f = jax.nn.sigmoid(blk(a, 1) + p["p_f"] * c)
            c_new = f * c + i * jnp.tanh(blk(a, 2))
            h_new = jax.nn.sigmoid(blk(a, 3) + p["p_o"] * c_new) * jnp.tanh(c_new)
        elif arch == "janet":  # β = 1
            s = blk(a, 0)
            h_new = jax.nn.sigmoid(s) * h + (1 - jax.nn.sigmoid(s - 1.0)) * jnp.tanh(blk(a, 1))
            c_new = c
        else:
            r, z = jax.nn.sigmoid(blk(a, 0)), jax.nn.sigmoid(blk(a, 1))
            n = jnp.tanh(blk(xw, 2) + r * (blk(hw, 2) + p["b_hn"]))
            h_new, c_new = (1 - z) * n + z * h, c
        m = mask[t][:, None]
        h = jnp.where(m, h_new, h)
        c = None if c is None else jnp.where(m, c_new, c)
        hs.append(h)
    final = {"h": h} if c is None else {"h": h, "c": c}
    return final, {"h": jnp.stack(hs)}


def _outputs_and_grads(layer, w_seq, params, xs, carry0):
    """Flattened [loss, d/dparams, d/dxs, d/dcarry0] of a loss reading every output."""
    def loss(p, x, c0):
        final, seqs = layer(p, x, c0)
        return jnp.sum(seqs["h"] * w_seq) + sum(jnp.sum(jnp.sin(v)) for v in final.values())

    value, grads = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2)))(params, xs, carry0)
    return np.concatenate([np.ravel(a) for a in jax.tree.leaves((value, grads))])


def _rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru", "cifg", "janet", "peephole"])
def test_bfloat16_fused_layer_matches_mixed_precision_reference(arch):
    cell, params, xs, mask, carry0, w_seq = _setup(arch, jnp.float32, T=12, B=4, D=6, H=16)
    ref = _outputs_and_grads(lambda p, x, c: _reference_layer(arch, p, x, mask, c), w_seq,
                             params, xs, carry0)
    for remat, segment in ((False, None), (True, 5)):
        fused = _outputs_and_grads(
            lambda p, x, c, r=remat, s=segment: fused_layer(
                arch, p, x, mask, c, remat=r, segment=s, matmul_dtype="bfloat16"),
            w_seq, params, xs, carry0)
        # Float32 rounding apart, except where it tips an operand to the neighbouring bfloat16
        # number (2⁻⁸ relative, in a few elements): ~2e-7 without a tip, 2e-5 (lstm) and 1.3e-4
        # (cifg) with one at this seed, against 4e-3 to 1.3e-2 for the float32 network below.
        assert _rel(fused, ref) < 3e-4, (remat, _rel(fused, ref))
        assert np.abs(fused - ref).max() < 1e-3 * np.abs(ref).max()
    # The rounding is real: float32 products give a different network, by bfloat16's precision.
    step = step_fn(cell.config)
    f32 = _outputs_and_grads(lambda p, x, c: tuple(scan_layer(step, p, x, mask, c)), w_seq,
                             params, xs, carry0)
    assert 1e-3 < _rel(f32, ref) < 5e-2


def test_bfloat16_recurrence_runs_the_fused_bfloat16_layer():
    """Recurrence(matmul_dtype="bfloat16") is the fused bfloat16 layer, layer by layer."""
    model = Recurrence(3, CellConfig("lstm", 8), layers=2, rngs=nnx.Rngs(0),
                       matmul_dtype="bfloat16")
    x = jax.random.normal(jax.random.key(1), (2, 7, 3))
    out = model(x).outputs
    xs = jnp.swapaxes(x, 0, 1)
    carry0 = {"h": jnp.zeros((2, 8)), "c": jnp.zeros((2, 8))}
    for cell in model.cells:
        xs = _reference_layer("lstm", cell.params(), xs, jnp.ones(xs.shape[:2], bool), carry0)[1]["h"]
    np.testing.assert_allclose(out, jnp.swapaxes(xs, 0, 1), rtol=1e-5, atol=1e-6)
    f32 = Recurrence(3, CellConfig("lstm", 8), layers=2, rngs=nnx.Rngs(0))(x).outputs
    assert not np.allclose(out, f32, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kwargs,message", [
    ({"impl": "scan", "matmul_dtype": "bfloat16"}, "needs impl='fused'"),
    ({"matmul_dtype": "float16"}, "matmul_dtype='float16' is not allowed"),
])
def test_bad_matmul_dtype_is_a_user_error(kwargs, message):
    with pytest.raises(UserError, match=message):
        Recurrence(3, CellConfig("lstm", 4), rngs=nnx.Rngs(0), **kwargs)
    with pytest.raises(UserError, match=message):
        TrainConfig(**kwargs)


def test_reset_before_gru_has_no_bfloat16_path():
    with pytest.raises(UserError, match="gru_reset_after=False"):
        TrainConfig(arch="gru", gru_reset_after=False, matmul_dtype="bfloat16")
    cfg = CellConfig("gru", 4, gru_reset_after=False)
    x = jnp.zeros((2, 3, 3))
    with pytest.raises(UserError, match="needs a cell with a fused path"):
        Recurrence(3, cfg, rngs=nnx.Rngs(0), matmul_dtype="bfloat16")(x)
