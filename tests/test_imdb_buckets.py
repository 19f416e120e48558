"""Length buckets for IMDB training batches (``buckets=K``): the schedule, and that cutting a
bucket's batches to its length changes nothing but the work (against full-length gradients)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.tasks import make_task
from tests.test_imdb_task import V, small  # noqa: F401  (the fixture)


def test_bucket_schedule(small):  # noqa: F811
    task = make_task("imdb", 40, vocab_size=V, buckets=3)
    lengths = np.asarray(task.splits["train"]["lengths"])  # the 12 left after validation
    order = np.argsort(lengths, kind="stable")
    groups = [set(g.tolist()) for g in order.reshape(3, 4)]  # 12 reviews, 3 equal groups
    assert task.bucket_lengths == tuple(int(lengths[list(g)].max()) for g in groups)
    assert list(task.bucket_lengths) == sorted(task.bucket_lengths)
    B = 2
    per = task.steps_per_epoch(B)
    assert per == 3 * (4 // B)
    data = task.device_data()
    jitted = jax.jit(task.train_indices, static_argnums=2)
    for key in (jax.random.key(0), jax.random.key(1)):
        for epoch in range(2):
            seen, ks = [], []
            for step in range(epoch * per, (epoch + 1) * per):
                rows = np.asarray(task.train_indices(key, step, B))
                np.testing.assert_array_equal(rows, np.asarray(jitted(key, jnp.int32(step), B)))
                k = int(task.train_bucket(step, B))
                assert set(rows.tolist()) <= groups[k], (step, k, rows)
                assert lengths[rows].max() <= task.bucket_lengths[k]
                b = task.train_batch(data, key, step, B)
                assert not np.asarray(b.mask)[:, task.bucket_lengths[k]:].any()
                seen += rows.tolist()
                ks.append(k)
            assert sorted(seen) == list(range(12))  # every review once per epoch
            assert sorted(ks) == [0, 0, 1, 1, 2, 2]
    # the reviews in a batch depend on the key (the bucket order, on the step alone)
    steps = range(2 * per)
    picks = [[tuple(np.asarray(task.train_indices(jax.random.key(s), t, B))) for t in steps]
             for s in range(4)]
    assert len({tuple(p) for p in picks}) > 1


def test_bucket_errors(small):  # noqa: F811
    with pytest.raises(UserError, match="buckets"):
        make_task("imdb", 10, vocab_size=V, buckets=0)
    with pytest.raises(UserError, match="buckets=13"):
        make_task("imdb", 10, vocab_size=V, buckets=13)
    with pytest.raises(UserError, match="bucket"):
        make_task("imdb", 10, vocab_size=V, buckets=4).steps_per_epoch(4)  # 3 per bucket
    with pytest.raises(UserError, match="imdb"):
        TrainConfig(task="adding", buckets=2)


@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_bucketed_step_equals_full_length_step(small, arch):  # noqa: F811
    """The compiled step (a ``lax.switch`` over the buckets) against ``jax.grad`` of the loss on
    the same reviews at full length, followed by the same optimiser update."""
    import optax
    from flax import nnx

    from lstm_jax.sharding import data_mesh, replicated
    from lstm_jax.steps import build_programs, seed_keys
    from lstm_jax.tasks.registry import Batch

    # SGD, so the parameters differ by lr times the gradients' rounding differences (~1e-7).
    # Adam scales each update by 1/√v, which turns a rounding difference in a near-zero gradient
    # into an update difference of up to lr: it failed here after a change of rounding only.
    cfg = TrainConfig(task="imdb", seq_len=40, arch=arch, hidden=8, embed_dim=8, vocab_size=V,
                      buckets=3, batch=2, steps=10, lr=0.05, readout="max", seeds=2,
                      dropout=0.3, impl="fused", optimizer="sgd")
    mesh = data_mesh()
    programs = build_programs(cfg, mesh)
    task = programs.task
    assert task.bucket_lengths is not None and task.bucket_lengths[0] < 40
    keys = seed_keys(cfg)
    state = jax.device_put(programs.init(keys["init"]), replicated(mesh))  # as `train` does
    data = jax.device_put(task.device_data(), replicated(mesh))

    @jax.jit
    def reference(params, opt, batch: Batch, dkey):
        def loss_fn(p):
            model = nnx.merge(programs.graphdef, p)
            return task.loss(model(batch.x, batch.mask, dropout_key=dkey), batch)

        ref_loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, _ = programs.tx.update(grads, opt, params)
        return ref_loss, optax.apply_updates(params, updates)

    for step in range(task.steps_per_epoch(2)):
        new, loss = programs.train_step(jax.tree.map(jnp.copy, state), keys["data"],
                                        keys["dropout"], jnp.int32(step), data)
        for i in range(cfg.seeds):
            params = jax.tree.map(lambda a, i=i: a[i], state["params"])
            opt = jax.tree.map(lambda a, i=i: a[i], state["opt"])
            full = task.train_batch(data, keys["data"][i], step, 2)
            dkey = jax.random.fold_in(keys["dropout"][i], step)
            # the dropout mask on the readout does not depend on T; input dropout is off
            ref_loss, ref = reference(params, opt, full, dkey)
            np.testing.assert_allclose(float(loss[i]), float(ref_loss), rtol=1e-5)
            got = jax.tree.map(lambda a, i=i: a[i], new["params"])
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(ref), strict=True):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)
        state = new


def test_cli_bucketed_bidirectional_run_resumes_exactly(small, tmp_path, capsys):  # noqa: F811
    """``lstm-jax train --task imdb --buckets 3 --bidirectional``: 4 steps, then ``--resume`` to
    6, ends bit-identical to 6 uninterrupted steps (batches are a function of the step alone)."""
    from lstm_jax.cli import main
    from lstm_jax.train import load_params

    flags = ["train", "--task", "imdb", "--seq-len", "40", "--vocab-size", str(V), "--buckets",
             "3", "--bidirectional", "--readout", "max", "--hidden", "4", "--embed-dim", "4",
             "--batch", "2", "--eval-every", "2", "--eval-size", "4", "--lr", "0.01",
             "--checkpoint-every", "2", "--no-progress"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert main([*flags, "--steps", "6", "--out", str(whole)]) == 0, capsys.readouterr().err
    assert main([*flags, "--steps", "4", "--out", str(parts)]) == 0, capsys.readouterr().err
    assert main([*flags, "--steps", "6", "--out", str(parts), "--resume"]) == 0
    a, b = load_params(whole)[1], load_params(parts)[1]
    assert "backward_recurrence" in a
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # argparse rejects it
        main([*flags, "--steps", "6", "--buckets", "0", "--out", str(tmp_path / "bad")])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--buckets: '0' must be a positive integer" in err and "Traceback" not in err
