"""``recurrent_lr_scale``: the cells' recurrent parameters get ``scale`` × the optimiser's update
(expRNN's authors train the skew-symmetric generator at a tenth of the rate), nothing else
changes. The recurrent parameters of each cell are named here from its paper, not read from
the package."""

import jax
import numpy as np
import pytest
from flax import nnx

from lstm_jax.cells import CellConfig
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.model import SequenceModel
from lstm_jax.optim import optimizer

RECURRENT = {"lstm": {"w_hh"}, "gru": {"w_hh", "b_hn"}, "peephole": {"w_hh", "p_i", "p_f", "p_o"},
             "indrnn": {"u"}, "exprnn": {"w_skew"},
             "lru": {"nu_log", "theta_log", "gamma_log"}}  # λ = exp(−e^ν + i e^θ), γ; not C


def _leaves(tree):
    def name(path):
        keys = [getattr(k, "key", getattr(k, "idx", getattr(k, "name", None))) for k in path]
        return next((k for k in reversed(keys) if isinstance(k, str) and k != "value"), None), keys

    return [(name(p), v) for p, v in jax.tree_util.tree_flatten_with_path(tree)[0]]


@pytest.mark.parametrize("arch", sorted(RECURRENT))
def test_only_the_recurrent_parameters_updates_are_scaled(arch):
    model = SequenceModel(input_kind="dense", in_features=3, out_features=1,
                          cell=CellConfig(arch=arch, hidden=4), layers=2, bidirectional=True,
                          rngs=nnx.Rngs(0))
    params = nnx.split(model)[1]
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(p.size), p.shape), params)
    cfg = TrainConfig(task="adding", arch=arch, hidden=4, lr=1e-2, clip=1.0)

    def update(c):
        tx = optimizer(c)
        return tx.update(grads, tx.init(params), params)[0]

    base, scaled = _leaves(update(cfg)), _leaves(update(cfg.replace(recurrent_lr_scale=0.1)))
    seen = set()
    for ((name, keys), a), (_, b) in zip(base, scaled, strict=True):
        if "cells" in keys and name in RECURRENT[arch]:
            seen.add(name)
            np.testing.assert_allclose(b, 0.1 * np.asarray(a), rtol=1e-6, atol=1e-9)
        else:
            np.testing.assert_array_equal(a, b)
    assert seen == RECURRENT[arch]
    assert sum("cells" in k and n in RECURRENT[arch] for (n, k), _ in base) == \
        4 * len(RECURRENT[arch])  # two layers, two directions


def test_recurrent_lr_scale_is_validated_and_reaches_the_command_line(tmp_path):
    from lstm_jax.cli import main

    with pytest.raises(UserError, match="recurrent_lr_scale=-1.0 must be ≥ 0"):
        TrainConfig(recurrent_lr_scale=-1.0)
    out = tmp_path / "run"
    assert main(["train", "--task", "adding", "--arch", "exprnn", "--seq-len", "6", "--hidden",
                 "4", "--steps", "2", "--batch", "4", "--eval-every", "2", "--eval-size", "4",
                 "--recurrent-lr-scale", "0.1", "--out", str(out), "--no-progress"]) == 0
    from lstm_jax.train import load_config

    assert load_config(out).recurrent_lr_scale == 0.1


def test_a_scale_that_would_match_no_parameter_is_refused():
    """A cell whose recurrent_names match none of its parameters (a user's cell that replaced
    w_hh without naming its own) would train unscaled without a word: refused instead."""
    from lstm_jax.optim import recurrent_mask

    model = SequenceModel(input_kind="dense", in_features=3, out_features=1,
                          cell=CellConfig(arch="indrnn", hidden=4), rngs=nnx.Rngs(0))
    params = nnx.split(model)[1]
    assert sum(jax.tree.leaves(recurrent_mask(frozenset({"u"}))(params))) == 1
    with pytest.raises(UserError, match="no parameter named \\['w_hh'\\]"):
        recurrent_mask(frozenset({"w_hh"}))(params)
