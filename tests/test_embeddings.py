"""PPMI-SVD word vectors (:mod:`lstm_jax.data.embeddings`) against dense, loop-by-loop references,
and the ``embed_init="ppmi-svd"`` path from the archive to the model's first embedding.

References: co-occurrences counted with a Python double loop; PPMI from the dense matrix with the
formula of Levy et al. (2015) written out; the vectors' Gram matrix from ``numpy.linalg.svd`` (the
Gram matrix does not depend on the singular vectors' signs).
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from lstm_jax.data import embeddings as emb
from lstm_jax.errors import UserError
from tests.test_imdb_task import V, write_archive


def _corpus(seed=0, rows=12, size=9):
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, 15, rows)
    ids = rng.integers(0, size, int(lens.sum()))
    return ids, np.concatenate([[0], np.cumsum(lens)]), size


def _dense_counts(ids, offsets, size, window):
    c = np.zeros((size, size))
    for r in range(len(offsets) - 1):
        row = ids[offsets[r]:offsets[r + 1]]
        for i in range(len(row)):
            for j in range(len(row)):
                if 0 < abs(i - j) <= window:
                    c[row[i], row[j]] += 1.0 / abs(i - j)
    return c


@pytest.mark.parametrize("window", [1, 3])
def test_cooccurrence_against_loops(window):
    ids, offsets, size = _corpus()
    got = emb.cooccurrence(ids, offsets, size, window).toarray()
    np.testing.assert_allclose(got, _dense_counts(ids, offsets, size, window), rtol=1e-12)


def test_ppmi_against_dense_formula():
    ids, offsets, size = _corpus(1)
    c = _dense_counts(ids, offsets, size, 2)
    alpha = 0.75
    pc = c.sum(0) ** alpha / (c.sum(0) ** alpha).sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(c * c.sum() / (c.sum(1, keepdims=True) * c.sum() * pc[None, :]))
    want = np.where(c > 0, np.maximum(pmi, 0), 0)
    from scipy import sparse

    got = emb.ppmi(sparse.csr_matrix(c), alpha).toarray()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert (got > 0).any() and (got == 0).any()


def test_svd_vectors_against_numpy_svd():
    rng = np.random.default_rng(2)
    m = rng.random((20, 20))
    m = m + m.T
    from scipy import sparse

    got = emb.svd_vectors(sparse.csr_matrix(m), 5, power=0.5)
    u, s, _ = np.linalg.svd(m)
    want = u[:, :5] * s[:5] ** 0.5
    np.testing.assert_allclose(got @ got.T, want @ want.T, rtol=1e-4, atol=1e-4)
    assert got.shape == (20, 5) and got.dtype == np.float32
    big = np.abs(got).argmax(axis=0)
    assert (got[big, np.arange(5)] > 0).all()  # sign convention
    with pytest.raises(UserError, match="embed_dim"):
        emb.svd_vectors(sparse.csr_matrix(m), 20)


def test_config_rejects_test_split_and_bad_values():
    with pytest.raises(UserError, match="test"):
        emb.PpmiSvdConfig(splits=("train", "test"))
    with pytest.raises(UserError, match="alpha"):
        emb.PpmiSvdConfig(alpha=0.0)
    with pytest.raises(UserError, match="window"):
        emb.PpmiSvdConfig(window=0)


@pytest.fixture
def with_unsup(tmp_path, monkeypatch):
    from lstm_jax.tasks import imdb as imdb_task

    path = write_archive(tmp_path / "aclImdb_v1.tar.gz", n_unsup=10)
    monkeypatch.setenv("LSTM_JAX_IMDB", str(path))
    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(imdb_task, "EXPECTED_SIZES", None)
    return path


def test_imdb_vectors_from_train_and_unsup_cached(with_unsup, monkeypatch):
    from lstm_jax.data import prepare

    seen = []
    real = prepare.prepare_corpus
    monkeypatch.setattr(prepare, "prepare_corpus",
                        lambda splits, **kw: seen.append(tuple(splits)) or real(splits, **kw))
    table, info = emb.imdb_vectors(vocab_size=V, dim=4, progress=False, expected_sizes=None)
    assert seen == [("train", "unsupervised")] and not info["cache_hit"]
    assert table.shape == (V, 4) and np.isfinite(table).all()
    assert (table[0] == 0).all() and (np.abs(table[2:]).sum(1) > 0).all()
    again, info2 = emb.imdb_vectors(vocab_size=V, dim=4, progress=False, expected_sizes=None)
    assert info2["cache_hit"] and len(seen) == 1
    np.testing.assert_array_equal(again, table)
    other, info3 = emb.imdb_vectors(vocab_size=V, dim=4, progress=False, expected_sizes=None,
                                    config=emb.PpmiSvdConfig(window=2))
    assert not info3["cache_hit"] and not np.allclose(other, table)


def test_embed_init_ppmi_svd_reaches_the_model(with_unsup):
    """``TrainConfig(embed_init="ppmi-svd")``: every seed's embedding starts from the task's
    table (scaled to std 1/sqrt(dim)); the rest of the model is initialised as before."""
    from flax import nnx

    from lstm_jax.config import TrainConfig
    from lstm_jax.steps import build_model
    from lstm_jax.tasks import make_task

    cfg = TrainConfig(task="imdb", seq_len=12, vocab_size=V, embed_dim=4, hidden=6,
                      embed_init="ppmi-svd")
    task = make_task("imdb", 12, vocab_size=V)
    table = task.embedding_table(4)
    np.testing.assert_allclose(table.std(), 1 / np.sqrt(4), rtol=1e-5)
    raw, _ = emb.imdb_vectors(vocab_size=V, dim=4, progress=False, expected_sizes=None)
    np.testing.assert_allclose(table, raw * (table[2, 0] / raw[2, 0]), rtol=1e-5)
    for seed in (0, 1):
        model = build_model(cfg, task, jax.random.key(seed))
        np.testing.assert_array_equal(np.asarray(model.embed.embedding[...]), table)
    rand = build_model(cfg.replace(embed_init="random"), task, jax.random.key(0))
    ppmi = build_model(cfg, task, jax.random.key(0))
    assert not np.allclose(rand.embed.embedding[...], table)
    for a, b in zip(jax.tree.leaves(nnx.state(rand.recurrence)),
                    jax.tree.leaves(nnx.state(ppmi.recurrence)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_embed_init_only_for_imdb():
    from lstm_jax.config import TrainConfig

    with pytest.raises(UserError, match="embed_init"):
        TrainConfig(task="adding", embed_init="ppmi-svd")
    with pytest.raises(UserError, match="embed_init"):
        TrainConfig(task="imdb", embed_init="glove")


@pytest.mark.parametrize("scale", [0.0, 0.25])
def test_embed_lr_scale_scales_only_the_embedding_update(scale):
    """One optimiser step: the embedding's update is ``scale`` × the unscaled one, every other
    parameter's update is unchanged (Adam's update does not depend on the gradient's scale, so
    the multiplier must act on the update, not the gradient)."""
    from flax import nnx

    from lstm_jax.cells import CellConfig
    from lstm_jax.config import TrainConfig
    from lstm_jax.model import SequenceModel
    from lstm_jax.optim import optimizer

    model = SequenceModel(input_kind="symbols", in_features=10, out_features=2,
                          cell=CellConfig(arch="lstm", hidden=4), embed_dim=3, rngs=nnx.Rngs(0))
    params = nnx.split(model)[1]
    grads = jax.tree.map(lambda p: jax.random.normal(jax.random.key(p.size), p.shape), params)
    cfg = TrainConfig(task="copy", lr=1e-2, clip=None)

    def update(c):
        tx = optimizer(c)
        return tx.update(grads, tx.init(params), params)[0]

    base, scaled = update(cfg), update(cfg.replace(embed_lr_scale=scale))
    np.testing.assert_allclose(scaled["embed"]["embedding"][...],
                               scale * base["embed"]["embedding"][...], rtol=1e-6)
    for name in ("head", "recurrence"):
        for a, b in zip(jax.tree.leaves(base[name]), jax.tree.leaves(scaled[name]), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(UserError, match="embed_lr_scale"):
        TrainConfig(embed_lr_scale=-1.0)


def test_frozen_pretrained_embedding_stays_put_in_training(with_unsup, tmp_path):
    from lstm_jax.config import TrainConfig
    from lstm_jax.tasks import make_task
    from lstm_jax.train import load_params, train

    cfg = TrainConfig(task="imdb", seq_len=12, vocab_size=V, embed_dim=4, hidden=6, steps=3,
                      batch=4, eval_every=3, eval_size=4, val_size=4, lr=0.05,
                      embed_init="ppmi-svd", embed_lr_scale=0.0)
    assert train(cfg, tmp_path / "run", progress=False)["status"] == "completed"
    _, params = load_params(tmp_path / "run", cfg)
    table = make_task("imdb", 12, vocab_size=V).embedding_table(4)
    np.testing.assert_array_equal(np.asarray(params["embed"]["embedding"][...])[0], table)
    from lstm_jax.steps import build_model, seed_keys

    start = build_model(cfg, make_task("imdb", 12, vocab_size=V), seed_keys(cfg)["init"][0])
    np.testing.assert_array_equal(start.embed.embedding[...], table)
    assert not np.allclose(params["head"]["kernel"][...][0], start.head.kernel[...])  # trained


def test_input_dropout_zeroes_and_rescales_what_the_recurrence_reads(monkeypatch):
    """``input_dropout=p``: the recurrence reads the embedded words with a fraction ≈ p of entries
    zeroed and the rest scaled by 1/(1−p); without a key (evaluation) it reads them unchanged, and
    the head's dropout mask does not depend on ``input_dropout``."""
    from flax import nnx

    from lstm_jax.cells import CellConfig
    from lstm_jax.model import SequenceModel
    from lstm_jax.recurrence import Recurrence

    seen = []
    real = Recurrence.__call__
    monkeypatch.setattr(Recurrence, "__call__",
                        lambda self, x, *a, **k: seen.append(np.asarray(x)) or real(self, x, *a, **k))
    x = jax.random.randint(jax.random.key(0), (16, 50), 0, 10)
    p = 0.3

    def make(rate):
        return SequenceModel(input_kind="symbols", in_features=10, out_features=2,
                             cell=CellConfig(arch="lstm", hidden=4), embed_dim=8, dropout=0.5,
                             input_dropout=rate, readout="mean", rngs=nnx.Rngs(0))

    model = make(p)
    clean = np.asarray(model.embed(x))
    model(x)
    np.testing.assert_array_equal(seen[-1], clean)
    model(x, dropout_key=jax.random.key(3))
    got = seen[-1]
    zero = got == 0
    assert abs(zero.mean() - p) < 0.03  # 6,400 entries: sd of the fraction ≈ 0.006
    np.testing.assert_allclose(got[~zero], clean[~zero] / (1 - p), rtol=1e-6)
    # Only the inputs differ: with input_dropout=0 the same key gives the recurrence clean inputs.
    make(0.0)(x, dropout_key=jax.random.key(3))
    np.testing.assert_array_equal(seen[-1], clean)
    with pytest.raises(UserError, match="input_dropout"):
        make(1.0)
