"""experiments/imdb_duplicates.py: duplicate reviews and shared movies, counted on a small archive
of the original layout (the real counts are in experiments/results/imdb/duplicates.json)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))


def test_imdb_duplicates_counts_on_a_small_archive(tmp_path, monkeypatch):
    """experiments/imdb_duplicates.py against hand counts: train reviews 0 and 2 of each class
    are one text (a duplicate group of 4 rows), test review pos/1 copies a training text, and
    the urls files put one movie in both splits."""
    import imdb_duplicates

    from tests.test_reliability import _tar_gz

    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "cache"))
    members = {}
    for s in ("train", "test"):
        for c in ("pos", "neg"):
            for i in range(4):
                members[f"aclImdb/{s}/{c}/{i}_7.txt"] = f"{s} {c} review {i}"
            titles = [100 + i + (0 if s == "train" else 50) for i in range(4)]
            if (s, c) == ("test", "pos"):
                titles[0] = 100  # a movie of the train split
            members[f"aclImdb/{s}/urls_{c}.txt"] = "".join(
                f"http://www.imdb.com/title/tt{t:07d}/usercomments\n" for t in titles)
    for c in ("pos", "neg"):
        members[f"aclImdb/train/{c}/0_7.txt"] = members[f"aclImdb/train/{c}/2_7.txt"] = "same"
    members["aclImdb/test/pos/1_7.txt"] = "train neg review 1"
    archive = _tar_gz(tmp_path / "a.tar.gz", members)
    res = imdb_duplicates.main(["--data", str(archive), "--val-size", "2",
                                "--out", str(tmp_path / "d.json")])
    assert (res["train_duplicate_groups"], res["train_rows_in_duplicate_groups"]) == (1, 4)
    assert res["test_with_twin_in_train"] == 1
    assert res["val_review_rows"] == 2
    assert 0 <= res["val_review_with_twin_in_training"] <= 2
    assert res["movies_in_train_and_test"] == {"100": {"train": 2, "test": 1}}
    assert json.loads((tmp_path / "d.json").read_text()) == res
