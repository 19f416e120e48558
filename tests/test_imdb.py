"""IMDB reader, tokeniser, vocabulary, cache and EDA against small archives written here.

References: the texts and labels this file writes; hand-written token lists; ``collections.Counter``
for the vocabulary; plain Python loops for truncation; ``tfds.core.hashing.Hasher`` for tfds'
record order.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from lstm_jax.data import imdb, prepare
from lstm_jax.data.prepare import load_imdb_arrays, prepare_corpus
from lstm_jax.data.text import (
    OOV,
    PAD,
    TokenizerConfig,
    Vocabulary,
    bucket_batches,
    pad_truncate,
    tokenize,
)
from lstm_jax.errors import UserError

# (folder, class) -> {file name: text}; ratings in names as in the original layout.
REVIEWS = {
    ("train", "pos"): {
        "0_9.txt": "Great movie!<br /><br />Loved it, loved it.",
        "1_10.txt": "  Café crème – superb acting. Great!  \n",
        "2_8.txt": "the the plot works; great cast",
    },
    ("train", "neg"): {
        "0_2.txt": "Awful.<br/>Just awful... the plot fails",
        "1_1.txt": "I didn't like it. The plot? Bad.",
        "2_4.txt": "bad bad BAD acting",
    },
    ("train", "unsup"): {
        "0_0.txt": "Unlabelled review, no rating.",
        "1_0.txt": "Another one <br />with 日本語 text",
    },
    ("test", "pos"): {
        "0_7.txt": "Loved the cast; zyzzyva moments!",
        "1_9.txt": "great great film",
    },
    ("test", "neg"): {
        "0_3.txt": "Awful plot, bad film.",
        "1_2.txt": "didn't work",
    },
}
SMALL = dict(expected_sizes=None)


def _add(tar, name, data: bytes | None):
    info = tarfile.TarInfo(name)
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def write_archive(path: Path, reviews=REVIEWS, root="aclImdb", skip=(), urls=None) -> Path:
    """A tar.gz of the original layout: README, vocab, urls files, directory entries, reviews.

    ``urls``: ``{(folder, class): text of urls_<class>.txt, or None for no such file}``; a class
    not named gets one ``tt0000000`` line per review."""
    urls = urls or {}
    with tarfile.open(path, "w:gz") as tar:
        _add(tar, root, None)
        _add(tar, f"{root}/README", b"Large Movie Review Dataset v1.0\n")
        _add(tar, f"{root}/imdb.vocab", b"the\nand\n")
        for (folder, cls), files in reviews.items():
            if (folder, cls) in skip:
                continue
            _add(tar, f"{root}/{folder}/{cls}", None)
            text = urls.get((folder, cls), "http://www.imdb.com/title/tt0000000/usercomments\n"
                            * len(files))
            if text is not None:
                _add(tar, f"{root}/{folder}/urls_{cls}.txt", text.encode())
            for name, text in files.items():
                _add(tar, f"{root}/{folder}/{cls}/{name}", text.encode("utf-8"))
    return path


@pytest.fixture
def archive(tmp_path):
    return write_archive(tmp_path / "aclImdb_v1.tar.gz")


def _expected(split):
    """(key, text, label) in archive order, the way tfds' builder makes records."""
    out = []
    for (folder, cls), files in REVIEWS.items():
        s = imdb._split_of(folder, cls)
        if s != split:
            continue
        for name, text in files.items():
            out.append((f"aclImdb/{folder}/{cls}/{name}", text.encode().strip().decode(),
                        {"neg": 0, "pos": 1, "unsup": -1}[cls]))
    return out


# ---------------------------------------------------------------- reading

def test_records_labels_and_splits(archive):
    data = imdb.read_archive(archive, order="archive", **SMALL)
    assert set(data) == {"train", "test", "unsupervised"}
    for split, d in data.items():
        exp = _expected(split)
        assert d.keys == [k for k, _, _ in exp]
        assert d.texts == [t for _, t, _ in exp]
        assert d.labels.tolist() == [lab for _, _, lab in exp]
        assert d[0] == {"text": exp[0][1], "label": exp[0][2]}
    # unicode and surrounding whitespace: stripped like tfds' builder (bytes.strip()), then UTF-8
    assert data["train"].texts[1] == "Café crème – superb acting. Great!"
    assert "日本語" in data["unsupervised"].texts[1]


def test_tfds_order_matches_tfds_hasher(archive):
    from tensorflow_datasets.core import hashing

    data = imdb.read_archive(archive, order="tfds", **SMALL)
    for split, d in data.items():
        hasher = hashing.Hasher(split)
        ref = sorted((k for k, _, _ in _expected(split)), key=hasher.hash_key)
        assert d.keys == ref
        texts = {k: t for k, t, _ in _expected(split)}
        assert d.texts == [texts[k] for k in ref]


def test_split_subset_and_env_var(archive, monkeypatch):
    monkeypatch.setenv(imdb.ENV_VAR, str(archive))
    data = imdb.read_archive(None, ["test"], **SMALL)
    assert list(data) == ["test"] and len(data["test"]) == 4


def test_real_sizes_are_enforced(archive):
    with pytest.raises(UserError, match=r"split 'train' has 6 reviews.*expected 25,000"):
        imdb.read_archive(archive)


def test_missing_file_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.delenv(imdb.ENV_VAR, raising=False)
    with pytest.raises(UserError, match=r"does not exist.*ai\.stanford\.edu.*LSTM_JAX_IMDB"):
        imdb.read_archive(tmp_path / "nope.tar.gz", **SMALL)
    monkeypatch.setenv(imdb.ENV_VAR, str(tmp_path / "env.tar.gz"))
    with pytest.raises(UserError, match=r"env\.tar\.gz.*\$LSTM_JAX_IMDB"):
        imdb.resolve_archive()
    with pytest.raises(UserError, match="is a directory"):
        imdb.resolve_archive(tmp_path)


@pytest.mark.parametrize("content", [b"this is not an archive\n" * 10,
                                     gzip.compress(b"gzip but not tar" * 100, mtime=0)],
                         ids=["plain-text", "gzip-not-tar"])
def test_not_a_tar_gz(tmp_path, content):
    p = tmp_path / "bad.tar.gz"
    p.write_bytes(content)
    with pytest.raises(UserError, match="not a readable gzip-compressed tar archive"):
        imdb.read_archive(p, **SMALL)


def test_truncated_archive(archive):
    blob = archive.read_bytes()
    archive.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(UserError, match="not a readable gzip-compressed tar archive"):
        imdb.read_archive(archive, **SMALL)


def test_wrong_layout(tmp_path):
    p = write_archive(tmp_path / "x.tar.gz", root="reviews")
    with pytest.raises(UserError, match=r"no reviews for split 'train'.*aclImdb/train/"):
        imdb.read_archive(p, **SMALL)


def test_missing_split_dir(tmp_path):
    p = write_archive(tmp_path / "x.tar.gz", skip={("test", "pos"), ("test", "neg")})
    with pytest.raises(UserError, match=r"split 'test'"):
        imdb.read_archive(p, **SMALL)
    # the other splits are still readable on their own
    assert len(imdb.read_archive(p, ["train"], **SMALL)["train"]) == 6


def test_bad_utf8(tmp_path):
    reviews = {**REVIEWS, ("test", "neg"): {"0_1.txt": "ok"}}
    p = write_archive(tmp_path / "x.tar.gz", reviews)
    with tarfile.open(p, "r:gz") as t:
        members = [(m, t.extractfile(m).read() if m.isfile() else None) for m in t]
    with tarfile.open(p, "w:gz") as t:
        for m, data in members:
            if m.name.endswith("test/neg/0_1.txt"):
                data = b"\xff\xfe broken"
                m.size = len(data)
            t.addfile(m, io.BytesIO(data) if data is not None else None)
    with pytest.raises(UserError, match="test/neg/0_1.txt is not UTF-8"):
        imdb.read_archive(p, **SMALL)


def test_bad_split_name(archive):
    with pytest.raises(UserError, match="split='validation'"):
        imdb.read_archive(archive, ["validation"], **SMALL)


# ---------------------------------------------------------------- tokeniser and vocabulary

@pytest.mark.parametrize("text,tokens", [
    ("Great movie!<br /><br />Loved it.", ["great", "movie", "!", "loved", "it", "."]),
    ("I didn't like it... 10/10", ["i", "didn't", "like", "it", ".", ".", ".", "10", "/", "10"]),
    ("Café CRÈME<br/>x", ["café", "crème", "x"]),
    ("(yes) \"no\"", ["(", "yes", ")", '"', "no", '"']),
    ("", []),
])
def test_tokenize_known_strings(text, tokens):
    assert tokenize(text) == tokens


def test_tokenizer_settings():
    assert tokenize("A<br />B", TokenizerConfig(lowercase=False)) == ["A", "B"]
    assert tokenize("a<br />b", TokenizerConfig(strip_breaks=False)) == \
        ["a", "<", "br", "/", ">", "b"]
    with pytest.raises(UserError, match="not a valid regex"):
        TokenizerConfig(pattern="(")
    assert TokenizerConfig().fingerprint() != TokenizerConfig(lowercase=False).fingerprint()


def test_vocabulary_ranks_and_ties():
    counts = Counter("b a c a b d".split())  # a:2 b:2 c:1 d:1 -> ties by string
    v = Vocabulary.from_counts(dict(counts))
    assert v.words == ("a", "b", "c", "d")
    assert v.itos(4) == ["<pad>", "<oov>", "a", "b"]
    assert v.encode(["a", "b", "c", "zzz"], 4).tolist() == [2, 3, OOV, OOV]
    with pytest.raises(UserError, match=r"vocab_size=7 is larger.*4 distinct.*at most 6"):
        v.check_size(7)
    with pytest.raises(UserError, match="too small"):
        v.check_size(2)


def _py_truncate(rows, max_len, truncate):
    out = np.zeros((len(rows), max_len), np.int32)
    lengths = []
    for i, r in enumerate(rows):
        kept = r[:max_len] if truncate == "first" else r[max(0, len(r) - max_len):]
        for j, t in enumerate(kept):
            out[i, j] = t
        lengths.append(len(kept))
    return out, np.asarray(lengths)


@pytest.mark.parametrize("truncate", ["first", "last"])
@pytest.mark.parametrize("max_len", [1, 3, 7])
def test_pad_truncate_matches_loop(truncate, max_len):
    rng = np.random.default_rng(max_len)
    rows = [list(rng.integers(2, 50, size=n)) for n in (0, 1, 3, 5, 9)]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    tokens, lengths = pad_truncate(np.concatenate([np.asarray(r, np.int64) for r in rows]),
                                   offsets, max_len, truncate)
    ref_t, ref_l = _py_truncate(rows, max_len, truncate)
    assert tokens.dtype == np.int32 and lengths.dtype == np.int32
    np.testing.assert_array_equal(tokens, ref_t)
    np.testing.assert_array_equal(lengths, ref_l)
    with pytest.raises(UserError, match="truncate='middle'"):
        pad_truncate(np.zeros(0), np.zeros(1), 3, "middle")


def test_bucket_batches():
    lengths = np.random.default_rng(0).integers(1, 100, size=103)
    batches = bucket_batches(lengths, 10, seed=1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(103))
    assert sorted(len(b) for b in batches) == [3] + [10] * 10
    for b in batches:  # a contiguous run of the sorted lengths: no outsider strictly inside
        others = np.setdiff1d(np.arange(103), b)
        inside = (lengths[others] > lengths[b].min()) & (lengths[others] < lengths[b].max())
        assert not inside.any()
    # batch order is shuffled, not sorted by length
    mins = [int(lengths[b].min()) for b in batches]
    assert mins != sorted(mins)
    assert len(bucket_batches(lengths, 10, drop_last=True)) == 10


def test_length_groups():
    from lstm_jax.data import length_groups

    members, longest = length_groups(np.array([5, 1, 3, 3, 9, 2, 7]), 3)
    # sorted (stable): 1 (row 1), 2 (5), 3 (2), 3 (3), 5 (0), 7 (6); row 4 (9) is the one left out
    np.testing.assert_array_equal(members, [[1, 5], [2, 3], [0, 6]])
    assert members.dtype == np.int32 and longest == (2, 3, 7)
    with pytest.raises(UserError, match="buckets=8"):
        length_groups(np.ones(7), 8)


# ---------------------------------------------------------------- arrays and cache

def _ref_arrays(split, vocab_size, max_len, truncate):
    """Vocabulary and encoding from scratch: Counter over train tokens, Python loops."""
    train = [tokenize(t) for _, t, _ in _expected("train")]
    counts = Counter(t for toks in train for t in toks)
    words = sorted(counts, key=lambda w: (-counts[w], w))[: vocab_size - 2]
    stoi = {w: i + 2 for i, w in enumerate(words)}
    from tensorflow_datasets.core import hashing

    hasher = hashing.Hasher(split)
    exp = sorted(_expected(split), key=lambda e: hasher.hash_key(e[0]))
    rows = [[stoi.get(t, OOV) for t in tokenize(text)] for _, text, _ in exp]
    tokens, lengths = _py_truncate(rows, max_len, truncate)
    return ["<pad>", "<oov>", *words], tokens, lengths, [lab for *_, lab in exp]


@pytest.mark.parametrize("truncate", ["first", "last"])
def test_load_arrays_against_reference(archive, tmp_path, truncate):
    a = load_imdb_arrays(archive, vocab_size=12, max_len=5, truncate=truncate,
                         splits=("train", "test", "unsupervised"), cache_dir=tmp_path / "c",
                         progress=False, **SMALL)
    for split in ("train", "test", "unsupervised"):
        itos, tokens, lengths, labels = _ref_arrays(split, 12, 5, truncate)
        assert a.itos == itos
        np.testing.assert_array_equal(a[split]["tokens"], tokens)
        np.testing.assert_array_equal(a[split]["lengths"], lengths)
        np.testing.assert_array_equal(a[split]["labels"], labels)
        assert a[split]["tokens"].dtype == np.int32
    # padding sits exactly where the mask is False
    t, n = a["train"]["tokens"], a["train"]["lengths"]
    assert ((t == PAD) == (np.arange(5)[None] >= n[:, None])).all()


def test_vocab_is_from_train_only(archive, tmp_path):
    corpora, vocab, _ = prepare_corpus(("train", "test"), path=archive, cache_dir=tmp_path,
                                       progress=False, **SMALL)
    assert "zyzzyva" not in vocab.words and "film" not in vocab.words  # test-only words
    assert "awful" in vocab.words
    zy = corpora["test"].row(0)  # every test-only word is OOV
    assert OOV in corpora["test"].ids
    full = len(vocab) + 2
    with pytest.raises(UserError, match=f"at most {full}"):
        load_imdb_arrays(archive, vocab_size=full + 1, max_len=4, cache_dir=tmp_path,
                         progress=False, **SMALL)
    assert len(zy) > 0


def test_cache_hit_and_invalidation(archive, tmp_path):
    kw = dict(splits=("train", "test"), cache_dir=tmp_path / "c", progress=False, **SMALL)
    a1 = load_imdb_arrays(archive, vocab_size=10, max_len=6, **kw)
    assert a1.info["cache_hit"] == {"train": False, "test": False}
    entries = sorted(p.name for p in (tmp_path / "c" / "imdb").iterdir())
    assert len(entries) == 3  # vocab, train, test

    a2 = load_imdb_arrays(archive, vocab_size=10, max_len=6, **kw)
    assert a2.info["cache_hit"] == {"train": True, "test": True}
    for s in ("train", "test"):
        for k in ("tokens", "lengths", "labels"):
            np.testing.assert_array_equal(a1[s][k], a2[s][k])
    # vocabulary size and length are cut from the cache (no re-tokenising)
    a3 = load_imdb_arrays(archive, vocab_size=8, max_len=3, **kw)
    assert a3.info["cache_hit"] == {"train": True, "test": True}
    np.testing.assert_array_equal(a3["test"]["tokens"], _ref_arrays("test", 8, 3, "last")[1])

    # tokeniser settings change -> new entry
    a4 = load_imdb_arrays(archive, vocab_size=10, max_len=6,
                          tokenizer=TokenizerConfig(lowercase=False), **kw)
    assert a4.info["cache_hit"] == {"train": False, "test": False}
    assert "BAD" in a4.itos or "Great" in a4.itos
    # archive content change with the same size and mtime -> new entry (content hash)
    st = archive.stat()
    reviews = {**REVIEWS, ("test", "neg"): {"0_3.txt": "Awful plot, bad film.",
                                            "1_2.txt": "didn't wark"}}
    write_archive(archive, reviews)
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert archive.stat().st_mtime_ns == st.st_mtime_ns
    a5 = load_imdb_arrays(archive, vocab_size=10, max_len=6, **kw)
    assert a5.info["cache_hit"] == {"train": False, "test": False}
    assert a5.info["fingerprint"] != a1.info["fingerprint"]


def test_cache_entry_corruption_rebuilds(archive, tmp_path):
    kw = dict(splits=("test",), cache_dir=tmp_path, progress=False, **SMALL)
    a = load_imdb_arrays(archive, vocab_size=10, max_len=6, **kw)
    (entry,) = [p for p in (tmp_path / "imdb").iterdir() if p.name.endswith("-test.npz")]
    entry.write_bytes(b"garbage")
    b = load_imdb_arrays(archive, vocab_size=10, max_len=6, **kw)
    assert b.info["cache_hit"] == {"test": False}
    np.testing.assert_array_equal(a["test"]["tokens"], b["test"]["tokens"])


def test_cache_env_var(archive, tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "envcache"))
    load_imdb_arrays(archive, vocab_size=5, max_len=4, splits=("train",), progress=False, **SMALL)
    assert any((tmp_path / "envcache" / "imdb").iterdir())


def _url(title: str) -> str:
    return f"http://www.imdb.com/title/{title}/usercomments\n"


MOVIE_URLS = {
    ("train", "pos"): _url("tt0406816") * 2 + _url("tt0113749"),
    ("train", "neg"): _url("tt0113749") + "not a url\n",  # 2_4.txt has no line
    ("test", "pos"): None,  # no urls file
}


def test_movies_from_urls_files(tmp_path):
    path = write_archive(tmp_path / "aclImdb_v1.tar.gz", urls=MOVIE_URLS)
    data = imdb.read_archive(path, order="tfds", **SMALL)
    got = {k: m for split in data.values() for k, m in zip(split.keys, split.movies.tolist(),
                                                            strict=True)}
    assert got == {
        "aclImdb/train/pos/0_9.txt": 406816, "aclImdb/train/pos/1_10.txt": 406816,
        "aclImdb/train/pos/2_8.txt": 113749, "aclImdb/train/neg/0_2.txt": 113749,
        "aclImdb/train/neg/1_1.txt": -1, "aclImdb/train/neg/2_4.txt": -1,  # bad line, no line
        "aclImdb/train/unsup/0_0.txt": 0, "aclImdb/train/unsup/1_0.txt": 0,
        "aclImdb/test/pos/0_7.txt": -1, "aclImdb/test/pos/1_9.txt": -1,  # no urls file
        "aclImdb/test/neg/0_3.txt": 0, "aclImdb/test/neg/1_2.txt": 0}
    assert all(split.movies.dtype == np.int64 for split in data.values())
    # the urls files come after the reviews in the real archive: read after the pass
    urls = {}
    assert all(s == "test" for s, *_ in imdb.iter_archive(path, ["test"], urls=urls))
    assert set(urls) == {"aclImdb/test/neg"}


def test_cache_carries_movies_and_its_format_version(tmp_path):
    path = write_archive(tmp_path / "aclImdb_v1.tar.gz", urls=MOVIE_URLS)
    kw = dict(splits=("train", "test"), cache_dir=tmp_path / "c", progress=False, **SMALL)
    a = load_imdb_arrays(path, vocab_size=10, max_len=6, **kw)
    ref = imdb.read_archive(path, ["train", "test"], **SMALL)
    for s in ("train", "test"):
        assert a[s]["movies"].dtype == np.int32
        np.testing.assert_array_equal(a[s]["movies"], ref[s].movies)
    entries = sorted((tmp_path / "c" / "imdb").iterdir())
    assert all(f"-v{prepare.CACHE_FORMAT}-" in e.name for e in entries)
    assert load_imdb_arrays(path, vocab_size=10, max_len=6, **kw).info["cache_hit"] == {
        "train": True, "test": True}
    # an entry without the movies (the format before them) is rebuilt, never misread
    (train,) = [e for e in entries if e.name.endswith("-train.npz")]
    with np.load(train) as z:
        old = {k: z[k] for k in z.files if k != "movies"}
    np.savez(train, **old)
    again = load_imdb_arrays(path, vocab_size=10, max_len=6, **kw)
    assert again.info["cache_hit"] == {"train": False, "test": True}
    np.testing.assert_array_equal(again["train"]["movies"], a["train"]["movies"])


# ---------------------------------------------------------------- tfds path

def test_tfds_mock_data(tmp_path):
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        data = imdb.read_tfds(("train", "unsupervised"), data_dir=tmp_path, **SMALL)
        assert len(data["train"]) == 6
        rec = data["train"][0]
        assert set(rec) == {"text", "label"} and isinstance(rec["text"], str)
        assert set(data["train"].labels.tolist()) <= {0, 1}
        a = load_imdb_arrays(source="tfds", data_dir=tmp_path, vocab_size=5, max_len=4,
                             splits=("train", "test"), cache_dir=tmp_path / "c", progress=False,
                             **SMALL)
    assert a["test"]["tokens"].shape == (6, 4)
    assert a.info["cache_dir"] is None  # no built data set on disk: nothing to fingerprint
    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        with pytest.raises(UserError, match=r"split 'train' has 6 reviews"):
            imdb.read_tfds(("train",), data_dir=tmp_path)


def test_tfds_not_built_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match=r"no built imdb_reviews.*lstm_jax\[tf\]"):
        imdb.read_tfds(("test",), data_dir=tmp_path)
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match=r"needs TensorFlow.*pip install 'lstm_jax\[tf\]'"):
            imdb.read_tfds(("test",), data_dir=tmp_path, download=True)


# ---------------------------------------------------------------- EDA and CLI

def test_eda_cli_on_small_archive(archive, tmp_path, capsys):
    from lstm_jax.cli import main
    from lstm_jax.io import read_json

    out = tmp_path / "eda"
    rc = main(["eda", "imdb", "--data", str(archive), "--out", str(out), "--any-size",
               "--cache-dir", str(tmp_path / "c")])
    assert rc == 0
    stats = read_json(out / "stats.json")
    assert stats["counts"]["train"] == {"neg": 3, "pos": 3}
    assert stats["counts"]["unsupervised"] == {"unlabelled": 2}
    ref = [len(tokenize(t)) for _, t, lab in _expected("train") if lab == 1]
    s = stats["tokens"]["train"]["pos"]
    assert s["max"] == max(ref) and s["median"] == float(np.median(ref))
    assert s["mean"] == round(float(np.mean(ref)), 2)
    words = [sum(t[0].isalnum() for t in tokenize(x)) for _, x, lab in _expected("test")]
    assert stats["words"]["test"]["all"]["max"] == max(words)
    for name in ("sentiment.png", "length_hist.png", "length_box.png", "lengths.csv"):
        assert (out / name).stat().st_size > 0


def test_eda_cli_errors(tmp_path, capsys, monkeypatch):
    from lstm_jax.cli import main

    monkeypatch.delenv(imdb.ENV_VAR, raising=False)
    rc = main(["eda", "imdb", "--data", str(tmp_path / "missing.tar.gz"), "--out",
               str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "lstm-jax eda: error:" in err
    assert "ai.stanford.edu" in err and "LSTM_JAX_IMDB" in err
    small = write_archive(tmp_path / "small.tar.gz")
    rc = main(["eda", "imdb", "--data", str(small), "--out", str(tmp_path / "o"),
               "--cache-dir", str(tmp_path / "c")])
    assert rc == 2 and "expected 25,000" in capsys.readouterr().err


# ---------------------------------------------------------------- the real archive

REAL = Path(os.environ.get(imdb.ENV_VAR) or imdb.DEFAULT_ARCHIVE)


@pytest.mark.slow
@pytest.mark.skipif(not REAL.is_file(), reason=f"real archive not at {REAL}")
def test_real_archive(tmp_path):
    data = imdb.read_archive(REAL)
    assert {s: len(d) for s, d in data.items()} == {"train": 25_000, "test": 25_000,
                                                    "unsupervised": 50_000}
    for s in ("train", "test"):
        assert data[s].class_counts() == {"neg": 12_500, "pos": 12_500}
    assert (data["unsupervised"].labels == -1).all()
    # stripped as tfds does (bytes.strip(): ASCII whitespace only), never empty
    assert all(t and t.encode() == t.encode().strip() for t in data["test"].texts)
    a = load_imdb_arrays(REAL, vocab_size=20_000, max_len=200, cache_dir=tmp_path,
                         progress=False)
    assert a["train"]["tokens"].shape == (25_000, 200) and len(a.itos) == 20_000
    assert a.itos[:5] == ["<pad>", "<oov>", "the", ".", ","]


def test_later_split_uses_cached_vocabulary(archive, tmp_path):
    kw = dict(cache_dir=tmp_path, progress=False, **SMALL)
    load_imdb_arrays(archive, vocab_size=9, max_len=5, splits=("train",), **kw)
    a = load_imdb_arrays(archive, vocab_size=9, max_len=5, splits=("test", "unsupervised"), **kw)
    assert a.info["cache_hit"] == {"test": False, "unsupervised": False}
    for split in ("test", "unsupervised"):
        itos, tokens, lengths, labels = _ref_arrays(split, 9, 5, "last")
        assert a.itos == itos
        np.testing.assert_array_equal(a[split]["tokens"], tokens)
        np.testing.assert_array_equal(a[split]["labels"], labels)
