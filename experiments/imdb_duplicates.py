"""Duplicate reviews in the IMDB archive, and what they mean for the validation and test splits.

Counts reviews whose text is identical (byte for byte, as read) within the train split, between
a validation split (review or movie hold-out, as :mod:`lstm_jax.tasks.imdb` draws it) and the
reviews left for training, and between test and train; and movies present in both train and test.
An identical twin in training can only inflate a held-out accuracy, by at most the share of
held-out reviews that have one.

    python experiments/imdb_duplicates.py --out experiments/results/imdb/duplicates.json
"""

from __future__ import annotations

import argparse
import collections

import numpy as np

from lstm_jax.data.imdb import read_archive
from lstm_jax.io import write_json
from lstm_jax.tasks.imdb import validation_rows, validation_rows_by_movie


def with_twin_in(rows: np.ndarray, texts: list[str], others: collections.Counter) -> int:
    """How many of ``rows`` have a text that ``others`` also holds."""
    return int(sum(texts[i] in others for i in rows))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", help="the archive (default: as every lstm-jax command finds it)")
    p.add_argument("--val-size", type=int, default=5000, help="validation reviews (default 5000)")
    p.add_argument("--val-seed", type=int, default=0, help="validation seed (default 0)")
    p.add_argument("--out", help="write the counts as JSON here")
    args = p.parse_args(argv)
    d = read_archive(args.data, splits=("train", "test"), expected_sizes=None)
    tr, te = d["train"], d["test"]
    groups = {t: n for t, n in collections.Counter(tr.texts).items() if n > 1}
    res = {"train_reviews": len(tr.texts), "test_reviews": len(te.texts),
           "train_duplicate_groups": len(groups), "train_rows_in_duplicate_groups":
           sum(groups.values()), "val_size": args.val_size, "val_seed": args.val_seed}
    for split, rows in [("review", validation_rows(tr.labels, args.val_size, args.val_seed)),
                        ("movie", validation_rows_by_movie(tr.labels, tr.movies, args.val_size,
                                                           args.val_seed))]:
        held = set(rows.tolist())
        rest = collections.Counter(t for i, t in enumerate(tr.texts) if i not in held)
        res[f"val_{split}_rows"] = len(rows)
        res[f"val_{split}_with_twin_in_training"] = with_twin_in(rows, tr.texts, rest)
    res["test_with_twin_in_train"] = with_twin_in(np.arange(len(te.texts)), te.texts,
                                                  collections.Counter(tr.texts))
    both = sorted(set(tr.movies.tolist()) & set(te.movies.tolist()) - {-1})
    res["movies_in_train_and_test"] = {str(m): {"train": int((tr.movies == m).sum()),
                                                "test": int((te.movies == m).sum())} for m in both}
    for k, v in res.items():
        print(f"{k}: {v}")
    if args.out:
        write_json(args.out, res)
    return res


if __name__ == "__main__":
    main()
