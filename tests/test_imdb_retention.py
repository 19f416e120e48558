"""experiments/imdb_retention.py on a tiny trained IMDB comparison (a small archive written here).

References, each computed another way than the script does:

* ∂L/∂e_t: the per-step gradients summed by token id against ``nnx.grad`` of the model's own
  loss (``model(tokens, mask)``, the fused recurrence) with respect to the embedding table;
* ∂L/∂C_t: central differences, in float64, of a NumPy loop over time of the LSTM equations
  (written here from the cell's parameters) restarted at step t + 1 from ``(h_t, C_t ± δ)``;
* occlusion: the arrays themselves (first K of the window OOV, the window = the review's last W
  tokens) and the model's own ``argmax`` accuracy and mean cross-entropy, computed here;
* the normalisation: a hand-made array of norms and its hand-computed log10 retention;
* the CLI: its files, ``--plot-only``, and bad flags exiting 2 with a message naming the flag.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import imdb_retention as ret  # noqa: E402
import retention_measure as measure  # noqa: E402

WINDOW, MAX_D, OCCLUDE, REVIEWS = 16, 6, 3, 5
ARGS = ["--window", str(WINDOW), "--max-distance", str(MAX_D), "--norm-range", "1,2",
        "--occlude", str(OCCLUDE), "--reviews", str(REVIEWS), "--chunk", "2",
        "--summary-distances", "2,6"]
ARMS = ("rnn/last", "lstm/mean")
# An experiment script's tests (like tests/test_experiments.py): those that train the tiny
# comparison (≈ 20 s) run in `make test-all`; the normalisation's test runs by default.
trains = pytest.mark.slow


@pytest.fixture(scope="module")
def compare(tmp_path_factory):
    """experiments/protocols/imdb.toml shrunk (two arms, two seeds, one rate, H=4, E=3, T=12)
    and trained on a small archive: 48 train and 12 validation reviews of 2–31 tokens (10 of
    them fill a 16-token window); test is not scored, no training-curve figures are drawn."""
    from lstm_jax.compare.run import run_comparison
    from lstm_jax.tasks import imdb as imdb_task
    from tests.imdb_protocol import shrunk_imdb_protocol
    from tests.test_imdb_task import V, write_archive

    tmp = tmp_path_factory.mktemp("retention")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LSTM_JAX_CACHE", str(tmp / "cache"))
        mp.setattr(imdb_task, "EXPECTED_SIZES", None)
        mp.setattr("lstm_jax.train._plot", lambda out: None)  # training-curve figures: 3 s
        mp.setenv("LSTM_JAX_IMDB", str(write_archive(tmp / "aclImdb_v1.tar.gz", n_train=60,
                                                     n_test=9)))
        path = shrunk_imdb_protocol(tmp / "imdb_small.toml", ARMS, lr=3e-2, vocab_size=V)
        res = run_comparison(path, tmp / "cmp", score_test=False, log=lambda m: None)
        assert res["status"] == "completed"
        yield tmp / "cmp"


@pytest.fixture(scope="module")
def measured(compare):
    """The script run once on both arms: ``(out dir, retention.json)``."""
    out = compare / "retention"
    assert ret.main(["--compare", str(compare), *ARGS]) == 0
    return out, json.loads((out / "retention.json").read_text())


@functools.cache
def _saved(run_dir: str, step: int):
    from lstm_jax.train import load_config, load_params

    cfg = load_config(run_dir)
    return cfg, *load_params(run_dir, cfg, step=step)


def seed_model(rec: dict, i: int):
    """Seed ``i``'s model of an arm, at the checkpoint the script used, and the run's config."""
    from lstm_jax.steps import seed_slice

    cfg, graphdef, params = _saved(rec["run_dir"], rec["step"])
    return nnx.merge(graphdef, seed_slice(params, i)), cfg


def reviews(cfg, rows, window: int = WINDOW):
    """Tokens, labels and the all-true mask of validation ``rows`` at ``window`` tokens."""
    from lstm_jax.tasks import make_task

    split = make_task("imdb", window, **cfg.task_options()).splits["validation"]
    tokens = jnp.asarray(split["tokens"][rows])
    return tokens, jnp.asarray(split["labels"][rows]), jnp.ones(tokens.shape, bool), split


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def own_loss(model, tokens, labels, mask):
    return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(model(tokens, mask), labels))


@trains
@pytest.mark.parametrize("arm", ARMS)
def test_step_gradients_summed_by_token_are_the_embedding_table_gradient(compare, measured, arm):
    """Σ_{b,t: token = v} ∂L/∂e_{b,t} = ∂L/∂E[v] (``nnx.grad`` through ``model(tokens, mask)``),
    and the json's per-seed curves are these gradients' norms, normalised."""
    _, res = measured
    rec = res["arms"][arm]
    rows = np.asarray(res["reviews"]["rows"])
    model, cfg = seed_model(rec, 0)
    tokens, labels, mask, split = reviews(cfg, rows)
    assert np.all(split["lengths"][rows] >= WINDOW) and len(set(rows.tolist())) == REVIEWS

    @nnx.jit
    def both(model):
        got = measure.loss_gradients(model, tokens, labels, mask)
        table = jnp.zeros_like(model.embed.embedding[...]).at[tokens].add(got["embedding"])
        want = nnx.grad(lambda m: own_loss(m, tokens, labels, mask))(model).embed.embedding[...]
        return got["embedding"], got["cell"], table, want

    for i in range(rec["seeds"]):
        step_grads, cell, table, want = both(seed_model(rec, i)[0])
        np.testing.assert_allclose(table, want, rtol=1e-4, atol=1e-6 * float(jnp.abs(want).max()))
        assert (cell is not None) == (rec["arch"] == "lstm") == rec["cell_gradient"]

        norms = np.linalg.norm(np.asarray(step_grads, np.float64), axis=-1)
        log, _ = measure.log10_retention(norms, MAX_D, (1, 2))
        curve = [np.nan if v is None else v
                 for v in rec["per_seed"][i]["embedding"]["log10_retention"]]
        np.testing.assert_allclose(curve, np.nanmean(log, axis=0), rtol=1e-4, atol=1e-4)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def lstm_loop_loss(p: dict, e: np.ndarray, y: int, start: int, h, c, hs_before) -> tuple:
    """Cross-entropy and logits of one review through a NumPy loop of the LSTM (gates i, f, C̃,
    o; mean readout; float64), from step ``start`` with carry ``(h, c)``; ``hs_before`` are the
    hidden states before it."""
    hs = list(hs_before)
    for t in range(start, e.shape[0]):
        zi, zf, zg, zo = np.split(e[t] @ p["w_ih"] + h @ p["w_hh"] + p["bias"], 4)
        c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
        h = sigmoid(zo) * np.tanh(c)
        hs.append(h)
    logits = np.mean(hs, axis=0) @ p["kernel"] + p["head_bias"]
    return np.logaddexp.reduce(logits) - logits[y], logits


@trains
def test_cell_gradient_equals_finite_differences_of_a_numpy_loop(measured):
    """∂L/∂C_t of review b (from the zero-perturbation trick on the 5-review sum) = central
    differences, in float64, of review b's loss through a NumPy loop of the LSTM restarted at
    t + 1 from (h_t, C_t + δ)."""
    _, res = measured
    rec = res["arms"]["lstm/mean"]
    rows = np.asarray(res["reviews"]["rows"])
    model, cfg = seed_model(rec, 1)
    tokens, labels, mask, _ = reviews(cfg, rows)
    got = np.asarray(nnx.jit(measure.loss_gradients)(model, tokens, labels, mask)["cell"])
    p = {k: np.asarray(v, np.float64) for k, v in model.recurrence.cells[0].params().items()}
    p.update(kernel=np.asarray(model.head.kernel[...], np.float64),
             head_bias=np.asarray(model.head.bias[...], np.float64))
    embedded = np.asarray(model.inputs(tokens), np.float64)
    reference_logits = np.asarray(model(tokens, mask))
    eps, H = 1e-6, cfg.hidden
    for b in (0, 3):
        e, y = embedded[b], int(labels[b])
        zero = np.zeros(H)
        np.testing.assert_allclose(lstm_loop_loss(p, e, y, 0, zero, zero, [])[1],
                                   reference_logits[b], rtol=1e-5, atol=1e-6)
        h, c, hs = zero, zero, []
        for t in range(WINDOW):
            zi, zf, zg, zo = np.split(e[t] @ p["w_ih"] + h @ p["w_hh"] + p["bias"], 4)
            c = sigmoid(zf) * c + sigmoid(zi) * np.tanh(zg)
            h = sigmoid(zo) * np.tanh(c)
            hs.append(h)
            if t not in (0, 7, WINDOW - 3, WINDOW - 1):
                continue
            want = np.array([
                (lstm_loop_loss(p, e, y, t + 1, h, c + eps * unit, hs)[0]
                 - lstm_loop_loss(p, e, y, t + 1, h, c - eps * unit, hs)[0]) / (2 * eps)
                for unit in np.eye(H)])
            np.testing.assert_allclose(got[b, t], want, rtol=1e-3, atol=1e-7)
        assert np.all(got[b, WINDOW - 1] == 0.0)  # the last C reaches nothing


@trains
def test_occlusion_is_the_first_tokens_of_the_window_and_the_models_own_accuracy(measured):
    """The window is the review's last W tokens; the occluded copy has its first K set to OOV and
    nothing else changed; the json's accuracies and losses are the models' own."""
    from lstm_jax.data.text import OOV, PAD

    out, res = measured
    rows = np.asarray(res["reviews"]["rows"])
    table = read_csv(out / "occlusion.csv")
    assert len(table) == sum(rec["seeds"] for rec in res["arms"].values())
    for arm, rec in res["arms"].items():
        for i in range(rec["seeds"]):
            model, cfg = seed_model(rec, i)
            tokens, labels, mask, _ = reviews(cfg, rows)
            wide, _, _, split = reviews(cfg, rows, window=40)  # longer than any review
            lengths = split["lengths"][rows]
            for b in range(REVIEWS):  # the window holds the review's last 16 tokens
                np.testing.assert_array_equal(tokens[b], wide[b, lengths[b] - WINDOW:lengths[b]])
                assert np.all(np.asarray(wide[b, lengths[b]:]) == PAD)
            occluded = ret.occlude(np.asarray(tokens), OCCLUDE)
            assert np.all(occluded[:, :OCCLUDE] == OOV)
            np.testing.assert_array_equal(occluded[:, OCCLUDE:], tokens[:, OCCLUDE:])
            assert not np.all(np.asarray(tokens[:, :OCCLUDE]) == OOV)  # the copy, not the input

            occ = rec["per_seed"][i]["occlusion"]
            for key, toks in (("", tokens), ("_occluded", jnp.asarray(occluded))):
                logits = model(toks, mask)
                acc = float(jnp.mean(jnp.argmax(logits, -1) == labels))
                nll = float(jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels)))
                assert occ[f"accuracy{key}"] == pytest.approx(acc, abs=1e-6)
                assert occ[f"loss{key}"] == pytest.approx(nll, rel=1e-4)
            assert occ["delta_accuracy"] == pytest.approx(occ["accuracy_occluded"] - occ["accuracy"])
            row = next(r for r in table if r["arm"] == arm and int(r["seed"]) == rec["per_seed"][i]["seed"])
            assert float(row["delta_accuracy"]) == pytest.approx(occ["delta_accuracy"], abs=1e-6)
            assert (int(row["reviews"]), int(row["occluded_tokens"])) == (REVIEWS, OCCLUDE)
        deltas = [s["occlusion"]["delta_accuracy"] for s in rec["per_seed"]]
        summary = rec["summary"]["occlusion"]["delta_accuracy"]
        assert summary["mean"] == pytest.approx(np.mean(deltas))
        assert summary["sd"] == pytest.approx(np.std(deltas, ddof=1), abs=1e-12)


def test_normalisation_on_hand_made_norms():
    """log10(norm_d / median over d ∈ [lo, hi]) per review, zeros → NaN and counted; the
    geometric mean over reviews skips them; the median of an even range is the midpoint."""
    by_distance = np.array([[8.0, 1.0, 2.0, 4.0, 0.5, 0.0, 7.0, 7.0],
                            [10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0, 10.0]])
    norms = by_distance[:, ::-1]  # step t = W − 1 − d
    log, zeros = measure.log10_retention(norms, max_distance=5, norm_range=(1, 3))
    want0 = [math.log10(4), math.log10(0.5), 0.0, math.log10(2), math.log10(0.25), np.nan]
    np.testing.assert_allclose(log[0], want0)
    np.testing.assert_allclose(log[1], np.zeros(6))
    np.testing.assert_array_equal(zeros, [0, 0, 0, 0, 0, 1])
    mean, sd = measure.nan_mean_sd(log)
    np.testing.assert_allclose(mean, [math.log10(2), math.log10(0.5) / 2, 0, math.log10(2) / 2,
                                      math.log10(0.25) / 2, 0.0])
    assert sd[5] != sd[5] and sd[1] == pytest.approx(abs(math.log10(0.5)) / math.sqrt(2))

    even, _ = measure.log10_retention(norms[:1], max_distance=2, norm_range=(1, 2))  # median 1.5
    np.testing.assert_allclose(even[0], np.log10(np.array([8.0, 1.0, 2.0]) / 1.5))
    assert np.all(np.isnan(measure.log10_retention(np.zeros((1, 8)), 3, (1, 2))[0]))

    tiny = jnp.full((1, 4), 1e-30, jnp.float32)  # squares would underflow in float32
    np.testing.assert_allclose(measure.scaled_norm(tiny), [2e-30], rtol=1e-6)
    assert float(measure.scaled_norm(jnp.zeros((1, 4)))[0]) == 0.0


@trains
def test_cli_files_plot_only_and_bad_flags(compare, measured, capsys, tmp_path):
    out, res = measured
    assert res["window"] == WINDOW and res["distance"] == list(range(MAX_D + 1))
    assert res["reviews"]["split"] == "validation" and len(res["reviews"]["rows"]) == REVIEWS
    assert list(res["arms"]) == list(ARMS) and res["skipped"] == []
    for arm, rec in res["arms"].items():
        assert (rec["readout"], rec["lr"], rec["seeds"]) == (arm.split("/")[1], 3e-2, 2)
        assert ("cell" in rec["summary"]) == (arm == "lstm/mean")
        for q in ("embedding", "cell"):
            if q not in rec["summary"]:
                continue
            per_seed = np.array([s[q]["log10_retention"] for s in rec["per_seed"]], float)
            for d in ("2", "6"):
                at = rec["summary"][q]["at"][d]
                np.testing.assert_allclose(at["per_seed"], per_seed[:, int(d)])
                assert at["mean"] == pytest.approx(per_seed[:, int(d)].mean())
                assert at["sd"] == pytest.approx(per_seed[:, int(d)].std(ddof=1))
    table = read_csv(out / "retention.csv")
    assert len(table) == len(ARMS) * (MAX_D + 1)
    rnn = [r for r in table if r["arm"] == "rnn/last"]
    assert all(r["cell_log10_mean"] == "" for r in rnn)
    lstm6 = next(r for r in table if r["arm"] == "lstm/mean" and r["distance"] == "6")
    assert float(lstm6["cell_log10_mean"]) == pytest.approx(
        res["arms"]["lstm/mean"]["summary"]["cell"]["at"]["6"]["mean"], rel=1e-5)
    png = out / "retention.png"
    assert png.stat().st_size > 10_000
    png.unlink()
    assert ret.main(["--out", str(out), "--plot-only"]) == 0 and png.is_file()

    capsys.readouterr()
    cmp = str(compare)
    for argv, flag in [(["--compare", cmp, "--window", "10", "--max-distance", "6"], "--window"),
                       (["--compare", str(tmp_path)], "--compare"),
                       (["--compare", cmp, *ARGS, "--arms", "nope"], "--arms"),
                       (["--compare", cmp, *ARGS, "--reviews", "999"], "--reviews"),
                       (["--compare", cmp, *ARGS, "--norm-range", "3"], "--norm-range"),
                       (["--out", str(tmp_path / "none"), "--plot-only"], "--plot-only")]:
        assert ret.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and flag in err, (argv, err)
