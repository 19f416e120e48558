"""Bidirectional models against a plain loop run forwards and backwards over each unpadded row."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax.cells import CellConfig
from lstm_jax.config import TrainConfig
from lstm_jax.model import SequenceModel, reversal_index
from tests.reference import numpy_run


def test_reversal_index():
    mask = jnp.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(np.asarray(reversal_index(mask, 3, 5)),
                                  [[2, 1, 0, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 3, 4]])
    np.testing.assert_array_equal(np.asarray(reversal_index(None, 2, 3)), [[2, 1, 0]] * 2)
    holes = jnp.array([[0, 0, 1, 1, 1], [1, 0, 1, 0, 1], [0, 0, 0, 0, 0]], bool)
    np.testing.assert_array_equal(np.asarray(reversal_index(holes, 3, 5)),
                                  [[0, 1, 4, 3, 2], [4, 1, 2, 3, 0], [0, 1, 2, 3, 4]])


def test_bidirectional_with_padding_anywhere_equals_the_row_without_it():
    """A left-padded or holey row gives what its valid steps alone give (the backward direction
    reads the valid steps in reverse, never the padding)."""
    T, D, H = 6, 3, 5
    model = SequenceModel(input_kind="dense", in_features=D, out_features=2,
                          cell=CellConfig(arch="gru", hidden=H), readout="last",
                          bidirectional=True, rngs=nnx.Rngs(params=jax.random.key(1)))
    x = jax.random.normal(jax.random.key(2), (2, T, D))
    mask = jnp.array([[0, 0, 1, 1, 1, 1], [1, 0, 1, 1, 0, 1]], bool)
    got = np.asarray(model(x, mask))
    for b in range(2):
        row = x[b:b + 1][:, np.asarray(mask[b])]
        np.testing.assert_allclose(got[b], np.asarray(model(row))[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("readout", ["last", "mean", "max"])
def test_bidirectional_against_plain_loop(arch, readout):
    B, T, D, H = 4, 9, 3, 5
    model = SequenceModel(input_kind="dense", in_features=D, out_features=2,
                          cell=CellConfig(arch=arch, hidden=H), readout=readout,
                          bidirectional=True, rngs=nnx.Rngs(params=jax.random.key(1)))
    x = jax.random.normal(jax.random.key(2), (B, T, D))
    lengths = np.array([9, 4, 1, 6])
    mask = jnp.arange(T)[None, :] < jnp.asarray(lengths)[:, None]
    got = np.asarray(model(x, mask))
    fwd = model.recurrence.cells[0].params()
    bwd = model.backward_recurrence.cells[0].params()
    for b, n in enumerate(lengths):
        row = np.asarray(x[b:b + 1, :n], np.float64)
        hf, _ = numpy_run(arch, fwd, row)
        hb, _ = numpy_run(arch, bwd, row[:, ::-1])
        states = np.concatenate([hf[0], hb[0][::-1]], axis=-1)  # (n, 2H), forward order
        feats = {"last": np.concatenate([hf[0, -1], hb[0, -1]]), "mean": states.mean(0),
                 "max": states.max(0)}[readout]
        want = feats @ np.asarray(model.head.kernel) + np.asarray(model.head.bias)
        np.testing.assert_allclose(got[b], want, rtol=1e-4, atol=1e-5)


def test_bidirectional_gradients_match_scan_impl():
    """The fused backward pass and ``jax.grad`` of the plain scan agree through the reversal."""
    B, T, D, H = 3, 7, 2, 4
    mask = jnp.arange(T)[None, :] < jnp.array([[7], [3], [5]])
    x = jax.random.normal(jax.random.key(3), (B, T, D))
    grads = {}
    for impl in ("fused", "scan"):
        model = SequenceModel(input_kind="dense", in_features=D, out_features=1,
                              cell=CellConfig(arch="lstm", hidden=H), readout="max",
                              bidirectional=True, impl=impl,
                              rngs=nnx.Rngs(params=jax.random.key(4)))
        graphdef, params = nnx.split(model)
        grads[impl] = jax.jit(jax.grad(
            lambda p, g=graphdef: jnp.sum(nnx.merge(g, p)(x, mask) ** 2)))(params)
    for a, b in zip(jax.tree.leaves(grads["fused"]), jax.tree.leaves(grads["scan"]), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
    back = grads["fused"]["backward_recurrence"]
    assert any(float(jnp.abs(g).max()) > 0 for g in jax.tree.leaves(back))


def test_bidirectional_config_builds_twice_the_recurrence():
    from lstm_jax.model import parameter_count
    from lstm_jax.steps import build_model
    from lstm_jax.tasks import make_task

    cfg = TrainConfig(task="adding", seq_len=10, hidden=6)
    task = make_task("adding", 10)
    one = parameter_count(build_model(cfg, task, jax.random.key(0)))
    two = parameter_count(build_model(cfg.replace(bidirectional=True), task, jax.random.key(0)))
    head_in = 6  # the head's extra input features: H more weights per output
    assert two - one == (one - head_in * task.spec.out_features - task.spec.out_features) \
        + head_in * task.spec.out_features


def test_loss_gradient_probe_refuses_a_bidirectional_model():
    from lstm_jax.errors import UserError
    from lstm_jax.probes.loss import head_loss

    model = SequenceModel(input_kind="dense", in_features=2, out_features=1,
                          cell=CellConfig(arch="lstm", hidden=3), bidirectional=True,
                          rngs=nnx.Rngs(params=jax.random.key(0)))
    assert model.bidirectional
    with pytest.raises(UserError, match="bidirectional"):
        head_loss(model, None, lambda out, batch: out.sum())
