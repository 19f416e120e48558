"""Three splits: synthetic train/validation/test from disjoint key streams; IMDB's validation split
a stratified hold-out of the train split, or of whole movies, fixed by its seed (on a small archive
written here)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.steps import eval_chunks, eval_key, seed_keys
from lstm_jax.tasks import imdb as imdb_task
from lstm_jax.tasks import make_task
from lstm_jax.tasks.imdb import class_quotas, validation_rows, validation_rows_by_movie
from tests.test_imdb_task import V, movie_of, small, write_archive  # noqa: F401  (the fixture)


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


# ---------------------------------------------------------------- whole movies held out


def _validation_rows_before(labels, size, seed):
    """``validation_rows`` as it was before ``val_split`` existed (a verbatim copy)."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / len(labels)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[:size - quota.sum()]:
        quota[i] += 1
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(labels == c))[:q]
            for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(rows))


def _counts(labels, rows):
    return np.bincount(np.asarray(labels)[rows], minlength=2)


def _random_movies(seed, n=400, n_movies=60):
    """Labels and movies of ``n`` reviews: movie sizes skewed (a few with many reviews), each
    movie leaning positive or negative, as in IMDB."""
    rng = np.random.default_rng(seed)
    movies = rng.choice(n_movies, size=n, p=rng.dirichlet(np.full(n_movies, 0.5)))
    lean = rng.uniform(0.1, 0.9, n_movies)
    return (rng.uniform(size=n) < lean[movies]).astype(np.int32), movies * 7 + 3


def test_review_split_rows_unchanged():
    """The default split picks exactly the rows it picked before movies existed, so committed
    runs reproduce bit for bit."""
    rng = np.random.default_rng(0)
    for n, size, seed in [(100, 20, 5), (25_000, 5_000, 0), (15, 3, 0), (9, 7, 2), (37, 11, 9)]:
        labels = rng.integers(0, 2, n)
        np.testing.assert_array_equal(validation_rows(labels, size, seed),
                                      _validation_rows_before(labels, size, seed))
    balanced = np.repeat([1, 0], 12_500)
    assert class_quotas(balanced, 5_000)[1].tolist() == [2_500, 2_500]
    assert class_quotas(balanced, 5_001)[1].tolist() == [2_501, 2_500]


def test_movie_split_disjoint_within_quotas_and_fixed_by_seed():
    labels, movies = _random_movies(1)
    quota = class_quotas(labels, 80)[1]
    rows = validation_rows_by_movie(labels, movies, 80, seed=4)
    assert np.all(np.diff(rows) > 0)  # sorted, no repeats
    rest = np.setdiff1d(np.arange(len(labels)), rows)
    assert not set(movies[rows].tolist()) & set(movies[rest].tolist())
    got = _counts(labels, rows)
    assert (got <= quota).all() and got.sum() > 0
    # maximal: every movie left out would push some class over its quota
    for m in np.unique(movies[rest]):
        assert (got + _counts(labels, np.flatnonzero(movies == m)) > quota).any()
    np.testing.assert_array_equal(rows, validation_rows_by_movie(labels, movies, 80, seed=4))
    assert not np.array_equal(rows, validation_rows_by_movie(labels, movies, 80, seed=5))


def test_movie_split_meets_the_quotas_when_an_exact_fill_exists():
    # ≥ quota one-review movies of each class: a class can stop short only once it is full
    labels = np.array([1] * 10 + [0] * 10 + [1, 1, 0] * 4 + [1, 1, 1, 1] * 3 + [0, 0] * 5)
    movies = np.concatenate([np.arange(20), np.repeat(np.arange(20, 24), 3),
                             np.repeat(np.arange(30, 33), 4), np.repeat(np.arange(40, 45), 2)])
    quota = class_quotas(labels, 15)[1]
    assert quota.tolist() == [7, 8]
    for seed in range(20):
        rows = validation_rows_by_movie(labels, movies, 15, seed)
        assert _counts(labels, rows).tolist() == [7, 8], seed


@settings(max_examples=60, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)).filter(any), min_size=1,
                      max_size=40),
       frac=st.floats(0.05, 0.95), seed=st.integers(0, 2**32 - 1))
def test_movie_split_never_exceeds_a_quota(sizes, frac, seed):
    """Any movies ((neg, pos) reviews each), any size, any seed: whole movies, ≤ each quota."""
    labels = np.concatenate([np.repeat([0, 1], s) for s in sizes])
    movies = np.repeat(np.arange(len(sizes)), [a + b for a, b in sizes])
    if len(np.unique(labels)) < 2:
        labels[0] = 1 - labels[0]
    size = max(1, int(frac * len(labels)))
    rows = validation_rows_by_movie(labels, movies, size, seed)
    classes, quota = class_quotas(labels, size)
    assert (np.bincount(labels[rows], minlength=2) <= quota).all()
    inside = np.isin(np.arange(len(labels)), rows)
    for m in np.unique(movies):
        assert len(set(inside[movies == m].tolist())) == 1  # a movie is wholly in or out


@pytest.fixture
def movies_archive(tmp_path, monkeypatch):
    """A small archive with urls files (40 train reviews on 13 movies), as the default data."""
    path = write_archive(tmp_path / "aclImdb_v1.tar.gz", n_train=40, n_test=9, movies=13)
    monkeypatch.setenv("LSTM_JAX_IMDB", str(path))
    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(imdb_task, "EXPECTED_SIZES", None)
    return path


def test_imdb_movie_split_end_to_end(movies_archive):
    cfg = TrainConfig(task="imdb", seq_len=16, vocab_size=V, val_size=10, val_seed=1,
                      val_split="movie")
    task = make_task("imdb", 16, **cfg.task_options())
    train, val = task.splits["train"], task.splits["validation"]
    assert len(val["labels"]) > 0 and task.sizes["train"] + task.sizes["validation"] == 40
    assert not set(train["movies"].tolist()) & set(val["movies"].tolist())
    assert (np.bincount(val["labels"], minlength=2) <= [5, 5]).all()
    raw = task.arrays["train"]
    rows = validation_rows_by_movie(raw["labels"], raw["movies"], 10, 1)
    for k in ("tokens", "lengths", "labels", "movies"):
        np.testing.assert_array_equal(val[k], raw[k][rows])
    expected = {movie_of("train", c, i, 13) for c in ("pos", "neg") for i in range(20)}
    assert set(raw["movies"].tolist()) == expected  # the urls files, read after the reviews
    assert set(task.device_data()["train"]) == {"tokens", "lengths", "labels"}
    info = task.split_info()
    assert info["val_split"] == "movie" and "whole movies" in info["validation"]
    assert info["validation_movies"] == len(set(val["movies"].tolist()))
    review = make_task("imdb", 16, vocab_size=V, val_size=10, val_seed=1)
    np.testing.assert_array_equal(review.splits["validation"]["tokens"],
                                  raw["tokens"][validation_rows(raw["labels"], 10, 1)])
    assert review.split_info()["validation"] == "stratified hold-out of the train split"
    with pytest.raises(UserError, match="held out no review.*larger val_size"):
        make_task("imdb", 16, vocab_size=V, val_size=1, val_split="movie")  # quotas 0 and 1


def test_movie_split_needs_urls_files(small):  # noqa: F811
    with pytest.raises(UserError, match=r"val_split='movie'.*urls_pos\.txt.*val_split='review'"):
        make_task("imdb", 16, vocab_size=V, val_size=5, val_split="movie")
    assert make_task("imdb", 16, vocab_size=V, val_size=5).sizes["validation"] == 5  # default


def test_bad_val_split(small):  # noqa: F811
    with pytest.raises(UserError, match=r"val_split='film'.*review, movie"):
        make_task("imdb", 16, vocab_size=V, val_split="film")
    with pytest.raises(UserError, match=r"val_split='film'.*review, movie"):
        TrainConfig(task="imdb", val_split="film")
    with pytest.raises(UserError, match="val_split apply to --task imdb"):
        TrainConfig(task="adding", val_split="movie")
    assert TrainConfig.from_dict({"task": "imdb"}).val_split == "review"  # configs before it


def test_val_split_flag(tmp_path):
    from lstm_jax.cli import build_parser
    from lstm_jax.cli.train import config_from_args

    args = build_parser().parse_args(["train", "--task", "imdb", "--val-split", "movie",
                                      "--out", str(tmp_path / "run")])
    assert config_from_args(args).task_options()["val_split"] == "movie"
