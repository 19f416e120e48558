"""Exploratory statistics of tokenised IMDB: class counts and review lengths (results files).

Lengths are counted two ways: ``tokens`` (the tokeniser's words *and* punctuation, what a model
reads) and ``words`` (only the ``\\w`` tokens, closer to a "word count").
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from lstm_jax.io import atomic_write_text

LABEL_NAMES = {0: "neg", 1: "pos", -1: "unlabelled"}
BAND = (100, 300)
LONG = 1000


def length_summary(x: np.ndarray) -> dict:
    """count, mean, median, p10/p25/p75/p90/p99, min, max; fractions < 100, in [100, 300],
    > 300 and > 1000."""
    x = np.asarray(x, np.float64)
    if len(x) == 0:
        return {"count": 0}
    q = np.percentile(x, [10, 25, 50, 75, 90, 99])
    return {
        "count": int(len(x)), "mean": round(float(x.mean()), 2),
        "median": round(float(q[2]), 2), "p10": round(float(q[0]), 2), "p25": round(float(q[1]), 2),
        "p75": round(float(q[3]), 2), "p90": round(float(q[4]), 2), "p99": round(float(q[5]), 2),
        "min": int(x.min()), "max": int(x.max()),
        f"frac_{BAND[0]}_{BAND[1]}": round(float(((x >= BAND[0]) & (x <= BAND[1])).mean()), 4),
        f"frac_lt_{BAND[0]}": round(float((x < BAND[0]).mean()), 4),
        f"frac_gt_{BAND[1]}": round(float((x > BAND[1]).mean()), 4),
        f"frac_gt_{LONG}": round(float((x > LONG).mean()), 5),
    }


def imdb_stats(corpora: dict) -> dict:
    """``{"counts": {split: {class: n}}, "tokens"|"words": {split: {class|"all": summary}}}``.

    ``corpora``: split → :class:`lstm_jax.data.prepare.Corpus`. A pooled ``"labelled"`` entry
    (train + test) is added when both are present.
    """
    groups = {s: (c.labels, c.lengths, c.words) for s, c in corpora.items()}
    if "train" in groups and "test" in groups:
        groups["labelled"] = tuple(np.concatenate([groups["train"][i], groups["test"][i]])
                                   for i in range(3))
    out = {"counts": {}, "tokens": {}, "words": {}}
    for s, (labels, tokens, words) in groups.items():
        classes = [k for k in (0, 1, -1) if (labels == k).any()]
        out["counts"][s] = {LABEL_NAMES[k]: int((labels == k).sum()) for k in classes}
        for name, x in (("tokens", tokens), ("words", words)):
            per = {LABEL_NAMES[k]: length_summary(x[labels == k]) for k in classes}
            if len(classes) > 1:
                per["all"] = length_summary(x)
            out[name][s] = per
    return out


def write_lengths_csv(path: str | os.PathLike, corpora: dict) -> Path:
    """One row per review: ``split,label,tokens,words``."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["split", "label", "tokens", "words"])
    for s, c in corpora.items():
        for lab, t, wd in zip(c.labels.tolist(), c.lengths.tolist(), c.words.tolist(), strict=True):
            w.writerow([s, lab, t, wd])
    return atomic_write_text(path, buf.getvalue())


def read_lengths_csv(path: str | os.PathLike) -> dict[str, dict[str, np.ndarray]]:
    """``split -> {"label", "tokens", "words"}`` int arrays from :func:`write_lengths_csv`."""
    cols: dict[str, dict[str, list]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            d = cols.setdefault(row["split"], {"label": [], "tokens": [], "words": []})
            for k in d:
                d[k].append(int(row[k]))
    return {s: {k: np.asarray(v, np.int64) for k, v in d.items()} for s, d in cols.items()}
