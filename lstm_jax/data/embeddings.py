"""Word vectors from co-occurrence counts: PPMI + truncated SVD (Levy, Goldberg & Dagan 2015).

A count-based stand-in for word2vec that needs no training loop and runs in a minute on a CPU:

1. ``C[w, c]`` = co-occurrences of word ``w`` and context ``c`` within ``window`` tokens inside
   one review, each pair weighted ``1/d`` at distance ``d`` (as GloVe, Pennington et al. 2014),
   counted in both directions (``C`` is symmetric).
2. Positive PMI with context-distribution smoothing ``alpha`` (Levy et al. 2015, §3.2):
   ``PPMI[w, c] = max(0, log(C[w, c]·Σ / (C[w, ·] · Σ·P_α(c))))`` with
   ``P_α(c) = C[·, c]^α / Σ_c' C[·, c']^α`` and ``Σ = Σ_{w,c} C[w, c]``.
3. The rank-``dim`` SVD ``PPMI ≈ U S Vᵀ``; vectors ``U S^power`` (``power = 0.5``, Levy et al.
   §3.3, "eigenvalue weighting"), each column's sign fixed so its largest entry is positive.

On IMDB the counts come from the *train* and *unsupervised* splits (75,000 reviews, as Maas et al.
2011 and Dai & Le 2015 use the unlabelled reviews); test reviews are never read. The table is
cached next to the tokenised corpus, keyed by the corpus and every setting here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

import numpy as np

from lstm_jax.data.imdb import SPLIT_SIZES
from lstm_jax.errors import UserError, check_positive


@dataclasses.dataclass(frozen=True)
class PpmiSvdConfig:
    """Settings of :func:`ppmi_svd`; all of them are part of the cache key."""

    window: int = 5
    alpha: float = 0.75
    power: float = 0.5
    splits: tuple[str, ...] = ("train", "unsupervised")

    def __post_init__(self):
        check_positive("window", self.window, maximum=100)
        if not 0 < self.alpha <= 1:
            raise UserError(f"alpha={self.alpha!r} must be in (0, 1]")
        if not 0 <= self.power <= 1:
            raise UserError(f"power={self.power!r} must be in [0, 1]")
        if "test" in self.splits:
            raise UserError("splits must not include 'test': word vectors would see the test set")

    def fingerprint(self) -> str:
        blob = json.dumps({"v": 1, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cooccurrence(ids: np.ndarray, offsets: np.ndarray, size: int, window: int):
    """``(size, size)`` symmetric ``scipy.sparse.csr_matrix`` of ``1/d``-weighted co-occurrences.

    ``ids`` ``(n,)`` token ids ``< size`` of all rows concatenated; row ``i`` is
    ``ids[offsets[i]:offsets[i+1]]``. Pairs never cross a row boundary.
    """
    from scipy import sparse

    ids = np.asarray(ids, np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        raise UserError(f"token ids must be in [0, {size}); got [{ids.min()}, {ids.max()}]")
    row_of = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    counts = sparse.csr_matrix((size, size), dtype=np.float64)
    for d in range(1, window + 1):
        same = row_of[:-d] == row_of[d:]
        a, b = ids[:-d][same], ids[d:][same]
        one_way = sparse.coo_matrix((np.full(a.shape, 1.0 / d), (a, b)), shape=(size, size)).tocsr()
        counts = counts + one_way + one_way.T
    return counts


def ppmi(counts, alpha: float = 0.75):
    """Positive PMI of a co-occurrence matrix (csr), context counts smoothed by ``alpha``."""
    from scipy import sparse

    coo = counts.tocoo()
    total = coo.data.sum()
    if total <= 0:
        raise UserError("no co-occurrences: the corpus has no review of two or more tokens")
    words = np.asarray(counts.sum(axis=1)).ravel()
    contexts = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    p_context = contexts / contexts.sum()
    pmi = (np.log(coo.data) - np.log(words[coo.row]) - np.log(p_context[coo.col]))
    keep = pmi > 0
    return sparse.csr_matrix((pmi[keep], (coo.row[keep], coo.col[keep])), shape=counts.shape)


def svd_vectors(matrix, dim: int, power: float = 0.5) -> np.ndarray:
    """``(rows, dim)`` float32 ``U S^power`` of the rank-``dim`` SVD, columns by descending
    singular value, each column's sign fixed (largest-magnitude entry positive)."""
    from scipy.sparse.linalg import svds

    if not 0 < dim < min(matrix.shape):
        raise UserError(f"embed_dim={dim} must be smaller than the vocabulary ({min(matrix.shape)})")
    u, s, _ = svds(matrix, k=dim, random_state=0)
    order = np.argsort(-s)
    u, s = u[:, order], s[order]
    flip = np.sign(u[np.argmax(np.abs(u), axis=0), np.arange(dim)])
    return (u * flip * s ** power).astype(np.float32)


def ppmi_svd(ids: np.ndarray, offsets: np.ndarray, size: int, dim: int,
             config: PpmiSvdConfig = PpmiSvdConfig()) -> np.ndarray:
    """``(size, dim)`` float32 word vectors of a corpus (see the module docstring)."""
    counts = cooccurrence(ids, offsets, size, config.window)
    return svd_vectors(ppmi(counts, config.alpha), dim, config.power)


def imdb_vectors(path=None, *, vocab_size: int, dim: int,
                 config: PpmiSvdConfig = PpmiSvdConfig(), cache_dir=None, progress: bool = True,
                 expected_sizes: dict[str, int] | None = SPLIT_SIZES) -> tuple[np.ndarray, dict]:
    """PPMI-SVD vectors for the IMDB vocabulary of ``vocab_size`` ids (row ``k`` = id ``k``; PAD's
    row is zero), from ``config.splits`` of the archive; cached. Returns ``(table, info)``."""
    from lstm_jax.data import cache as _cache
    from lstm_jax.data.prepare import prepare_corpus, source_fingerprint
    from lstm_jax.data.text import PAD, TokenizerConfig, restrict

    src, _ = source_fingerprint("archive", path)
    key = f"{src[:23]}-tok{TokenizerConfig().fingerprint()}-ppmisvd{config.fingerprint()}" \
          f"-V{vocab_size}-d{dim}.npz"
    entry = _cache.cache_root(cache_dir) / "imdb" / key
    info = {"method": "ppmi-svd", **dataclasses.asdict(config), "vocab_size": vocab_size,
            "dim": dim, "cache": str(entry)}
    z = _cache.load_npz(entry)
    if z is not None:
        return z["table"], {**info, "cache_hit": True, "seconds": float(z["seconds"])}
    t0 = time.perf_counter()
    corpora, vocab, _ = prepare_corpus(config.splits, path=path, cache_dir=cache_dir,
                                       progress=progress, expected_sizes=expected_sizes)
    size = vocab.check_size(vocab_size)
    parts = [restrict(c.ids, size) for c in corpora.values()]
    lengths = np.concatenate([c.lengths for c in corpora.values()])
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    table = ppmi_svd(np.concatenate(parts), offsets, size, dim, config)
    table[PAD] = 0.0
    seconds = round(time.perf_counter() - t0, 1)
    _cache.save_npz(entry, table=table, seconds=np.asarray(seconds))
    return table, {**info, "cache_hit": False, "seconds": seconds}
