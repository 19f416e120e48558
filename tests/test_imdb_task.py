"""The IMDB task against a small archive of the original layout written here (never the real one).

References: plain Python sets for permutation coverage; per-review runs of the model on the
*unpadded* review (no mask) for the masked ``last``/``mean`` readouts and the exact split
evaluation; the run directory's files for the end-to-end training run.
"""

from __future__ import annotations

import io
import json
import math
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from lstm_jax.cells import CellConfig
from lstm_jax.errors import UserError
from lstm_jax.model import SequenceModel
from lstm_jax.tasks import imdb as imdb_task
from lstm_jax.tasks import make_task

V = 14  # PAD, OOV, the 11 words and "."
WORDS = ["great", "awful", "plot", "film", "loved", "bad", "cast", "boring", "superb", "the", "a"]


def _review(rng, n_words: int) -> str:
    return " ".join(rng.choice(WORDS, n_words)) + "."


def movie_of(folder: str, cls: str, i: int, movies: int) -> int:
    """The movie (IMDB title number) :func:`write_archive` gives review ``i`` of ``cls``: one of
    ``movies`` per folder (train 1000.., test 2000.., disjoint as in the real archive), shared by
    reviews of both classes."""
    return (1000 if folder == "train" else 2000) + (3 * i + (cls == "neg")) % movies


def write_archive(path, n_train=12, n_test=7, seed=0, n_unsup=0, movies=None):
    """``aclImdb/{train,test}/{pos,neg}/i_r.txt`` reviews of 1–30 words (+ a full stop), and
    ``n_unsup`` unlabelled ones in ``aclImdb/train/unsup/i_0.txt``. With ``movies`` (an int),
    also ``aclImdb/{train,test}/urls_{pos,neg}.txt`` after each folder's reviews, as in the real
    archive: line ``i`` is the IMDB URL of review ``i`` (:func:`movie_of`, so reviews share
    movies); without it there are no urls files, as in a user's own archive."""
    rng = np.random.default_rng(seed)

    def add(tar, name, data=None):
        info = tarfile.TarInfo(name)
        if data is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        add(tar, "aclImdb")
        add(tar, "aclImdb/README", b"Large Movie Review Dataset v1.0\n")
        for folder, n in (("train", n_train), ("test", n_test)):
            for cls, count in (("pos", (n + 1) // 2), ("neg", n // 2)):
                add(tar, f"aclImdb/{folder}/{cls}")
                for i in range(count):
                    text = _review(rng, int(rng.integers(1, 31))).encode()
                    add(tar, f"aclImdb/{folder}/{cls}/{i}_{8 if cls == 'pos' else 2}.txt", text)
            for cls, count in (("pos", (n + 1) // 2), ("neg", n // 2)) if movies else ():
                lines = "".join(f"http://www.imdb.com/title/tt{movie_of(folder, cls, i, movies):07d}"
                                f"/usercomments\n" for i in range(count))
                add(tar, f"aclImdb/{folder}/urls_{cls}.txt", lines.encode())
        if n_unsup:
            add(tar, "aclImdb/train/unsup")
            for i in range(n_unsup):
                add(tar, f"aclImdb/train/unsup/{i}_0.txt", _review(rng, 30).encode())
    return path


@pytest.fixture
def small(tmp_path, monkeypatch):
    """A small archive as the default data ($LSTM_JAX_IMDB), a private cache, no size check."""
    path = write_archive(tmp_path / "aclImdb_v1.tar.gz", n_train=15)  # 12 train + 3 validation
    monkeypatch.setenv("LSTM_JAX_IMDB", str(path))
    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(imdb_task, "EXPECTED_SIZES", None)
    return path


def test_spec_and_data(small):
    task = make_task("imdb", 16, vocab_size=8)
    s = task.spec
    assert (s.input_kind, s.in_features, s.out_features, s.head, s.max_len) == (
        "symbols", 8, 2, "last", 16)
    assert s.baseline == pytest.approx(math.log(2)) and s.metric_baselines == {"accuracy": 0.5}
    assert task.sizes == {"train": 12, "validation": 3, "test": 7}
    d = task.device_data()
    for split in ("train", "validation", "test"):
        tok, n = np.asarray(d[split]["tokens"]), np.asarray(d[split]["lengths"])
        assert tok.shape == (task.sizes[split], 16) and tok.max() < 8
        assert (n >= 2).all() and (n <= 16).all()  # ≥ one word and the full stop; cut to 16
        assert sorted(np.asarray(d[split]["labels"]).tolist()) == sorted(
            [1] * ((task.sizes[split] + 1) // 2) + [0] * (task.sizes[split] // 2))


def test_train_batches_deterministic_and_cover_each_epoch(small):
    task = make_task("imdb", 16, vocab_size=V)
    data, key, B = task.device_data(), jax.random.key(3), 4
    per = task.steps_per_epoch(B)
    assert per == 3
    jitted = jax.jit(task.train_batch, static_argnums=3)
    rows = []
    for step in range(2 * per):
        b = task.train_batch(data, key, step, B)
        again = jitted(data, key, jnp.int32(step), B)
        for u, v in zip(b, again, strict=True):
            np.testing.assert_array_equal(np.asarray(u), np.asarray(v))
        idx = np.asarray(task.train_indices(key, step, B))
        np.testing.assert_array_equal(np.asarray(b.x), np.asarray(data["train"]["tokens"])[idx])
        rows.append(idx)
    epoch0, epoch1 = np.concatenate(rows[:per]), np.concatenate(rows[per:])
    assert sorted(epoch0.tolist()) == list(range(12))  # N = 12 = 3·4: the whole split
    assert sorted(epoch1.tolist()) == list(range(12))
    assert epoch0.tolist() != epoch1.tolist()  # a fresh permutation per epoch
    # a batch size that does not divide N: each epoch sees N // B · B distinct rows
    rows5 = np.concatenate([np.asarray(task.train_indices(key, s, 5)) for s in range(2)])
    assert len(set(rows5.tolist())) == 10


def test_masks_match_lengths(small):
    task = make_task("imdb", 12, vocab_size=V)
    data = task.device_data()
    b = task.train_batch(data, jax.random.key(0), 1, 4)
    idx = np.asarray(task.train_indices(jax.random.key(0), 1, 4))
    lengths = np.asarray(data["train"]["lengths"])[idx]
    mask, x = np.asarray(b.mask), np.asarray(b.x)
    np.testing.assert_array_equal(mask.sum(axis=1), lengths)
    for row, n in zip(range(4), lengths, strict=True):
        assert mask[row, :n].all() and not mask[row, n:].any()
        assert (x[row, n:] == 0).all() and (x[row, :n] > 0).all()  # PAD = 0 only on padding
    ev = task.eval_set(data, jax.random.key(1), 100, split="test")
    assert ev.y.shape == (7,)  # all test reviews when size ≥ N
    np.testing.assert_array_equal(np.asarray(ev.mask).sum(1), np.asarray(data["test"]["lengths"]))
    sub, again = (task.eval_set(data, jax.random.key(1), 5, split="test") for _ in range(2))
    np.testing.assert_array_equal(np.asarray(sub.x), np.asarray(again.x))  # fixed set per key
    test_rows = {r.tobytes() for r in np.asarray(data["test"]["tokens"])}
    assert sub.y.shape == (5,) and all(r.tobytes() in test_rows for r in np.asarray(sub.x))


def test_truncation_keeps_last_or_first_tokens(small):
    long = make_task("imdb", 40, vocab_size=V)  # no review is longer than 31 tokens
    for policy in ("first", "last"):
        cut = make_task("imdb", 6, vocab_size=V, truncate=policy)
        full, short = long.arrays["train"], cut.arrays["train"]
        rows = zip(full["tokens"], full["lengths"], short["tokens"], short["lengths"], strict=True)
        for t, n, ts, ns in rows:
            assert ns == min(n, 6)
            want = t[:ns] if policy == "first" else t[n - ns:n]
            np.testing.assert_array_equal(ts[:ns], want)


def _models(task, arch="lstm"):
    cell = CellConfig(arch=arch, hidden=6)
    m_last = SequenceModel.for_task(task.spec, cell, readout="last", embed_dim=5,
                                    rngs=nnx.Rngs(params=jax.random.key(2)))
    m_mean = SequenceModel.for_task(task.spec, cell, readout="mean", embed_dim=5,
                                    rngs=nnx.Rngs(params=jax.random.key(2)))
    return m_last, m_mean


def test_max_readout_against_unpadded_reviews(small):
    task = make_task("imdb", 24, vocab_size=V)
    cell = CellConfig(arch="gru", hidden=6)
    m_max = SequenceModel.for_task(task.spec, cell, readout="max", embed_dim=5,
                                   rngs=nnx.Rngs(params=jax.random.key(2)))
    b = task.eval_set(task.device_data(), jax.random.key(0), 7, split="test")
    out = m_max(b.x, b.mask)
    lengths = np.asarray(b.mask).sum(1)
    assert len(set(lengths[:3].tolist())) > 1  # padding differs between the rows compared
    for i in range(3):
        n = int(lengths[i])
        _, res = m_max.run(b.x[i:i + 1, :n])  # the review alone: no padding, no mask
        h = np.asarray(res.outputs[0])  # (n, H)
        want = np.array([max(h[t, j] for t in range(n)) for j in range(h.shape[1])])
        np.testing.assert_allclose(out[i], m_max.head(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("arch", ["rnn", "lstm"])
def test_readouts_against_unpadded_reviews(small, arch):
    task = make_task("imdb", 24, vocab_size=V)
    m_last, m_mean = _models(task, arch)
    data = task.device_data()
    b = task.eval_set(data, jax.random.key(0), 7, split="test")
    out_last, out_mean = m_last(b.x, b.mask), m_mean(b.x, b.mask)
    for i in range(3):  # three reviews of different lengths (each length compiles a scan)
        n = int(np.asarray(b.mask[i]).sum())
        x = b.x[i:i + 1, :n]  # the review alone, no padding, no mask
        _, res = m_last.run(x)
        h = res.outputs[0]  # (n, H)
        np.testing.assert_allclose(out_last[i], m_last.head(h[-1]), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(out_mean[i], m_mean.head(h.mean(0)), rtol=1e-5, atol=1e-6)
    assert not np.allclose(out_last, out_mean, atol=1e-3)  # the readouts read different things


def test_evaluate_split_is_exact(small):
    task = make_task("imdb", 20, vocab_size=V)
    model, _ = _models(task)
    arrays = task.arrays["test"]
    got = imdb_task.evaluate_split(model, arrays, chunk=3,  # 7 = 3 + 3 + 1 (padded chunk)
                                   per_example=True)
    nll, right = [], []
    for t, n, y in zip(arrays["tokens"], arrays["lengths"], arrays["labels"], strict=True):
        logits = model(jnp.asarray(t[None, :n]))[0]
        nll.append(float(optax.softmax_cross_entropy_with_integer_labels(logits, jnp.int32(y))))
        right.append(int(np.argmax(logits)) == int(y))
    assert got["n"] == 7 and got["correct"] == sum(right)
    assert got["accuracy"] == pytest.approx(sum(right) / 7)
    assert got["loss"] == pytest.approx(np.mean(nll), rel=1e-5)
    # per review, in the split's row order (chunks go shortest first)
    np.testing.assert_array_equal(got["correct_per_example"], right)
    np.testing.assert_allclose(got["nll_per_example"], nll, rtol=1e-5)


def test_bad_options(small, tmp_path):
    with pytest.raises(UserError, match="truncate"):
        make_task("imdb", 10, vocab_size=V, truncate="middle")
    with pytest.raises(UserError, match="does not exist"):
        make_task("imdb", 10, vocab_size=V, data=tmp_path / "missing.tar.gz")
    with pytest.raises(UserError, match="batch"):
        make_task("imdb", 10, vocab_size=V).steps_per_epoch(13)


def test_train_cli_end_to_end(small, tmp_path, capsys):
    """``lstm-jax train --task imdb`` on the small archive: a completed run and its files."""
    from lstm_jax.cli import main
    from lstm_jax.config import TrainConfig
    from lstm_jax.metrics import read_jsonl

    out = tmp_path / "run"
    code = main(["train", "--task", "imdb", "--seq-len", "16", "--vocab-size", str(V),
                 "--truncate", "first", "--arch", "gru", "--readout", "mean", "--hidden", "8",
                 "--embed-dim", "8", "--steps", "4", "--batch", "4", "--eval-every", "2",
                 "--eval-size", "4", "--val-size", "4", "--lr", "0.01", "--out", str(out),
                 "--no-progress"])
    assert code == 0, capsys.readouterr().err
    for f in ("config.json", "metrics.jsonl", "summary.json", "curves.png"):
        assert (out / f).is_file(), f
    cfg = TrainConfig.from_json((out / "config.json").read_text())
    assert cfg.task_options() == {"data": None, "vocab_size": V, "truncate": "first", "buckets": 1,
                                  "val_size": 4, "val_seed": 0, "val_split": "review"}
    lines = read_jsonl(out / "metrics.jsonl")
    assert [r["step"] for r in lines] == [2, 4]
    assert all(0 <= a <= 1 for r in lines for a in r["eval/accuracy"])
    assert all(np.isfinite(r["train/loss"]).all() for r in lines)

    # The trained model's gradient flow, on test reviews built with the run's own data options.
    probe_out = tmp_path / "probe"
    code = main(["probe", "--checkpoint", str(out), "--arch", "gru", "--batch", "3",
                 "--method", "hutchinson", "--samples", "2", "--out", str(probe_out)])
    assert code == 0, capsys.readouterr().err
    probe = json.loads((probe_out / "probe.json").read_text())
    assert probe["k"][-1] == 15 and probe["k"][0] == 0


def test_data_options_only_for_imdb():
    from lstm_jax.config import TrainConfig

    with pytest.raises(UserError, match="imdb"):
        TrainConfig(task="adding", vocab_size=100)
    assert TrainConfig(task="adding").task_options() == {}
