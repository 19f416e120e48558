"""The IMDB input pipeline: cold preparation speed and time to the first batch with a warm cache.

Steps, each timed once (they are seconds long, not microseconds), in a fresh cache directory so
nothing from earlier runs is reused:

* ``prepare_cold``: read the archive (one streaming ``tarfile`` pass) and tokenise the train and
  test splits (:func:`lstm_jax.data.prepare_corpus`), writing the cache; reported as reviews/s
  and tokens/s;
* ``arrays_warm``: the same call for fixed-length arrays (``load_imdb_arrays``) once the cache
  exists: load, restrict the vocabulary, pad/truncate;
* ``first_batch_warm``: ``arrays_warm`` plus moving the arrays to the device and gathering the
  first training batch (``Imdb.train_batch``, jitted; compile included): what a training run
  waits for before its first step;
* ``vectors_cold`` (``--vectors``): the PPMI-SVD word vectors of :mod:`lstm_jax.data.embeddings`
  from the train and unlabelled splits (tokenising the unlabelled split included).

Writes ``benchmarks/results/imdb_pipeline.json`` with the machine's description.

    .venv/bin/python -m benchmarks.imdb_pipeline [--data PATH] [--vectors]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

OUT = Path(__file__).parent / "results" / "imdb_pipeline.json"


def _clock(fn):
    t0 = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0


def run(data=None, *, vocab_size: int = 20_000, max_len: int = 400, batch: int = 128,
        vectors: bool = False, vector_dim: int = 128, expected_sizes="default") -> dict:
    """Time the pipeline on the archive ``data`` (None: ``$LSTM_JAX_IMDB`` or the default)."""
    import jax

    from lstm_jax.data import imdb as _imdb
    from lstm_jax.data import load_imdb_arrays, prepare_corpus
    from lstm_jax.tasks.imdb import _batch

    sizes = _imdb.SPLIT_SIZES if expected_sizes == "default" else expected_sizes
    path = _imdb.resolve_archive(data)
    res = {"archive": str(path), "archive_bytes": path.stat().st_size,
           "settings": {"vocab_size": vocab_size, "max_len": max_len, "batch": batch},
           "loadavg_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="lstm_jax_bench_cache_") as cache:
        (corpora, _, _), s = _clock(lambda: prepare_corpus(
            ("train", "test"), path=path, cache_dir=cache, progress=False,
            expected_sizes=sizes))
        reviews = sum(len(c) for c in corpora.values())
        tokens = int(sum(len(c.ids) for c in corpora.values()))
        res["prepare_cold"] = {"seconds": round(s, 3), "reviews": reviews, "tokens": tokens,
                               "reviews_per_s": round(reviews / s, 1),
                               "tokens_per_s": round(tokens / s)}

        def arrays():
            return load_imdb_arrays(path, vocab_size=vocab_size, max_len=max_len,
                                    cache_dir=cache, progress=False, expected_sizes=sizes)

        _, s = _clock(arrays)
        res["arrays_warm"] = {"seconds": round(s, 3)}

        def first_batch():
            a = arrays()
            train = jax.device_put({k: v for k, v in a["train"].items()})
            rows = jax.numpy.arange(min(batch, len(a["train"]["labels"])))
            return jax.block_until_ready(jax.jit(_batch)(train, rows))

        _, s = _clock(first_batch)
        res["first_batch_warm"] = {"seconds": round(s, 3)}
        if vectors:
            from lstm_jax.data.embeddings import imdb_vectors

            (_, info), s = _clock(lambda: imdb_vectors(
                path, vocab_size=vocab_size, dim=vector_dim, cache_dir=cache, progress=False,
                expected_sizes=sizes))
            res["vectors_cold"] = {"seconds": round(s, 3), "dim": vector_dim,
                                   "splits": list(info["splits"])}
    res["loadavg_end"] = os.getloadavg()
    return res


def main(argv=None) -> int:
    from lstm_jax.io import write_json
    from lstm_jax.machine import machine_info

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="aclImdb_v1.tar.gz (default: $LSTM_JAX_IMDB "
                                                 "or ../shared/data/aclImdb_v1.tar.gz)")
    ap.add_argument("--vocab-size", type=int, default=20_000)
    ap.add_argument("--max-len", type=int, default=400)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--vectors", action="store_true", help="also time the PPMI-SVD vectors")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    res = run(args.data, vocab_size=args.vocab_size, max_len=args.max_len, batch=args.batch,
              vectors=args.vectors)
    res["machine"] = machine_info()
    write_json(args.out, res)
    p = res["prepare_cold"]
    print(f"prepare (cold): {p['seconds']:.1f} s, {p['reviews_per_s']:,.0f} reviews/s, "
          f"{p['tokens_per_s']:,} tokens/s; arrays (warm) {res['arrays_warm']['seconds']:.2f} s; "
          f"first batch (warm) {res['first_batch_warm']['seconds']:.2f} s"
          + (f"; vectors (cold) {res['vectors_cold']['seconds']:.0f} s" if args.vectors else ""))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
