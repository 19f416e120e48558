"""Tokenised IMDB, cached: ragged corpora per split and fixed-length arrays for training.

:func:`prepare_corpus` tokenises each split once into *full-vocabulary* ids (train-ranked,
``OOV`` for words never seen in train) and caches them; :func:`load_imdb_arrays` then cuts any
``vocab_size`` / ``max_len`` / truncation from the cache in well under a second, so only the
tokeniser's settings, the data's content and the entries' format (:data:`CACHE_FORMAT`) are part
of the cache key.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from lstm_jax.data import cache as _cache
from lstm_jax.data import imdb as _imdb
from lstm_jax.data.text import (
    OOV,
    Tokenizer,
    TokenizerConfig,
    Vocabulary,
    pad_truncate,
    restrict,
)
from lstm_jax.errors import UserError, check_choice

#: Version of the cache entries' contents, part of their names: an entry of another format is
#: never read (it is rebuilt). 2: each split also stores ``movies``.
CACHE_FORMAT = 2
_SPLIT_FIELDS = ("ids", "offsets", "labels", "words", "keys", "movies")


@dataclasses.dataclass(frozen=True)
class Corpus:
    """One tokenised split: row ``i`` is ``ids[offsets[i]:offsets[i+1]]`` (full-vocabulary ids).

    ``labels (N,)`` int64 (0 neg, 1 pos, -1 unlabelled); ``words (N,)`` how many of a row's
    tokens are words (``\\w`` first character) rather than punctuation; ``keys`` the records'
    archive paths (or tfds indices), in the split's order; ``movies (N,)`` int64 each review's
    IMDB title number, -1 if unknown (see :mod:`lstm_jax.data.imdb`).
    """

    name: str
    ids: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    words: np.ndarray
    keys: list[str]
    movies: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def lengths(self) -> np.ndarray:
        """Tokens per review (words and punctuation), ``(N,)`` int64."""
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]


def source_fingerprint(source: str, path=None, data_dir=None) -> tuple[str | None, str]:
    """``(fingerprint or None, description)`` of the data a cache entry is built from.

    archive: ``sha256`` of its bytes. tfds: a hash of the built data set's file list (names,
    sizes, mtimes) in ``data_dir``; ``None`` (no caching) if there is no built directory.
    """
    if source == "archive":
        p = _imdb.resolve_archive(path)
        return "sha256-" + _cache.file_sha256(p), str(p)
    import hashlib

    import tensorflow_datasets as tfds

    try:
        d = Path(tfds.builder(_imdb.TFDS_NAME, data_dir=data_dir).data_dir)
    except Exception:
        return None, "tfds"
    if not d.is_dir():
        return None, f"tfds {d}"
    h = hashlib.sha256()
    for f in sorted(d.iterdir()):
        st = f.stat()
        h.update(f"{f.name}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return "tfds-" + h.hexdigest(), f"tfds {d}"


def _entry(root: Path, src: str, tok: str, name: str) -> Path:
    return root / "imdb" / f"{src[:23]}-tok{tok}-v{CACHE_FORMAT}-{name}.npz"


def _corpus_from(name: str, z: dict | None) -> Corpus | None:
    """The cached split, or ``None`` if the entry is missing or lacks a field (then rebuilt)."""
    if z is None or any(f not in z for f in _SPLIT_FIELDS):
        return None
    return Corpus(name, z["ids"], z["offsets"], z["labels"], z["words"],
                  _cache.split_strings(z["keys"]), z["movies"])


def prepare_corpus(splits: Iterable[str] = ("train", "test"), *, source: str = "archive",
                   path=None, data_dir=None, download: bool = False,
                   tokenizer: TokenizerConfig | None = None,
                   cache_dir=None, use_cache: bool = True, progress: bool = True,
                   expected_sizes: dict[str, int] | None = _imdb.SPLIT_SIZES,
                   ) -> tuple[dict[str, Corpus], Vocabulary, dict]:
    """Tokenised ``splits`` and the train vocabulary, from the cache or prepared (and cached).

    Returns ``(corpora, vocab, info)``; ``info`` says where the data and cache entries are and
    whether each split was a cache hit.
    """
    tokenizer = tokenizer or TokenizerConfig()
    splits = tuple(dict.fromkeys(splits))
    for s in splits:
        check_choice("split", s, _imdb.SPLITS)
    check_choice("source", source, ("archive", "tfds"))
    src, desc = source_fingerprint(source, path, data_dir)
    use_cache = use_cache and src is not None
    root = _cache.cache_root(cache_dir)
    tok = tokenizer.fingerprint()
    info = {"source": source, "data": desc, "fingerprint": src, "tokenizer": tok,
            "cache_dir": str(root / "imdb") if use_cache else None, "cache_hit": {}}

    corpora: dict[str, Corpus] = {}
    vocab = None
    if use_cache:
        zv = _cache.load_npz(_entry(root, src, tok, "vocab"))
        if zv is not None:
            vocab = Vocabulary(tuple(_cache.split_strings(zv["words"])), zv["counts"])
            for s in splits:
                c = _corpus_from(s, _cache.load_npz(_entry(root, src, tok, s)))
                if c is not None:
                    corpora[s] = c
    missing = [s for s in splits if s not in corpora]
    for s in splits:
        info["cache_hit"][s] = s not in missing
    if not missing:
        return corpora, vocab, info

    read = list(missing) if vocab is not None else list(dict.fromkeys(["train", *missing]))
    data = _imdb.read_imdb(read, source=source, path=path, data_dir=data_dir, download=download,
                           expected_sizes=expected_sizes, progress=progress)
    built = _tokenise(data, vocab, tokenizer, progress)
    vocab = built.pop("__vocab__")
    if use_cache:
        _cache.save_npz(_entry(root, src, tok, "vocab"), words=_cache.join_strings(vocab.words),
                        counts=vocab.counts)
        for s, c in built.items():
            _cache.save_npz(_entry(root, src, tok, s), ids=c.ids, offsets=c.offsets,
                            labels=c.labels, words=c.words, keys=_cache.join_strings(c.keys),
                            movies=c.movies)
    corpora.update({s: built[s] for s in missing})
    return {s: corpora[s] for s in splits}, vocab, info


def _tokenise(data: dict, vocab: Vocabulary | None, config: TokenizerConfig, progress: bool):
    """Tokens → provisional ids (first appearance), train counts → ranks, then remap."""
    tokenize = Tokenizer(config)
    index: dict[str, int] = {}
    rows: dict[str, list[np.ndarray]] = {}
    total = sum(len(d) for d in data.values())
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="tokenising", unit=" reviews", mininterval=0.5)
    get = index.get

    def provisional(tokens: list[str]) -> list[int]:
        out = []
        for t in tokens:
            i = get(t)
            if i is None:
                i = index[t] = len(index)
            out.append(i)
        return out

    for name, split in data.items():
        out = rows[name] = []
        for text in split.texts:
            out.append(np.asarray(provisional(tokenize(text)), np.int64))
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    strings = list(index)
    if vocab is None:
        flat = np.concatenate(rows["train"]) if rows["train"] else np.zeros(0, np.int64)
        counts = np.bincount(flat, minlength=len(strings))
        if any("\n" in t for t in strings):
            raise UserError(f"tokenizer pattern={config.pattern!r} produces tokens with newlines")
        vocab = Vocabulary.from_counts({t: int(c) for t, c in zip(strings, counts, strict=True) if c})
    rank = {w: i + 2 for i, w in enumerate(vocab.words)}
    table = np.asarray([rank.get(t, OOV) for t in strings], np.int32)
    is_word = np.asarray([t[:1].isalnum() or t[:1] == "_" for t in strings], np.int64)
    result = {"__vocab__": vocab}
    for name, split in data.items():
        lens = np.asarray([len(r) for r in rows[name]], np.int64)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        flat = np.concatenate(rows[name]) if rows[name] else np.zeros(0, np.int64)
        cum = np.concatenate([[0], np.cumsum(is_word[flat])])
        result[name] = Corpus(name, table[flat] if len(flat) else np.zeros(0, np.int32), offsets,
                              split.labels.astype(np.int64), (cum[offsets[1:]] - cum[offsets[:-1]]),
                              list(split.keys), split.movies.astype(np.int64))
    return result


@dataclasses.dataclass(frozen=True)
class ImdbArrays:
    """Fixed-length IMDB for training.

    ``arrays[split]`` = ``{"tokens": (N, L) int32, "lengths": (N,) int32, "labels": (N,) int32,
    "movies": (N,) int32}`` (tokens right-padded with PAD = 0; ``mask = arange(L) <
    lengths[:, None]``; ``movies`` each review's IMDB title number, -1 if unknown); ``itos`` the
    id → string table (``len(itos) == vocab_size``); ``info`` the settings and cache provenance.
    """

    arrays: dict[str, dict[str, np.ndarray]]
    itos: list[str]
    info: dict

    def __getitem__(self, split: str) -> dict[str, np.ndarray]:
        return self.arrays[split]


def length_mask(lengths: np.ndarray, max_len: int) -> np.ndarray:
    """``(N, max_len)`` bool: True on real tokens."""
    return np.arange(max_len)[None, :] < np.asarray(lengths)[:, None]


def load_imdb_arrays(path: str | os.PathLike | None = None, *, vocab_size: int = 20_000,
                     max_len: int = 400, truncate: str = "last",
                     splits: Iterable[str] = ("train", "test"), source: str = "archive",
                     data_dir=None, download: bool = False,
                     tokenizer: TokenizerConfig | None = None, cache_dir=None,
                     use_cache: bool = True, progress: bool = True,
                     expected_sizes: dict[str, int] | None = _imdb.SPLIT_SIZES) -> ImdbArrays:
    """IMDB as int32 arrays: vocabulary of ``vocab_size`` ids (PAD, OOV and the ``vocab_size-2``
    most frequent train tokens), each review cut to ``max_len`` tokens (``truncate="first"`` or
    ``"last"``). ``path``: the archive (else ``$LSTM_JAX_IMDB``, else the default path).
    """
    check_choice("truncate", truncate, ("first", "last"))
    tokenizer = tokenizer or TokenizerConfig()
    t0 = time.perf_counter()
    corpora, vocab, info = prepare_corpus(
        splits, source=source, path=path, data_dir=data_dir, download=download,
        tokenizer=tokenizer, cache_dir=cache_dir, use_cache=use_cache, progress=progress,
        expected_sizes=expected_sizes)
    size = vocab.check_size(vocab_size)
    arrays = {}
    for name, c in corpora.items():
        tokens, lengths = pad_truncate(restrict(c.ids, size), c.offsets, max_len, truncate)
        arrays[name] = {"tokens": tokens, "lengths": lengths,
                        "labels": c.labels.astype(np.int32), "movies": c.movies.astype(np.int32)}
    info = {**info, "vocab_size": size, "max_len": max_len, "truncate": truncate,
            "tokenizer_config": dataclasses.asdict(tokenizer),
            "seconds": round(time.perf_counter() - t0, 3)}
    return ImdbArrays(arrays, vocab.itos(size), info)
