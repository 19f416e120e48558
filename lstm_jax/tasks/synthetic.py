"""Synthetic long-range tasks, generated on the device with ``jax.random``.

Each batch is a pure function of its key (the loop passes ``fold_in(data_key, step)``), so a
run is reproducible and a resumed run sees the same batches. Each task states the loss of the
best *memoryless* predictor (one that ignores the inputs it would have to remember): a model
that does not beat it has learned nothing long-range.

* ``adding``: the adding problem as in Le et al. (2015) and Arjovsky et al. (2016).
* ``adding_hochreiter``: the original, Hochreiter & Schmidhuber (1997), experiment 4.
* ``copy``: copy memory, Arjovsky et al. (2016) (after Hochreiter & Schmidhuber 1997, exp. 2).
* ``temporal_order`` / ``temporal_order8``: Hochreiter & Schmidhuber (1997), experiment 6a/6b.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from lstm_jax.errors import UserError
from lstm_jax.tasks.registry import Batch, Task, TaskSpec, register_task

MAX_SEQ_LEN = 1_000_000


def _check_len(name: str, seq_len: int, minimum: int) -> None:
    if not minimum <= seq_len <= MAX_SEQ_LEN:
        raise UserError(f"seq_len={seq_len} is not usable for task {name!r}; "
                        f"it needs {minimum} ≤ seq_len ≤ {MAX_SEQ_LEN}")


def mse(pred: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error; ``pred`` ``(B, 1)``, ``y`` ``(B,)``."""
    return jnp.mean((pred[:, 0] - y) ** 2)


def _lengths(key, batch: int, seq_len: int) -> jax.Array:
    """Random lengths in [T, T + T//10] (Hochreiter & Schmidhuber 1997, exps. 4 and 6)."""
    return jax.random.randint(key, (batch,), seq_len, seq_len + seq_len // 10 + 1)


class Adding(Task):
    """The adding problem of Le et al. (2015, §4.1) and Arjovsky et al. (2016, §4.2).

    ``x`` ``(B, T, 2)``: channel 0 values ~ U[0, 1], channel 1 a marker with exactly two 1s, one
    at a uniform position in the first half ``[0, T//2)`` and one in the second ``[T//2, T)``.
    ``y`` ``(B,)``: the sum of the two marked values. Loss: MSE. Baseline: predicting the mean 1
    gives ``Var(X1 + X2) = 2/12 = 1/6``.
    """

    def __init__(self, seq_len: int):
        _check_len("adding", seq_len, 2)
        self.spec = TaskSpec(
            name="adding", seq_len=seq_len, max_len=seq_len, input_kind="dense", in_features=2,
            out_features=1, head="last", readout="last", loss_name="mse", baseline=1 / 6,
            baseline_note="predict 1 always: Var(X1+X2) = 2·(1/12) = 1/6 (Le et al. 2015)")

    def sample(self, key, batch_size):
        T = self.spec.seq_len
        kv, k1, k2 = jax.random.split(key, 3)
        values = jax.random.uniform(kv, (batch_size, T))
        p1 = jax.random.randint(k1, (batch_size,), 0, T // 2)
        p2 = jax.random.randint(k2, (batch_size,), T // 2, T)
        marks = jax.nn.one_hot(p1, T) + jax.nn.one_hot(p2, T)
        y = jnp.sum(values * marks, axis=1)
        return Batch(jnp.stack([values, marks], axis=-1), y, None)

    def loss(self, outputs, batch):
        return mse(outputs, batch.y)


def hochreiter_adding_baseline(seq_len: int) -> float:
    """MSE of the constant 0.5 on :class:`AddingHochreiter` (exact for this generator).

    The target is ``0.5 + (X1 + X2)/4`` with X ~ U[−1, 1] (variance 1/3), except that a value
    marked at position 0 is set to 0. X1 sits there with probability 1/10; X2 (uniform over the
    first ``n = T//2 − 1`` positions other than X1's) with probability ``0.9/(n − 1)``. So the
    baseline is ``((1 − 1/10) + (1 − 0.9/(n − 1))) / (3·16)``: 0.0392 at T = 100, → 1.9/48 =
    0.0396 for large T (≈ 1/24 = 0.042 without the zeroing rule).
    """
    n = seq_len // 2 - 1
    return ((1 - 0.1) + (1 - 0.9 / (n - 1))) / 48


def hochreiter_adding_solved_baseline(seq_len: int) -> float:
    """Fraction of :class:`AddingHochreiter` sequences the constant 0.5 *solves* (|error| < 0.04,
    i.e. |X1 + X2| < 0.16), exact for this generator: the chance level of ``solved``.

    For X1, X2 ~ U[−1, 1], P(|X1 + X2| < a) = a − a²/4 = 0.1536 at a = 0.16; when one value is
    zeroed (marked at position 0, probability ``p0 = 1/10 + 0.9/(n − 1)``, see
    :func:`hochreiter_adding_baseline`) it is P(|X| < 0.16) = 0.16. So ``(1 − p0)·0.1536 +
    p0·0.16``: 0.1544 at T = 100.
    """
    n = seq_len // 2 - 1
    p0 = 0.1 + 0.9 / (n - 1)
    return (1 - p0) * (0.16 - 0.16 ** 2 / 4) + p0 * 0.16


class AddingHochreiter(Task):
    """The adding problem as Hochreiter & Schmidhuber (1997, experiment 4) define it.

    Lengths vary uniformly in ``[T, T + T//10]`` (padded to ``T + T//10``; ``mask`` marks the
    valid steps; the model reads the state at each sequence's last valid step). Channel 0: values
    ~ U[−1, 1]; channel 1: markers — X1 at a uniform position among the first 10, X2 at a uniform
    position among the first ``T//2 − 1`` other than X1's; the first and the last valid step carry
    marker −1 unless marked; a value marked at position 0 is set to 0 (the paper's rule for X1,
    applied to both). Target ``0.5 + (X1 + X2)/4``; MSE; a sequence is *solved* when
    ``|error| < 0.04`` (the paper's criterion). Baseline: :func:`hochreiter_adding_baseline`.
    """

    def __init__(self, seq_len: int):
        _check_len("adding_hochreiter", seq_len, 24)
        self.spec = TaskSpec(
            name="adding_hochreiter", seq_len=seq_len, max_len=seq_len + seq_len // 10,
            input_kind="dense", in_features=2, out_features=1, head="last", readout="last",
            loss_name="mse", baseline=hochreiter_adding_baseline(seq_len),
            baseline_note="predict 0.5 always: (0.9 + 1 − 0.9/(T//2−2))/48 ≈ 0.039 "
                          "(Hochreiter & Schmidhuber 1997, exp. 4; 1/24 ≈ 0.042 without the "
                          "X=0-at-position-0 rule)",
            metric_baselines={"solved": hochreiter_adding_solved_baseline(seq_len)})

    def sample(self, key, batch_size):
        T, Tm = self.spec.seq_len, self.spec.max_len
        kv, kl, k1, k2 = jax.random.split(key, 4)
        lengths = _lengths(kl, batch_size, T)
        steps = jnp.arange(Tm)
        mask = steps[None, :] < lengths[:, None]
        n = T // 2 - 1
        p1 = jax.random.randint(k1, (batch_size,), 0, 10)
        q = jax.random.randint(k2, (batch_size,), 0, n - 1)
        p2 = q + (q >= p1)
        marked = jax.nn.one_hot(p1, Tm, dtype=bool) | jax.nn.one_hot(p2, Tm, dtype=bool)
        ends = (steps[None, :] == 0) | (steps[None, :] == lengths[:, None] - 1)
        marks = jnp.where(marked, 1.0, jnp.where(ends, -1.0, 0.0))
        values = jax.random.uniform(kv, (batch_size, Tm), minval=-1.0, maxval=1.0)
        values = jnp.where(marked & (steps[None, :] == 0), 0.0, values)
        y = 0.5 + jnp.sum(jnp.where(marked, values, 0.0), axis=1) / 4
        x = jnp.stack([values, marks], axis=-1) * mask[..., None]
        return Batch(x, y, mask)

    def loss(self, outputs, batch):
        return mse(outputs, batch.y)

    def metrics(self, outputs, batch):
        err = jnp.abs(outputs[:, 0] - batch.y)
        return {"loss": self.loss(outputs, batch), "solved": jnp.mean(err < 0.04)}


COPY_SYMBOLS, COPY_LETTERS = 10, 8  # remembered symbols; alphabet size
COPY_DELIM = COPY_LETTERS + 1


class Copy(Task):
    """Copy memory, as in Arjovsky et al. (2016, §4.1).

    Input symbols ``(B, T + 20)`` over a vocabulary of 10: 10 letters from ``{1..8}``, T−1
    blanks (0), the delimiter 9, then 10 blanks. Target ``(B, T + 20)``: blanks (0) for the first
    ``T + 10`` steps, then the 10 letters. Loss: cross-entropy averaged over all steps (9 output
    classes: blank and the letters). Baseline: predict blank until the delimiter and a uniform
    letter afterwards: ``10·ln 8 / (T + 20)``. ``accuracy``: over the 10 recalled letters
    (chance 1/8).
    """

    def __init__(self, seq_len: int):
        _check_len("copy", seq_len, 1)
        self.spec = TaskSpec(
            name="copy", seq_len=seq_len, max_len=seq_len + 2 * COPY_SYMBOLS, input_kind="symbols",
            in_features=COPY_LETTERS + 2, out_features=COPY_LETTERS + 1, head="per_step",
            readout="last", loss_name="xent",
            baseline=COPY_SYMBOLS * math.log(COPY_LETTERS) / (seq_len + 2 * COPY_SYMBOLS),
            baseline_note="blank, then uniform letters: 10·ln 8/(T+20) (Arjovsky et al. 2016)",
            metric_baselines={"accuracy": 1 / COPY_LETTERS})

    def sample(self, key, batch_size):
        T = self.spec.seq_len
        letters = jax.random.randint(key, (batch_size, COPY_SYMBOLS), 1, COPY_LETTERS + 1)
        z = lambda n: jnp.zeros((batch_size, n), jnp.int32)
        x = jnp.concatenate([letters, z(T - 1), jnp.full((batch_size, 1), COPY_DELIM, jnp.int32),
                             z(COPY_SYMBOLS)], axis=1)
        y = jnp.concatenate([z(T + COPY_SYMBOLS), letters], axis=1)
        return Batch(x, y, None)

    def loss(self, outputs, batch):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs, batch.y))

    def metrics(self, outputs, batch):
        recalled = jnp.argmax(outputs[:, -COPY_SYMBOLS:], axis=-1) == batch.y[:, -COPY_SYMBOLS:]
        return {"loss": self.loss(outputs, batch), "accuracy": jnp.mean(recalled)}


# Temporal order: symbols a, b, c, d (0..3), X (4), Y (5), B (6), E (7).
TO_X, TO_B, TO_E = 4, 6, 7
# Windows for the relevant symbols as fractions of T (the paper's T = 100 values).
TO_WINDOWS = {2: ((0.10, 0.20), (0.50, 0.60)),  # exp. 6a: t1 ∈ [10, 20], t2 ∈ [50, 60]
              3: ((0.10, 0.20), (0.33, 0.43), (0.66, 0.76))}  # exp. 6b


class TemporalOrder(Task):
    """Temporal order, Hochreiter & Schmidhuber (1997, experiments 6a and 6b).

    Symbols ``(B, T + T//10)`` over a vocabulary of 8; lengths vary in ``[T, T + T//10]`` (the
    paper: 100–110). A sequence is ``B``, distractors from ``{a, b, c, d}``, ``E`` at its last step;
    ``k`` positions (6a: k = 2 with t1 ∈ [0.1T, 0.2T], t2 ∈ [0.5T, 0.6T]; 6b: k = 3 with windows
    [0.1T, 0.2T], [0.33T, 0.43T], [0.66T, 0.76T]) hold X or Y. The class (2^k of them: XX, XY, YX,
    YY, ...) is the order of X/Y, read at the last valid step. Cross-entropy; baseline ``ln 2^k``
    (chance accuracy ``2^−k``).
    """

    def __init__(self, seq_len: int, relevant: int = 2):
        name = "temporal_order" if relevant == 2 else "temporal_order8"
        _check_len(name, seq_len, 20)
        self.relevant = relevant
        classes = 2 ** relevant
        self.windows = [(round(a * seq_len), round(b * seq_len)) for a, b in TO_WINDOWS[relevant]]
        self.spec = TaskSpec(
            name=name, seq_len=seq_len, max_len=seq_len + seq_len // 10, input_kind="symbols",
            in_features=8, out_features=classes, head="last", readout="last", loss_name="xent",
            baseline=math.log(classes),
            baseline_note=f"uniform over {classes} classes: ln {classes} "
                          f"(Hochreiter & Schmidhuber 1997, exp. 6{'a' if relevant == 2 else 'b'})",
            metric_baselines={"accuracy": 1 / classes})

    def sample(self, key, batch_size):
        T, Tm = self.spec.seq_len, self.spec.max_len
        kl, kd, kp, kb = jax.random.split(key, 4)
        lengths = _lengths(kl, batch_size, T)
        steps = jnp.arange(Tm)[None, :]
        mask = steps < lengths[:, None]
        x = jax.random.randint(kd, (batch_size, Tm), 0, 4)
        bits = jax.random.bernoulli(kb, 0.5, (batch_size, self.relevant)).astype(jnp.int32)
        pkeys = jax.random.split(kp, self.relevant)
        y = jnp.zeros((batch_size,), jnp.int32)
        for k, (lo, hi) in enumerate(self.windows):
            t = jax.random.randint(pkeys[k], (batch_size,), lo, hi + 1)
            x = jnp.where(steps == t[:, None], TO_X + bits[:, k:k + 1], x)
            y = 2 * y + bits[:, k]
        x = jnp.where(steps == 0, TO_B, x)
        x = jnp.where(steps == lengths[:, None] - 1, TO_E, x)
        x = jnp.where(mask, x, 0)
        return Batch(x.astype(jnp.int32), y, mask)

    def loss(self, outputs, batch):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs, batch.y))

    def metrics(self, outputs, batch):
        acc = jnp.mean(jnp.argmax(outputs, axis=-1) == batch.y)
        return {"loss": self.loss(outputs, batch), "accuracy": acc}


register_task("adding")(Adding)
register_task("adding_hochreiter")(AddingHochreiter)
register_task("copy")(Copy)
register_task("temporal_order")(lambda seq_len: TemporalOrder(seq_len, 2))
register_task("temporal_order8")(lambda seq_len: TemporalOrder(seq_len, 3))
