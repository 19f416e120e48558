"""IMDB sentiment (Maas et al. 2011) as a task: 25,000 train and 25,000 test reviews, 2 classes.

Inputs are word ids ``(B, L)`` int32 (``L = seq_len``, right-padded with PAD = 0) from
:func:`lstm_jax.data.load_imdb_arrays` (vocabulary from the train split only; each review cut to
its first or last ``L`` tokens); ``mask`` ``(B, L)`` is ``arange(L) < length``. One output per
review (``head="last"``): the hidden state at the last valid token (``readout="last"``, the
default: the network must carry the evidence to the end of the review) or the masked mean of
``h_t`` over the review (``"mean"``). Loss: cross-entropy; metric: accuracy; baseline ``ln 2``
(classes are balanced, 12,500 each), chance accuracy 0.5.

Training batches (a pure function of ``step``; no data position to save):
``E = N // B`` batches per epoch (the last ``N mod B`` examples of each epoch's permutation are
skipped, a different set each epoch); at step ``s`` the epoch is ``e = s // E``, the permutation
``perm_e = permutation(fold_in(key, e), N)``, and the batch is ``perm_e[(s mod E)·B : +B]``. So
every epoch visits ``E·B`` distinct training reviews.

Splits: a *validation* split of ``val_size`` reviews (default a fifth of the train split: 5,000 of
25,000) is held out of the train split and never trained on; training batches come from the rest
(20,000). ``val_split="review"`` (the default) holds out reviews, stratified by label
(:func:`validation_rows`, a NumPy permutation per class fixed by ``val_seed``); such a hold-out
shares movies with the training reviews (up to 30 reviews per movie), while the test split's movies
are disjoint from train's: why validation read 0.9–4.6 points above test in
experiments/results/compare_imdb and compare_imdb_pair, and within a point of test under
``"movie"``. ``val_split="movie"`` holds out whole movies with the same per-class quotas
(:func:`validation_rows_by_movie`; it needs the archive's urls files), so no movie is in both
validation and train. During training the held-out metrics are on a fixed subset of
*validation* (a permutation drawn from the eval key, first ``size`` rows; all of it when ``size`` ≥
its size); the *test* split (25,000) is scored only after training (``eval_set(...,
split="test")``, see :mod:`lstm_jax.evaluate`). :func:`evaluate_split` scores a whole split exactly
(no rows dropped). The vocabulary and the optional PPMI word vectors use the text of all 25,000
train reviews (and the unlabelled ones), never a label of the validation split.

Length buckets (``buckets=K > 1``): most reviews are far shorter than ``L`` (at ``L = 800`` the
mean kept length is 264), and a recurrence over a padded step costs as much as over a word. So the
train split is sorted by length and cut into ``K`` equal groups (the ``N mod K`` longest reviews
are left out); group ``k``'s batches are cut to ``lengths[k]``, its longest review. An epoch is
``K·⌊(N//K)/B⌋`` batches, each from one group; the order of the groups' batches is a permutation
drawn from the epoch alone (the same for every seed, so the compiled step can branch on it,
:meth:`Imdb.train_bucket`), and which reviews form group ``k``'s batches is a permutation drawn
from ``(key, epoch, k)``. Cutting only drops padding, so a bucketed batch gives the same loss and
gradients as the full-length batch of the same reviews; what changes is which reviews share a
batch. This is the "sort by length" bucketing of e.g. Sutskever et al. (2014) and torchtext's
``BucketIterator``, kept a pure function of ``step``.

Options (``make_task("imdb", L, data=..., vocab_size=..., truncate=..., buckets=...)``): ``data``
the archive (else ``$LSTM_JAX_IMDB``, else ``../shared/data/aclImdb_v1.tar.gz``, see
:func:`lstm_jax.data.resolve_archive`), ``vocab_size`` (PAD, OOV and the most frequent train
tokens), ``truncate`` (``"last"`` keeps a review's last L tokens, ``"first"`` its first L),
``buckets`` (1 = off), ``val_size`` (None: a fifth of the train split), ``val_seed``,
``val_split`` (``"review"`` or ``"movie"``).
"""

from __future__ import annotations

import functools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lstm_jax.config import VAL_SPLITS
from lstm_jax.data.imdb import SPLIT_SIZES
from lstm_jax.errors import UserError, check_choice, check_positive
from lstm_jax.tasks.registry import Batch, Task, TaskSpec, register_task

TRUNCATE = ("last", "first")
# What a split's device data holds (``movies`` stays on the host: the model never reads it).
DEVICE_FIELDS = ("tokens", "lengths", "labels")
# Split sizes the archive must have (None skips the check: tests set it for small archives).
EXPECTED_SIZES: dict[str, int] | None = SPLIT_SIZES
MAX_LEN = 100_000


@functools.lru_cache(maxsize=4)
def _arrays(path: str | None, vocab_size: int, max_len: int, truncate: str, expected):
    from lstm_jax.data import load_imdb_arrays

    return load_imdb_arrays(path, vocab_size=vocab_size, max_len=max_len, truncate=truncate,
                            splits=("train", "test"), progress=False,
                            expected_sizes=None if expected is None else dict(expected))


def load_arrays(data: str | os.PathLike | None, vocab_size: int, max_len: int, truncate: str):
    """The task's :class:`~lstm_jax.data.ImdbArrays` (memoised per process)."""
    from lstm_jax.data import resolve_archive

    path = str(resolve_archive(data).resolve())
    expected = None if EXPECTED_SIZES is None else tuple(sorted(EXPECTED_SIZES.items()))
    return _arrays(path, vocab_size, max_len, truncate, expected)


def _bucket_order_key():
    return jax.random.key(20140914)  # fixed: the bucket order must not depend on the seed


def xent(outputs: jax.Array, y: jax.Array) -> jax.Array:
    """Mean cross-entropy; ``outputs`` ``(B, 2)`` logits, ``y`` ``(B,)`` int labels."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(outputs, y))


class Imdb(Task):
    """IMDB reviews → positive/negative (see the module docstring for batches and options).

    ``device_data()`` = ``{"train": {tokens (N, L), lengths (N,), labels (N,)},
    "validation": {...}, "test": {...}}`` (:attr:`splits`, on the host, which also hold each
    review's ``movies (N,)``).
    """

    def __init__(self, seq_len: int, *, data: str | os.PathLike | None = None,
                 vocab_size: int = 20_000, truncate: str = "last", buckets: int = 1,
                 val_size: int | None = None, val_seed: int = 0, val_split: str = "review"):
        check_positive("seq_len", seq_len, maximum=MAX_LEN)
        check_positive("buckets", buckets, maximum=1024)
        check_positive("vocab_size", vocab_size, maximum=10**7)
        if vocab_size < 3:
            raise UserError(f"vocab_size={vocab_size} must be ≥ 3 (PAD, OOV and one word)")
        check_choice("truncate", truncate, TRUNCATE)
        check_choice("val_split", val_split, VAL_SPLITS)
        if isinstance(val_seed, bool) or not isinstance(val_seed, int) or val_seed < 0:
            raise UserError(f"val_seed={val_seed!r} must be an integer ≥ 0")
        self.arrays = load_arrays(data, vocab_size, seq_len, truncate)
        full = {s: int(len(self.arrays[s]["labels"])) for s in ("train", "test")}
        if full["train"] == 0 or full["test"] == 0:
            raise UserError(f"IMDB archive {self.arrays.info.get('data')!r} has an empty split "
                            f"({full}); expected train and test reviews")
        if val_size is None:
            val_size = max(1, round(full["train"] / 5))
        check_positive("val_size", val_size, maximum=full["train"] - 1)
        held = self._held_out(val_split, val_size, val_seed)
        keep = np.setdiff1d(np.arange(full["train"]), held)
        train = self.arrays["train"]
        self.splits = {"train": {k: v[keep] for k, v in train.items()},
                       "validation": {k: v[held] for k, v in train.items()},
                       "test": self.arrays["test"]}
        self.options = {"data": self.arrays.info.get("data"), "vocab_size": vocab_size,
                        "truncate": truncate, "buckets": buckets, "val_size": val_size,
                        "val_seed": val_seed, "val_split": val_split}
        self.sizes = {s: int(len(v["labels"])) for s, v in self.splits.items()}
        self._tables: dict[int, np.ndarray] = {}
        self.spec = TaskSpec(
            name="imdb", seq_len=seq_len, max_len=seq_len, input_kind="symbols",
            in_features=len(self.arrays.itos), out_features=2, head="last", readout="last",
            loss_name="xent", baseline=math.log(2),
            baseline_note="balanced classes (12,500 each per split): ln 2 (Maas et al. 2011)",
            metric_baselines={"accuracy": 0.5})
        self.buckets = buckets
        if buckets > 1:
            from lstm_jax.data import length_groups

            self._members, self.bucket_lengths = length_groups(self.splits["train"]["lengths"],
                                                               buckets)
        else:
            self.bucket_lengths = None

    def _held_out(self, val_split: str, size: int, seed: int) -> np.ndarray:
        """Sorted train rows of the validation split (see the module docstring)."""
        labels = self.arrays["train"]["labels"]
        if val_split == "review":
            return validation_rows(labels, size, seed)
        movies = self.arrays["train"]["movies"]
        unknown = int((movies < 0).sum())
        if unknown:
            raise UserError(
                f"val_split='movie' holds out whole movies, so it needs each train review's movie, "
                f"which the archive's aclImdb/train/urls_pos.txt and urls_neg.txt give (line i: "
                f"the IMDB URL of review i_*.txt); {unknown:,} of the {len(movies):,} train reviews "
                f"of {self.arrays.info.get('data')!r} have none. Use the original aclImdb_v1.tar.gz "
                f"or val_split='review' (the default)")
        held = validation_rows_by_movie(labels, movies, size, seed)
        if len(held) == 0:
            raise UserError(f"val_split='movie' held out no review: every movie has more reviews "
                            f"of some class than that class's share of val_size={size}; use a "
                            f"larger val_size")
        return held

    def embedding_table(self, dim: int, method: str = "ppmi-svd") -> np.ndarray:
        """``(vocab_size, dim)`` float32 initial word vectors (:mod:`lstm_jax.data.embeddings`,
        from the train and unlabelled reviews; cached), scaled to the standard deviation of
        ``nnx.Embed``'s default initialiser, ``1/sqrt(dim)``, so only their directions differ
        from a random start."""
        from lstm_jax.data.embeddings import imdb_vectors

        check_choice("embed_init", method, ("ppmi-svd",))
        if dim not in self._tables:  # building a model traces it twice (shape, then init)
            expected = None if EXPECTED_SIZES is None else dict(EXPECTED_SIZES)
            table, _ = imdb_vectors(self.options["data"], vocab_size=len(self.arrays.itos),
                                    dim=dim, progress=False, expected_sizes=expected)
            self._tables[dim] = (table / (table.std() * math.sqrt(dim))).astype(np.float32)
        return self._tables[dim]

    def device_data(self):
        return {s: {k: jnp.asarray(split[k]) for k in DEVICE_FIELDS}
                for s, split in self.splits.items()}

    def evaluate_exact(self, model, split: str, *, per_example: bool = False) -> dict:
        """Loss and accuracy of one model on every review of ``split``
        (:func:`evaluate_split`: no review dropped to fill whole batches)."""
        check_choice("split", split, ("validation", "test"))
        return evaluate_split(model, self.splits[split], per_example=per_example)

    def split_info(self) -> dict:
        by_movie = self.options["val_split"] == "movie"
        how = ("whole movies held out of the train split, per-class quotas (no movie in both)"
               if by_movie else "stratified hold-out of the train split")
        info = {"sizes": dict(self.sizes), "validation": how,
                "val_size": self.options["val_size"], "val_seed": self.options["val_seed"],
                "val_split": self.options["val_split"]}
        if by_movie:
            info["validation_movies"] = int(len(np.unique(self.splits["validation"]["movies"])))
        return info

    def steps_per_epoch(self, batch_size: int) -> int:
        n = self.sizes["train"]
        if batch_size > n:
            raise UserError(f"batch={batch_size} is larger than the train split ({n} reviews)")
        if self.bucket_lengths is None:
            return n // batch_size
        per = self._members.shape[1]
        if batch_size > per:
            raise UserError(f"batch={batch_size} is larger than a length bucket ({per} reviews "
                            f"with buckets={self.buckets}); use fewer buckets or a smaller batch")
        return self.buckets * (per // batch_size)

    def _bucket_slot(self, step, batch_size: int):
        """(epoch, bucket k, k's batch number j) of ``step``; depends on ``step`` alone."""
        per_bucket = self._members.shape[1] // batch_size
        epoch, i = step // (self.buckets * per_bucket), step % (self.buckets * per_bucket)
        slots = jnp.repeat(jnp.arange(self.buckets, dtype=jnp.int32), per_bucket)
        order = jax.random.permutation(jax.random.fold_in(_bucket_order_key(), epoch), slots)
        k = order[i]
        j = jnp.sum((order == k) & (jnp.arange(order.shape[0]) < i))
        return epoch, k, j

    def train_bucket(self, step, batch_size: int) -> jax.Array:
        """The length bucket of the batch at ``step`` (an int32 scalar of ``step`` alone, so it
        stays unbatched under the seeds ``vmap``); index into :attr:`bucket_lengths`."""
        return self._bucket_slot(step, batch_size)[1]

    def train_indices(self, key: jax.Array, step, batch_size: int) -> jax.Array:
        """``(B,)`` train-split rows of the batch at ``step`` (jittable; ``step`` may be traced)."""
        if self.bucket_lengths is not None:
            self.steps_per_epoch(batch_size)  # checks the batch fits a bucket
            epoch, k, j = self._bucket_slot(step, batch_size)
            members = jnp.asarray(self._members)[k]
            perm = jax.random.permutation(
                jax.random.fold_in(jax.random.fold_in(key, epoch), k), members.shape[0])
            return members[jax.lax.dynamic_slice_in_dim(perm, j * batch_size, batch_size)]
        n, per = self.sizes["train"], self.steps_per_epoch(batch_size)
        epoch, i = step // per, step % per
        perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)
        return jax.lax.dynamic_slice_in_dim(perm, i * batch_size, batch_size)

    def train_batch(self, data, key, step, batch_size):
        return _batch(data["train"], self.train_indices(key, step, batch_size))

    def eval_set(self, data, key, size, split="validation"):
        check_choice("split", split, ("validation", "test"))
        n = self.sizes[split]
        rows = jax.random.permutation(key, n)[:min(size, n)] if size < n else jnp.arange(n)
        return _batch(data[split], rows)

    def loss(self, outputs, batch):
        return xent(outputs, batch.y)

    def metrics(self, outputs, batch):
        acc = jnp.mean(jnp.argmax(outputs, axis=-1) == batch.y)
        return {"loss": self.loss(outputs, batch), "accuracy": acc}


def validation_rows(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted rows of a stratified hold-out of ``size`` reviews from ``labels`` ``(N,)``.

    Class ``c`` (``n_c`` reviews) gives ``⌊size·n_c/N⌋`` rows, plus one for the classes with the
    largest remainders until the total is ``size`` (Hamilton's largest-remainder rule), each the
    first rows of a NumPy permutation of that class drawn from ``seed``. So the validation split
    keeps the train split's label proportions, and the same seed gives the same split.
    """
    labels = np.asarray(labels)
    classes, quota = class_quotas(labels, size)
    rng = np.random.default_rng(seed)
    rows = [rng.permutation(np.flatnonzero(labels == c))[:q]
            for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(rows))


def class_quotas(labels: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(classes (C,), quota (C,))``: the sorted classes of ``labels`` ``(N,)`` and how many of
    ``size`` held-out rows each gives, ``⌊size·n_c/N⌋`` plus one for the classes with the largest
    remainders until the total is ``size`` (Hamilton's rule; ties to the smaller class value)."""
    classes, counts = np.unique(labels, return_counts=True)
    exact = size * counts / len(labels)
    quota = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - quota), kind="stable")[:size - quota.sum()]:
        quota[i] += 1
    return classes, quota


def validation_rows_by_movie(labels: np.ndarray, movies: np.ndarray, size: int,
                             seed: int) -> np.ndarray:
    """Sorted rows of a hold-out of whole movies from ``labels`` and ``movies`` ``(N,)`` (each
    distinct value of ``movies`` is one movie), with :func:`validation_rows`' per-class quotas.

    The movies are visited in a NumPy permutation drawn from ``seed``; a movie is taken, all its
    reviews at once, when that keeps every class's count within its quota, and the pass stops
    once every quota is met. Guaranteed: no movie has rows both inside and outside the result;
    each class's count is at most its quota (so the total is at most ``size``); the result is
    maximal (every movie left out would push some class over its quota); the same inputs and
    seed give the same rows. Not guaranteed: meeting the quotas exactly. When no remaining movie
    fits, a class falls short of its quota, typically by a few reviews when most movies have few
    reviews (and a movie with more reviews of a class than its quota is never taken).
    """
    labels, movies = np.asarray(labels), np.asarray(movies)
    classes, quota = class_quotas(labels, size)
    ids, movie_of = np.unique(movies, return_inverse=True)
    per_movie = np.zeros((len(ids), len(classes)), np.int64)  # (M, C) reviews per movie, class
    np.add.at(per_movie, (movie_of.reshape(-1), np.searchsorted(classes, labels)), 1)
    taken, chosen = np.zeros(len(classes), np.int64), []
    for m in np.random.default_rng(seed).permutation(len(ids)):
        if (taken + per_movie[m] <= quota).all():
            taken += per_movie[m]
            chosen.append(m)
            if (taken == quota).all():
                break
    return np.flatnonzero(np.isin(movie_of.reshape(-1), chosen))


def _batch(split: dict, rows: jax.Array) -> Batch:
    tokens, lengths = split["tokens"][rows], split["lengths"][rows]
    mask = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
    return Batch(tokens, split["labels"][rows], mask)


def evaluate_split(model, arrays: dict[str, np.ndarray], *, chunk: int = 1000,
                   cut_steps: int = 8, per_example: bool = False) -> dict:
    """Exact loss and accuracy of ``model`` (a :class:`~lstm_jax.model.SequenceModel`) on a
    whole split (``arrays`` = ``{"tokens", "lengths", "labels"}``).

    Reviews are scored in chunks of ``chunk``, shortest first; each chunk is cut to the smallest
    multiple of ``⌈L/cut_steps⌉`` that holds its longest review (only padding is dropped, and at
    most ``cut_steps`` shapes are compiled). The last chunk is padded and its padding rows get
    weight 0, so every review counts once.

    Returns ``{"loss", "accuracy", "n", "correct"}``, and with ``per_example`` also
    ``"correct_per_example"`` ``(n,)`` bool and ``"nll_per_example"`` ``(n,)`` float32, in the
    split's row order (for paired comparisons of two models on the same reviews).
    """
    from flax import nnx

    graphdef, params = nnx.split(model)

    @jax.jit
    def chunk_sums(params, tokens, lengths, labels, weight):
        m = nnx.merge(graphdef, params)
        mask = jnp.arange(tokens.shape[1])[None, :] < lengths[:, None]
        logits = m(tokens, mask)
        nll = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        right = (jnp.argmax(logits, axis=-1) == labels).astype(jnp.float32)
        return jnp.sum(nll * weight), jnp.sum(right * weight), nll, right

    n, L = len(arrays["labels"]), arrays["tokens"].shape[1]
    quantum = -(-L // max(1, cut_steps))
    order = np.argsort(arrays["lengths"], kind="stable")
    loss_sum, correct = 0.0, 0.0
    row_nll, row_right = np.zeros(n, np.float32), np.zeros(n, bool)
    for start in range(0, n, chunk):
        rows = order[start:start + chunk]
        pad = chunk - len(rows)
        longest = int(arrays["lengths"][rows].max())
        cut = min(L, max(1, -(-longest // quantum)) * quantum)

        def take(a, rows=rows, pad=pad):
            return np.concatenate([a[rows], np.zeros((pad, *a.shape[1:]), a.dtype)])

        weight = np.concatenate([np.ones(len(rows), np.float32), np.zeros(pad, np.float32)])
        lengths = take(arrays["lengths"])
        lengths[len(rows):] = 1  # padding rows: one PAD step (weight 0)
        ls, c, nll, right = chunk_sums(params, take(arrays["tokens"][:, :cut]), lengths,
                                       take(arrays["labels"]), weight)
        loss_sum += float(ls)
        correct += float(c)
        row_nll[rows] = np.asarray(nll)[:len(rows)]
        row_right[rows] = np.asarray(right)[:len(rows)] > 0.5
    out = {"loss": loss_sum / n, "accuracy": correct / n, "n": n, "correct": int(round(correct))}
    if per_example:
        out |= {"correct_per_example": row_right, "nll_per_example": row_nll}
    return out


register_task("imdb")(Imdb)
