"""The comparison's statistics against hand-computed values and known answers; success and
steps-to-success from synthetic validation curves, within the declared budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lstm_jax.compare.outcome import point_outcome, selection_key, validation_curve
from lstm_jax.compare.protocol import Criterion
from lstm_jax.compare.stats import paired_bootstrap, wilson, z_value
from lstm_jax.errors import UserError

Z = 1.959964  # the 97.5 % standard-normal quantile
Z2 = Z * Z  # 3.841459


def test_z_value():
    assert z_value(0.95) == pytest.approx(Z, abs=1e-6)


def test_wilson_against_hand_computation():
    # 0/5: p = 0, centre = (z²/2n)/(1 + z²/n) = 0.384146/1.768292, half equal: [0, z²/(n + z²)]
    lo, hi = wilson(0, 5)
    assert lo == 0.0 and hi == pytest.approx(Z2 / (5 + Z2), abs=1e-6)
    assert hi == pytest.approx(0.434482, abs=1e-5)
    # 5/5 mirrors 0/5
    lo, hi = wilson(5, 5)
    assert hi == 1.0 and lo == pytest.approx(1 - 0.434482, abs=1e-5)
    # 3/5: p = 0.6, denom = 1 + z²/5 = 1.768292, centre = (0.6 + 0.384146)/1.768292 = 0.556552,
    # half = (z/1.768292)·sqrt(0.24/5 + z²/100) = 1.108394·sqrt(0.086415) = 0.325826
    lo, hi = wilson(3, 5)
    centre = (0.6 + Z2 / 10) / (1 + Z2 / 5)
    half = Z / (1 + Z2 / 5) * math.sqrt(0.6 * 0.4 / 5 + Z2 / 100)
    assert (lo, hi) == pytest.approx((centre - half, centre + half), abs=1e-6)
    assert (lo, hi) == pytest.approx((0.230724, 0.882377), abs=1e-5)
    with pytest.raises(UserError, match="k=6"):
        wilson(6, 5)


def test_bootstrap_known_answers():
    const = paired_bootstrap([0.25] * 5)
    assert const["mean"] == pytest.approx(0.25)
    assert const["low"] == pytest.approx(0.25) and const["high"] == pytest.approx(0.25)
    # two differences {0, 1}: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so
    # the 2.5 % and 97.5 % quantiles are 0 and 1
    two = paired_bootstrap([0.0, 1.0])
    assert (two["mean"], two["low"], two["high"]) == (0.5, 0.0, 1.0)
    one = paired_bootstrap([0.3])
    assert one["low"] is None and one["high"] is None
    assert paired_bootstrap([1.0, math.nan])["low"] is None


def test_bootstrap_matches_scipy_percentile():
    from scipy import stats

    d = np.random.default_rng(3).normal(0.4, 1.0, 12)
    ours = paired_bootstrap(d, n_resamples=20_000, seed=1)
    ref = stats.bootstrap((d,), np.mean, method="percentile", n_resamples=20_000,
                          random_state=np.random.default_rng(2)).confidence_interval
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert ours["low"] == pytest.approx(ref.low, abs=0.05 * se)
    assert ours["high"] == pytest.approx(ref.high, abs=0.05 * se)


def test_bootstrap_over_reviews_counts_path():
    """25,000 per-review differences with 7 distinct values (3 seeds' correctness averaged) take
    the counts path; its interval matches resampling the reviews themselves, and the normal
    approximation mean ± z·sd/√n."""
    rng = np.random.default_rng(0)
    d = rng.choice(np.arange(-3, 4) / 3, size=25_000, p=[.02, .05, .1, .6, .12, .07, .04])
    ours = paired_bootstrap(d, n_resamples=4000, seed=1)
    idx = rng.integers(0, d.size, size=(4000, d.size))
    ref_lo, ref_hi = np.quantile(d[idx].mean(axis=1), [0.025, 0.975])
    se = d.std(ddof=1) / math.sqrt(d.size)
    assert ours["mean"] == pytest.approx(d.mean())
    assert ours["low"] == pytest.approx(ref_lo, abs=0.1 * se)
    assert ours["high"] == pytest.approx(ref_hi, abs=0.1 * se)
    assert ours["low"] == pytest.approx(d.mean() - 1.96 * se, abs=0.1 * se)


def _records():
    """Seed 0 succeeds at 20 and stays; seed 1 only at 40 (past the budget of 30); seed 2 at 10,
    then loses it; a NaN never counts."""
    lines = [(10, [0.5, 0.5, 0.05]), (20, [0.05, 0.3, 0.2]), (30, [0.01, math.nan, 0.2]),
             (40, [0.01, 0.01, 0.01])]
    return [{"step": s, "eval/loss": v, "eval/accuracy": [0.0] * 3} for s, v in lines]


def test_steps_to_success_within_budget():
    o = point_outcome(_records(), Criterion("loss", "below", 0.1), budget=30, seeds=3)
    assert o["steps_to_success"] == [20, None, 10]
    assert o["success"] == [True, False, True]
    assert o["last_step"] == 30 and o["evaluations"] == 3
    assert o["past_budget"] is True  # a line at step 40 exists, and is not credited
    assert o["final"][0] == 0.01 and math.isnan(o["final"][1])
    final = point_outcome(_records(), Criterion("loss", "below", 0.1, "final"), 30, 3)
    assert final["success"] == [True, False, False]
    # seed 2 met it at step 10 and lost it: a failure, so no success time (median over successes)
    assert final["steps_to_success"] == [20, None, None]
    within = point_outcome(_records()[:3], Criterion("loss", "below", 0.1), 30, 3)
    assert within["past_budget"] is False
    full = point_outcome(_records(), Criterion("loss", "below", 0.1), budget=40, seeds=3)
    assert full["steps_to_success"] == [20, 40, 10]


def test_validation_curve_is_the_credited_lines_in_step_order():
    recs = _records()
    shuffled = [recs[2], {"step": 25, "train/loss": [1.0] * 3}, recs[0], recs[3], recs[1]]
    steps, values = validation_curve(shuffled, "loss", budget=30)
    assert steps.tolist() == [10, 20, 30]  # sorted, without the train-only line or step 40
    np.testing.assert_array_equal(values, np.array([r["eval/loss"] for r in recs[:3]]))
    assert values.shape == (3, 3)
    # the same lines point_outcome credits: its final values are the curve's last row
    o = point_outcome(shuffled, Criterion("loss", "below", 0.1), budget=30, seeds=3)
    np.testing.assert_array_equal(values[-1], o["final"])
    one = validation_curve([{"step": 5, "eval/accuracy": 0.5}], "accuracy", budget=10)
    assert one[0].tolist() == [5] and one[1].shape == (1, 1)  # a single-seed scalar
    empty = validation_curve(recs, "loss", budget=5)
    assert empty[0].shape == (0,) and empty[1].shape[0] == 0


def test_a_diverged_run_has_no_final_value():
    """A run that stopped on a non-finite value: its last finite evaluation is not the end of the
    budget, so under ``when="final"`` no seed succeeds, and it loses a learning-rate choice to a
    finished run with as many successes; ``when="any"`` still credits hits within budget."""
    final = Criterion("loss", "below", 0.1, "final")
    div = point_outcome(_records()[:2], final, 30, 3, diverged=True)
    assert div["success"] == [False] * 3 and div["steps_to_success"] == [None] * 3
    assert all(math.isnan(v) for v in div["final"])
    assert point_outcome(_records()[:2], final, 30, 3)["success"] == [True, False, False]
    anytime = Criterion("loss", "below", 0.1)
    div_any = point_outcome(_records(), anytime, 30, 3, diverged=True)
    assert div_any["success"] == [True, False, True]
    ok = point_outcome(_records(), anytime, 30, 3)
    ok["final"] = [0.01, 0.2, 0.2]  # as if seed 1 had a finite value
    assert selection_key(div_any, anytime) < selection_key(ok, anytime)


def test_at_least_and_selection():
    recs = [{"step": 5, "eval/accuracy": [0.99, 0.98]}, {"step": 10, "eval/accuracy": [1.0, 0.5]}]
    crit = Criterion("accuracy", "at_least", 0.99)
    o = point_outcome(recs, crit, 10, 2)
    assert o["steps_to_success"] == [5, None] and o["success"] == [True, False]
    assert selection_key(o, crit) == (1.0, pytest.approx(0.75))
    loss = Criterion("loss", "below", 0.1)
    good = {"success": [True, True], "final": [0.05, 0.07]}
    bad = {"success": [True, True], "final": [0.02, math.nan]}  # a non-finite seed ranks last
    assert selection_key(good, loss) > selection_key(bad, loss)
    assert selection_key({"success": [True, False], "final": [0.01, 0.2]}, loss) < \
        selection_key(good, loss)


def test_by_length_table_puts_each_point_in_its_arm_and_length():
    """results.md's arms × lengths table, against hand-written lines: a done point shows its
    successes/seeds and test mean, an unfinished one ``pending``, a point of another task none."""
    from lstm_jax.compare.report import by_length

    def row(arm, T, status="done", succ=5, test=0.00031, task="adding"):
        return {"task": task, "arm": arm, "T": T, "status": status, "successes": succ,
                "seeds": 5, "test_mean": test}

    rows = [row("rnn", 50, succ=5, test=0.0041), row("lstm", 50),
            row("rnn", 100, succ=0, test=0.12641), row("lstm", 100, status="pending"),
            row("gru", 100, task="copy")]
    assert by_length("adding", rows) == [
        "| arm | T=50 | T=100 |",
        "|---|---|---|",
        "| rnn | 5/5 · 0.0041 | 0/5 · 0.126 |",
        "| lstm | 5/5 · 0.00031 | pending |",
    ]


def test_report_names_a_best_arm_without_a_finite_validation_mean():
    """The best arm is ranked by successes first, so it can have no finite validation mean (a
    seed ended non-finite); results.md then says "—" rather than failing to be written."""
    from pathlib import Path

    from lstm_jax.compare.protocol import load_protocol
    from lstm_jax.compare.report import markdown

    proto = load_protocol(Path(__file__).parent.parent / "experiments/protocols/smoke.toml")
    best = {"task": proto.tasks[0].name, "T": 10, "arm": "rnn", "lr": 0.01,
            "val_final_mean": None, "test_mean": None, "test_sd": None, "arms_compared": 2}
    text = markdown(proto, {"rows": [], "differences": [], "best_on_validation": [best]})
    assert "**rnn** (lr 0.01, validation —); its test loss, scored once: not scored." in text


def test_report_numbers_never_round_up_to_a_perfect_whole_number():
    """A recall of 0.99996 printed to 3 or 4 significant digits would read "1", a perfect score
    no seed reached; the table keeps the digits that tell them apart, and exact values stay short."""
    from lstm_jax.compare.report import _fmt, by_length

    assert _fmt(0.99996, ".4g") == "0.99996"
    assert _fmt(0.999996, ".3g") == "0.999996"
    assert _fmt(1.0, ".4g") == "1"
    assert _fmt(0.0, ".3g") == "0"
    assert _fmt(0.12345, ".3g") == "0.123"
    assert _fmt(None) == "—"
    row = {"task": "copy", "arm": "lstm", "T": 50, "status": "done", "successes": 5,
           "seeds": 5, "test_mean": 0.99996}
    assert by_length("copy", [row])[-1] == "| lstm | 5/5 · 0.99996 |"
