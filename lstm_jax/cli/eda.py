"""``lstm-jax eda imdb``: class counts, review-length statistics and the essay's three figures."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser(
        "eda", help="exploratory figures and statistics of a data set (IMDB)",
        description="Writes DIR/stats.json, DIR/lengths.csv and sentiment.png, length_hist.png, "
                    "length_box.png from the real data.")
    p.add_argument("dataset", choices=["imdb"], help="the data set")
    p.add_argument("--data", default=None, metavar="PATH",
                   help="aclImdb_v1.tar.gz (default: $LSTM_JAX_IMDB, else "
                        "../shared/data/aclImdb_v1.tar.gz relative to the project root)")
    p.add_argument("--source", choices=["archive", "tfds"], default="archive",
                   help="archive: read the archive offline; tfds: a built tfds imdb_reviews")
    p.add_argument("--data-dir", default=None,
                   help="tfds data_dir (with --source tfds; default: tfds' own, $TFDS_DATA_DIR "
                        "or ~/tensorflow_datasets)")
    p.add_argument("--download", action="store_true",
                   help="let tfds download and build imdb_reviews (needs TensorFlow)")
    p.add_argument("--cache-dir", default=None,
                   help="cache of tokenised data (default: $LSTM_JAX_CACHE, else ~/.cache/lstm_jax)")
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    p.add_argument("--no-unsup", action="store_true",
                   help="skip the 50,000 unlabelled reviews (faster first run)")
    p.add_argument("--any-size", action="store_true",
                   help="accept split sizes other than 25,000 / 25,000 / 50,000 (subsets)")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lstm_jax.data.eda import imdb_stats, write_lengths_csv
    from lstm_jax.data.imdb import SPLIT_SIZES
    from lstm_jax.data.prepare import prepare_corpus
    from lstm_jax.io import ensure_out_dir, write_json
    from lstm_jax.plots.imdb import plot_all

    out = ensure_out_dir(args.out)
    splits = ("train", "test") if args.no_unsup else ("train", "test", "unsupervised")
    corpora, vocab, info = prepare_corpus(
        splits, source=args.source, path=args.data, data_dir=args.data_dir,
        download=args.download, cache_dir=args.cache_dir, use_cache=not args.no_cache,
        expected_sizes=None if args.any_size else SPLIT_SIZES)
    stats = imdb_stats(corpora)
    stats["data"] = {k: info[k] for k in ("source", "data", "fingerprint", "tokenizer")}
    stats["vocabulary"] = {"distinct_train_tokens": len(vocab)}
    write_json(out / "stats.json", stats)
    write_lengths_csv(out / "lengths.csv", corpora)
    paths = plot_all(out)
    tok = stats["tokens"].get("labelled", stats["tokens"]["train"])["all"]
    print(f"counts: {stats['counts']}")
    print(f"tokens per labelled review: median {tok['median']:.0f}, p90 {tok['p90']:.0f}, "
          f"p99 {tok['p99']:.0f}, max {tok['max']}; in [100, 300]: {tok['frac_100_300']:.1%}; "
          f"> 1000: {tok['frac_gt_1000']:.2%}")
    for p in [out / "stats.json", out / "lengths.csv", *paths]:
        print(f"wrote {p}")
    return 0
