"""Three splits: synthetic train/validation/test from disjoint key streams; IMDB's validation split
a stratified hold-out of the train split, fixed by its seed (on a small archive written here)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.steps import eval_chunks, eval_key, seed_keys
from lstm_jax.tasks import make_task
from lstm_jax.tasks.imdb import validation_rows
from tests.test_imdb_task import V, small  # noqa: F401  (the fixture)


def _rows(x) -> set[bytes]:
    x = np.asarray(x)
    return {r.tobytes() for r in x.reshape(-1, *x.shape[-1:])}


def test_synthetic_splits_come_from_disjoint_key_streams():
    cfg = TrainConfig(task="copy", seq_len=10, batch=8, eval_size=64, seeds=2)
    task = make_task("copy", 10)
    keys = {s: jax.random.key_data(eval_key(cfg, s)).tobytes() for s in ("validation", "test")}
    data_keys = seed_keys(cfg)["data"]
    train_keys = {jax.random.key_data(jax.random.fold_in(k, s)).tobytes()
                  for k in data_keys for s in range(8)}
    assert keys["validation"] != keys["test"]
    assert not set(keys.values()) & train_keys
    with pytest.raises(UserError, match="split='train'"):
        eval_key(cfg, "train")
    # copy at T=10: 8^10 ≈ 1e9 letter strings, so distinct streams share no sequence
    chunks = jax.jit(eval_chunks, static_argnums=(0, 1, 3))
    val, test = (chunks(cfg, task, None, s).x for s in ("validation", "test"))
    assert val.shape == test.shape == (8, 8, 30)
    batch = jax.jit(task.train_batch, static_argnums=3)
    train = [batch(None, k, s, 8).x for k in data_keys for s in range(8)]
    sets = {"validation": _rows(val), "test": _rows(test), "train": _rows(np.stack(train))}
    assert [len(v) for v in sets.values()] == [64, 64, 128]  # no repeats inside a split either
    assert not sets["validation"] & sets["test"]
    assert not sets["train"] & (sets["validation"] | sets["test"])
    # the same key stream gives the same held-out set (it is fixed across seeds and resumes)
    np.testing.assert_array_equal(np.asarray(chunks(cfg, task, None, "validation").x),
                                  np.asarray(val))


def test_validation_rows_stratified_and_fixed_by_seed():
    labels = np.array([1] * 70 + [0] * 30)
    rows = validation_rows(labels, 20, seed=5)
    assert len(rows) == 20 and len(set(rows.tolist())) == 20
    assert (labels[rows] == 1).sum() == 14 and (labels[rows] == 0).sum() == 6  # 70/30 kept
    np.testing.assert_array_equal(rows, validation_rows(labels, 20, seed=5))
    assert not np.array_equal(rows, validation_rows(labels, 20, seed=6))
    # largest remainder: 7 of (5 pos, 4 neg) → exact 3.89 / 3.11 → 4 pos, 3 neg
    odd = validation_rows(np.array([1] * 5 + [0] * 4), 7, seed=0)
    assert np.bincount(np.array([1] * 5 + [0] * 4)[odd]).tolist() == [3, 4]


def test_imdb_validation_held_out_of_train(small):  # noqa: F811
    task = make_task("imdb", 16, vocab_size=V, val_size=5, val_seed=3)
    raw = task.arrays["train"]
    held = validation_rows(raw["labels"], 5, 3)
    keep = np.setdiff1d(np.arange(len(raw["labels"])), held)
    assert task.sizes == {"train": 10, "validation": 5, "test": 7}
    for k in ("tokens", "lengths", "labels"):
        np.testing.assert_array_equal(task.splits["validation"][k], raw[k][held])
        np.testing.assert_array_equal(task.splits["train"][k], raw[k][keep])
    assert not set(held.tolist()) & set(keep.tolist())
    # 15 reviews, 8 positive: 5·8/15 = 2.67 → 3 positive, 2 negative held out
    assert np.bincount(task.splits["validation"]["labels"]).tolist() == [2, 3]
    assert task.split_info()["val_seed"] == 3
    data = task.device_data()
    ev = task.eval_set(data, jax.random.key(0), 100)  # the default split is validation
    np.testing.assert_array_equal(np.asarray(ev.y), task.splits["validation"]["labels"])
    other = make_task("imdb", 16, vocab_size=V, val_size=5, val_seed=4)
    assert not np.array_equal(other.splits["validation"]["tokens"],
                              task.splits["validation"]["tokens"])
    with pytest.raises(UserError, match="val_size"):
        make_task("imdb", 16, vocab_size=V, val_size=15)
    with pytest.raises(UserError, match="val_seed"):
        TrainConfig(task="imdb", val_seed=-1)
    with pytest.raises(UserError, match="imdb"):
        TrainConfig(task="adding", val_size=100)
