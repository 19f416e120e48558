"""Tokeniser, train-only vocabulary, fixed-length encoding and length bucketing.

The tokeniser is one regular expression: lowercase, HTML line breaks (``<br />``) replaced by a
space, then words (``\\w+`` with inner apostrophes: ``don't`` is one token) and every other
non-space character as its own token (``"!!"`` → ``"!", "!"``).

Ids: ``PAD = 0``, ``OOV = 1``, then the training split's tokens by descending count, ties broken by
the token string (so the vocabulary is a pure function of the training texts). A vocabulary of
size ``N`` (the embedding table's row count) keeps ids ``< N``: the ``N - 2`` most frequent words;
everything else becomes ``OOV``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import numpy as np

from lstm_jax.errors import UserError, check_choice, check_positive

PAD, OOV = 0, 1
SPECIALS = ("<pad>", "<oov>")
TRUNCATE = ("first", "last")

WORD_PUNCT = r"\w+(?:'\w+)*|[^\w\s]"
BREAK = r"<br\s*/?>"


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """Settings of :func:`tokenize`; part of the cache key (see :meth:`fingerprint`)."""

    lowercase: bool = True
    strip_breaks: bool = True
    pattern: str = WORD_PUNCT

    def __post_init__(self):
        try:
            re.compile(self.pattern)
        except re.error as e:
            raise UserError(f"tokenizer pattern={self.pattern!r} is not a valid regex ({e})") from None

    def fingerprint(self) -> str:
        """A short stable hash of the settings (and the tokeniser's version)."""
        blob = json.dumps({"v": 1, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class Tokenizer:
    """``Tokenizer(config)(text) -> list[str]``; compiled once."""

    def __init__(self, config: TokenizerConfig = TokenizerConfig()):
        self.config = config
        self._find = re.compile(config.pattern).findall
        self._breaks = re.compile(BREAK, re.IGNORECASE).sub

    def __call__(self, text: str) -> list[str]:
        if self.config.strip_breaks:
            text = self._breaks(" ", text)
        if self.config.lowercase:
            text = text.lower()
        return self._find(text)


def tokenize(text: str, config: TokenizerConfig = TokenizerConfig()) -> list[str]:
    """Tokens of one text (see the module docstring for the rules)."""
    return Tokenizer(config)(text)


def rank_tokens(counts: dict[str, int]) -> list[str]:
    """Tokens with a positive count by descending count, ties by the token string."""
    return sorted((t for t, c in counts.items() if c > 0), key=lambda t: (-counts[t], t))


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """``words[k]`` has id ``k + 2``; ``counts[k]`` is its count in the training split."""

    words: tuple[str, ...]
    counts: np.ndarray

    @classmethod
    def from_counts(cls, counts: dict[str, int]) -> Vocabulary:
        words = rank_tokens(counts)
        return cls(tuple(words), np.asarray([counts[w] for w in words], np.int64))

    def __len__(self) -> int:
        """Distinct training tokens (without PAD and OOV)."""
        return len(self.words)

    def itos(self, size: int | None = None) -> list[str]:
        """Id → string for a vocabulary of ``size`` ids (PAD and OOV included)."""
        size = self.check_size(size)
        return [*SPECIALS, *self.words[: size - 2]]

    def stoi(self, size: int | None = None) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.itos(size))}

    def check_size(self, size: int | None) -> int:
        full = len(self.words) + 2
        if size is None:
            return full
        check_positive("vocab_size", size)
        if size < 3:
            raise UserError(f"vocab_size={size} is too small; at least 3 (PAD, OOV and one word)")
        if size > full:
            raise UserError(
                f"vocab_size={size} is larger than the training split's {len(self.words):,} "
                f"distinct tokens + PAD + OOV = {full:,}; choose at most {full:,}")
        return size

    def encode(self, tokens: list[str], size: int | None = None) -> np.ndarray:
        """Token strings → int32 ids, OOV for words outside the first ``size`` ids."""
        table = self.stoi(size)
        return np.asarray([table.get(t, OOV) for t in tokens], np.int32)


def restrict(ids: np.ndarray, vocab_size: int) -> np.ndarray:
    """Full-vocabulary ids → ids of a ``vocab_size`` vocabulary (rarer words become OOV)."""
    return np.where(ids >= vocab_size, OOV, ids).astype(np.int32)


def pad_truncate(ids: np.ndarray, offsets: np.ndarray, max_len: int, truncate: str = "last"):
    """Ragged ids (flat ``ids``, row ``i`` = ``ids[offsets[i]:offsets[i+1]]``) → fixed length.

    Returns ``tokens (N, max_len) int32`` (right-padded with PAD) and ``lengths (N,) int32`` =
    ``min(len_i, max_len)``. ``truncate="first"`` keeps each row's first ``max_len`` tokens,
    ``"last"`` its last ``max_len`` (the end of a review, where the verdict often is). The mask is
    ``np.arange(max_len) < lengths[:, None]``.
    """
    check_positive("max_len", max_len)
    check_choice("truncate", truncate, TRUNCATE)
    offsets = np.asarray(offsets, np.int64)
    full = np.diff(offsets)
    lengths = np.minimum(full, max_len)
    start = offsets[:-1] + (full - lengths if truncate == "last" else 0)
    pos = np.arange(max_len)
    mask = pos[None, :] < lengths[:, None]
    index = np.where(mask, start[:, None] + pos[None, :], 0)
    tokens = np.where(mask, np.asarray(ids)[index] if len(ids) else 0, PAD).astype(np.int32)
    return tokens, lengths.astype(np.int32)


def bucket_batches(lengths: np.ndarray, batch_size: int, *, seed: int = 0,
                   shuffle: bool = True, drop_last: bool = False) -> list[np.ndarray]:
    """Index batches of similar length, to cut padding (a shuffled "sort by length" bucketing).

    Rows are sorted by length (random tie-break from ``seed``), cut into consecutive batches of
    ``batch_size``, and the batch order is shuffled. Each batch can then be trimmed to
    ``lengths[batch].max()`` columns. Every index appears once (the last short batch is kept
    unless ``drop_last``). For host-side loops; a compiled training step wants few distinct
    lengths, see :func:`length_groups`.
    """
    check_positive("batch_size", batch_size)
    lengths = np.asarray(lengths)
    rng = np.random.default_rng(seed)
    tie = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
    order = np.lexsort((tie, lengths))
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    if shuffle:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


def length_groups(lengths: np.ndarray, buckets: int) -> tuple[np.ndarray, tuple[int, ...]]:
    """Rows sorted by length and cut into ``buckets`` equal groups, for a compiled step that cuts
    each batch to its group's length (``Imdb(buckets=K)``: K lengths, so K compiled branches).

    Returns ``(members, group_lengths)``: ``members`` ``(buckets, N // buckets)`` int32 row indices
    (shortest group first; the ``N mod buckets`` longest rows are left out), and each group's
    longest length.
    """
    check_positive("buckets", buckets)
    lengths = np.asarray(lengths)
    if buckets > len(lengths):
        raise UserError(f"buckets={buckets} is more than the {len(lengths)} rows to group")
    order = np.argsort(lengths, kind="stable")
    per = len(order) // buckets
    members = order[:per * buckets].reshape(buckets, per).astype(np.int32)
    return members, tuple(int(lengths[g].max()) for g in members)
