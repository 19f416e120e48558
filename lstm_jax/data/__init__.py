"""Data sets: IMDB reviews (archive or tfds), its tokeniser and vocabulary, and the cache.

See :mod:`lstm_jax.data.imdb` (reading), :mod:`lstm_jax.data.text` (tokeniser, vocabulary,
fixed-length encoding, bucketing), :mod:`lstm_jax.data.prepare` (cached arrays for training).
"""

from lstm_jax.data.imdb import (
    ENV_VAR,
    SPLIT_SIZES,
    SPLITS,
    ImdbSplit,
    read_archive,
    read_imdb,
    read_tfds,
    resolve_archive,
)
from lstm_jax.data.prepare import Corpus, ImdbArrays, length_mask, load_imdb_arrays, prepare_corpus
from lstm_jax.data.text import (
    OOV,
    PAD,
    Tokenizer,
    TokenizerConfig,
    Vocabulary,
    bucket_batches,
    length_groups,
    pad_truncate,
    tokenize,
)

__all__ = [
    "ENV_VAR", "OOV", "PAD", "SPLITS", "SPLIT_SIZES", "Corpus", "ImdbArrays", "ImdbSplit",
    "Tokenizer", "TokenizerConfig", "Vocabulary", "bucket_batches", "length_groups", "length_mask",
    "load_imdb_arrays", "pad_truncate", "prepare_corpus", "read_archive", "read_imdb",
    "read_tfds", "resolve_archive", "tokenize",
]
