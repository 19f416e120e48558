"""Task generators against NumPy re-derivations of their definitions, and their baselines
against both the closed forms and the empirical loss of the memoryless predictor."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_jax.errors import UserError
from lstm_jax.tasks import make_task, task_names
from lstm_jax.tasks.synthetic import hochreiter_adding_baseline, hochreiter_adding_solved_baseline

KEY = jax.random.key(7)


def sample(task, key, n):
    """One compiled call (eager op-by-op dispatch is slow on a loaded CPU)."""
    return jax.jit(task.sample, static_argnums=1)(key, n)


def test_registry_names_and_errors():
    assert {"adding", "adding_hochreiter", "copy", "temporal_order",
            "temporal_order8"} <= set(task_names())
    with pytest.raises(UserError, match="task='nope'.*adding"):
        make_task("nope", 10)
    with pytest.raises(UserError, match="seq_len=10.*adding_hochreiter.*24"):
        make_task("adding_hochreiter", 10)
    with pytest.raises(UserError, match="seq_len=5.*temporal_order"):
        make_task("temporal_order", 5)
    with pytest.raises(UserError, match="seq_len=0"):
        make_task("copy", 0)


@pytest.mark.parametrize("name", ["adding", "adding_hochreiter", "copy", "temporal_order"])
def test_batches_are_a_pure_function_of_key_and_step(name):
    task = make_task(name, 30)
    batch_at = jax.jit(task.train_batch, static_argnums=3)  # the step is traced, as in training
    a = batch_at(None, KEY, jnp.int32(3), 8)
    b = batch_at(None, KEY, jnp.int32(3), 8)
    c = batch_at(None, KEY, jnp.int32(4), 8)
    d = sample(task, jax.random.fold_in(KEY, 3), 8)  # fold_in(key, step), drawn directly
    for u, v, w in zip(jax.tree.leaves(a), jax.tree.leaves(b), jax.tree.leaves(d), strict=True):
        np.testing.assert_array_equal(u, v)
        np.testing.assert_array_equal(u, w)
    assert not np.array_equal(a.x, c.x)
    assert a.x.shape[:2] == (8, task.spec.max_len)


def test_adding_le_example_and_baseline():
    task = make_task("adding", 10)
    b = sample(task, KEY, 4096)
    x, y = np.asarray(b.x), np.asarray(b.y)
    values, marks = x[..., 0], x[..., 1]
    assert b.mask is None and x.shape == (4096, 10, 2)
    assert values.min() >= 0 and values.max() < 1
    # exactly one marker in each half [0, 5) and [5, 10)
    np.testing.assert_array_equal(marks[:, :5].sum(1), 1)
    np.testing.assert_array_equal(marks[:, 5:].sum(1), 1)
    assert set(np.unique(marks)) == {0.0, 1.0}
    # the target, row by row with a plain loop
    for i in range(20):
        p1, p2 = np.flatnonzero(marks[i])
        assert y[i] == pytest.approx(values[i, p1] + values[i, p2], abs=1e-6)
    # every position of each half gets used
    assert set(np.argmax(marks[:, :5], 1)) == set(range(5))
    assert set(5 + np.argmax(marks[:, 5:], 1)) == set(range(5, 10))
    # baseline: the constant 1 has MSE 1/6
    assert task.spec.baseline == pytest.approx(1 / 6)
    big = sample(task, jax.random.key(1), 100_000)
    const = jnp.ones((100_000, 1))
    assert float(jax.jit(task.loss)(const, big)) == pytest.approx(1 / 6, abs=0.003)


def test_adding_hochreiter_example_and_baseline():
    T = 40
    task = make_task("adding_hochreiter", T)
    b = sample(task, KEY, 2000)
    x, y, mask = np.asarray(b.x), np.asarray(b.y), np.asarray(b.mask)
    assert x.shape == (2000, T + T // 10, 2) and task.spec.max_len == 44
    lengths = mask.sum(1)
    assert lengths.min() == T and lengths.max() == T + T // 10
    for i in range(300):
        L = lengths[i]
        np.testing.assert_array_equal(mask[i], np.arange(44) < L)
        values, marks = x[i, :, 0], x[i, :, 1]
        assert np.all(x[i, L:] == 0)
        pos = np.flatnonzero(marks == 1)
        assert len(pos) == 2
        assert min(pos) < 10 and max(pos) < T // 2 - 1
        # -1 at the first and the last valid step unless marked there, 0 elsewhere
        expect = np.zeros(44)
        expect[[0, L - 1]] = -1
        expect[pos] = 1
        expect[L:] = 0
        np.testing.assert_array_equal(marks, expect)
        assert np.all(np.abs(values[:L]) <= 1)
        if 0 in pos:
            assert values[0] == 0
        assert y[i] == pytest.approx(0.5 + (values[pos].sum()) / 4, abs=1e-6)
    # the closed form at T = 100, by hand: ((1 − 0.1) + (1 − 0.9/48)) / 48
    assert hochreiter_adding_baseline(100) == pytest.approx((0.9 + 1 - 0.9 / 48) / 48)
    assert hochreiter_adding_baseline(100) == pytest.approx(0.03919, abs=1e-5)
    big = sample(task, jax.random.key(2), 100_000)
    half = jnp.full((100_000, 1), 0.5)
    assert float(jax.jit(task.loss)(half, big)) == pytest.approx(task.spec.baseline, rel=0.02)
    metrics = task.metrics(big.y[:, None] + 0.039, big)
    assert float(metrics["solved"]) == 1.0
    # the chance level of "solved": the constant 0.5 solves |X1 + X2| < 0.16; by hand at T = 40
    # (n = 19): p0 = 0.1 + 0.9/18 = 0.15, (1 − p0)·0.1536 + p0·0.16 = 0.15456; and Monte Carlo
    # on the generator itself (sd of the fraction ≈ 0.0011 at 100,000 sequences)
    assert hochreiter_adding_solved_baseline(T) == pytest.approx(0.85 * 0.1536 + 0.15 * 0.16)
    assert task.spec.metric_baselines["solved"] == hochreiter_adding_solved_baseline(T)
    chance = float(task.metrics(half, big)["solved"])
    assert chance == pytest.approx(hochreiter_adding_solved_baseline(T), abs=0.005)


def test_copy_example_and_baseline():
    T = 5
    task = make_task("copy", T)
    b = sample(task, KEY, 3)
    x, y = np.asarray(b.x), np.asarray(b.y)
    assert x.shape == (3, T + 20) and y.shape == (3, T + 20)
    letters = x[:, :10]
    assert letters.min() >= 1 and letters.max() <= 8
    # by hand: 10 letters, T−1 = 4 blanks, the delimiter 9, 10 blanks
    expect_x = np.concatenate([letters, np.zeros((3, 4), int), np.full((3, 1), 9),
                               np.zeros((3, 10), int)], 1)
    expect_y = np.concatenate([np.zeros((3, 15), int), letters], 1)
    np.testing.assert_array_equal(x, expect_x)
    np.testing.assert_array_equal(y, expect_y)
    # the memoryless strategy: blank (certain) until the end, then uniform over the 8 letters
    n, L = 4096, T + 20
    big = sample(task, jax.random.key(3), n)
    logits = np.full((n, L, 9), -1e4, np.float32)
    logits[:, : T + 10, 0] = 0.0
    logits[:, T + 10:, 1:] = 0.0
    loss = float(jax.jit(task.loss)(jnp.asarray(logits), big))
    assert loss == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-5)
    assert task.spec.baseline == pytest.approx(10 * math.log(8) / 25)
    # accuracy counts the 10 recalled letters only
    perfect = jax.nn.one_hot(big.y, 9) * 10.0
    assert float(jax.jit(task.metrics)(perfect, big)["accuracy"]) == 1.0
    wrong = perfect.at[:, :T + 10].set(0.0).at[:, -1].set(0.0)
    assert float(jax.jit(task.metrics)(wrong, big)["accuracy"]) == pytest.approx(0.9, abs=0.02)


@pytest.mark.parametrize("name,k", [("temporal_order", 2), ("temporal_order8", 3)])
def test_temporal_order_example_and_baseline(name, k):
    T = 100
    task = make_task(name, T)
    b = sample(task, KEY, 4000)
    x, y, mask = np.asarray(b.x), np.asarray(b.y), np.asarray(b.mask)
    windows = {2: [(10, 20), (50, 60)], 3: [(10, 20), (33, 43), (66, 76)]}[k]
    lengths = mask.sum(1)
    assert lengths.min() == 100 and lengths.max() == 110  # the paper: 100–110
    for i in range(300):
        L = lengths[i]
        seq = x[i, :L]
        assert seq[0] == 6 and seq[-1] == 7 and np.all(x[i, L:] == 0)
        pos = np.flatnonzero((seq == 4) | (seq == 5))
        assert len(pos) == k
        for p, (lo, hi) in zip(pos, windows, strict=True):
            assert lo <= p <= hi
        others = np.delete(seq[1:-1], pos - 1)
        assert others.max() <= 3
        cls = 0
        for p in pos:  # X = 0, Y = 1, most significant first: XX=0, XY=1, YX=2, YY=3
            cls = 2 * cls + int(seq[p] == 5)
        assert y[i] == cls
    counts = np.bincount(y, minlength=2 ** k) / len(y)
    np.testing.assert_allclose(counts, 1 / 2 ** k, atol=0.03)
    uniform = jnp.zeros((4000, 2 ** k))
    assert float(jax.jit(task.loss)(uniform, b)) == pytest.approx(task.spec.baseline, rel=1e-6)
    assert task.spec.baseline == pytest.approx(math.log(2 ** k))
