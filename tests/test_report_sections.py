"""The report's sections and verdicts on small results files: missing values print "—", and every
verdict sentence follows the numbers it quotes (direction, interval, distance)."""

from __future__ import annotations

import json

import pytest

from lstm_jax.report import write_report
from lstm_jax.report_verdicts import disagreements


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _report(results, tmp_path) -> str:
    return write_report(results, tmp_path / "report")[0].read_text()


def _setting(fit, ratio, bound=None, **extra):
    e = {"hidden": {"fitted_rate_log10_per_step": fit, "ratio_k100_log10": ratio}, **extra}
    if bound is not None:
        e |= {"bound_rate_log10_per_step": bound, "w_hh_spectral_norm": 1.0,
              "w_hh_spectral_radius": 1.0}
    return e


def _decay_init(R, lstm_cell=-8.6, lstm_cec=-14.8, chrono_cec=-0.3):
    settings = {"rnn": _setting(None, -1e308, bound=0.0),
                "rnn_scale0.5": _setting(-0.477, -47.7, bound=-0.301),
                "lstm": _setting(-0.08, -9.2, cell={"ratio_k100_log10": lstm_cell},
                                 cec={"ratio_k100_log10": lstm_cec}),
                "lstm_chrono": _setting(-0.002, -2.6, cell={"ratio_k100_log10": -0.28},
                                        cec={"ratio_k100_log10": chrono_cec})}
    _write(R / "decay_init" / "results.json",
           {"config": {"seq_len": 200, "hidden": 8, "features": 2, "batch": 2, "seeds": 2},
            "settings": settings})


def test_missing_numbers_print_a_dash(tmp_path):
    R = tmp_path / "results"
    _decay_init(R)
    _write(R / "decay_trained" / "results.json",
           {"config": {"seq_len": 20, "hidden": 4, "steps": 10, "lr": 0.01, "batch": 2,
                       "probe_every": 5},
            "archs": {"rnn": {"loss_over_baseline": None, "ratio_k": 19,
                              "init_hidden_log10_ratio": -3.0,
                              "trained_hidden_log10_ratio": None}}})
    _write(R / "sweep_lag" / "results.json", [])
    _write(R / "long_runs" / "adding_rnn" / "summary.json",
           {"final": {"eval/loss": {"per_seed": [0.05, None]}}, "task": {"baseline": 0.1},
            "steps": 100})
    text = _report(R, tmp_path)
    assert "rnn: fitted — vs bound +0.000 log10/step." in text
    assert "rnn_scale0.5: fitted -0.477 vs bound -0.301 log10/step — within the bound" in text
    assert "| rnn | — | — | 19 |" in text
    assert "| 0.5, — | — | — |" in text


@pytest.mark.parametrize("cell, cec, says, not_says", [
    (-8.6, -14.8, "10^-8.6, larger than ∏f's 10^-14.8: the other paths, through h and the "
     "gates, dominate", "cancel"),
    (-8.6, -4.0, "10^-8.6, smaller than ∏f's 10^-4.0: the other paths, through h and the "
     "gates, partly cancel it", "dominate"),
])
def test_the_cell_path_verdict_follows_the_sign(tmp_path, cell, cec, says, not_says):
    R = tmp_path / "results"
    _decay_init(R, lstm_cell=cell, lstm_cec=cec)
    text = " ".join(disagreements(R, []))
    assert says in text and not_says not in text


def test_chrono_and_forget_gate_claims_are_read_from_the_data(tmp_path):
    R = tmp_path / "results"
    _decay_init(R, chrono_cec=-5.0)
    text = " ".join(disagreements(R, []))
    assert "even chrono init does not at init (∏f at k=100: 10^-5.0)" in text
    assert "chrono init provides it" not in text
    report = _report(R, tmp_path)
    assert "∏f vanishes too" in report and "as if every forget gate were 0.711" in report
    assert "0.73" not in report
    _decay_init(R, lstm_cell=-0.4, lstm_cec=-0.5)
    report = _report(R, tmp_path)
    assert "∏f keeps at least a tenth at init" in report and "vanishes too" not in report


def _comparison(R, rnn, lstm, diffs=None, gru=None):
    cols = {"rnn": rnn, "lstm": lstm, "gru": gru or {}}
    _write(R / "comparison" / "comparison.json",
           {"columns": cols, "imdb_differences": diffs or {},
            "sources": {"imdb": "experiments/results/compare_imdb"}})


def _ci(low, high):
    """An interval of RNN − LSTM test accuracy, as comparison.json stores it."""
    return {"low": low, "high": high, "conf": 0.95, "n": 3}


def test_the_imdb_verdict_never_contradicts_its_numbers(tmp_path):
    R = tmp_path / "results"
    _comparison(R, {"imdb_mean": 0.850, "imdb_last": 0.870},
                {"imdb_mean": 0.853, "imdb_last": 0.800},
                {"mean": _ci(-0.0026, 0.0038), "last": _ci(0.06, 0.08)})
    (text,) = disagreements(R, [])
    assert "no clear difference (LSTM − RNN 95 % CI over 3 seeds -0.38 to +0.26 pp)" in text
    assert "does win" not in text and "LSTM scores higher" not in text
    assert "with the last-state readout the RNN scores higher: LSTM 80.00 % vs RNN 87.00 %" in text
    assert "(from experiments/results/compare_imdb)" in text


def test_the_imdb_verdict_uses_the_interval_not_a_fixed_margin(tmp_path):
    R = tmp_path / "results"
    _comparison(R, {"imdb_mean": 0.850}, {"imdb_mean": 0.853},
                {"mean": _ci(-0.005, -0.001)})
    assert disagreements(R, []) == []  # the LSTM's 0.3 points are outside the interval: it wins
    _comparison(R, {"imdb_mean": 0.850}, {"imdb_mean": 0.860}, {"mean": _ci(-0.02, 0.001)})
    (text,) = disagreements(R, [])
    assert "no clear difference" in text and "0.00 %" not in text and "last-state" not in text
    _comparison(R, {"imdb_mean": 0.850, "imdb_last": 0.84}, {"imdb_mean": 0.852, "imdb_last": 0.85},
                {"mean": _ci(-0.004, 0.001), "last": _ci(-0.012, -0.008)})
    (text,) = disagreements(R, [])
    assert "with the last-state readout the LSTM scores higher: LSTM 85.00 % vs RNN 84.00 %" in text


def test_the_gru_verdict_skips_missing_numbers(tmp_path):
    R = tmp_path / "results"
    _comparison(R, {}, {"imdb_last": 0.88, "longest_lag_solved": 200},
                gru={"imdb_last": 0.87, "longest_lag_solved": None})
    (text,) = disagreements(R, [])
    assert "IMDB 87.00 % (last)" in text and "0.00 %" not in text
    assert "it solved is T = —, the LSTM's T = 200" in text


def _gradients(di, last_distance):
    def record(arch, kept):
        return {"arch": arch, "readout": "last", "max_len": last_distance + 1,
                "summary": {"distances": [10, 100, last_distance], "loss_grad_kept": kept,
                            "hidden_kept": kept}}

    _write(di / "gradients.json", {"records": [record("rnn", [0.5, 0.1, 1e-3]),
                                               record("lstm", [0.6, 0.3, 0.2])]})


def test_the_farthest_distance_is_read_not_assumed(tmp_path):
    R, di = tmp_path / "results", tmp_path / "imdb"
    _gradients(di, 399)
    (text,) = disagreements(R, [di])
    assert "399 tokens before the end" in text and "199" not in text
    assert "not compared" in text and "keeps more" not in text
    report = write_report(R, tmp_path / "report", [di])[0].read_text()
    assert "| rnn | last | 400 | 399 | 0.1 / 0.001 |" in report
    _gradients(di, 199)
    (text,) = disagreements(R, [di])
    assert "199 tokens before the end" in text
    assert "our RNN keeps more and our LSTM more than its anchor." in text


def _imdb_results(di):
    _write(di / "results.json", {"runs": [{"arch": "rnn"}, {"arch": "lstm"}, {"arch": "gru"}]})


def test_each_imdb_section_names_the_folder_it_read_and_its_own_command(tmp_path):
    """Section 2 reads gradients from B, section 5 results from A: each names its folder, and a
    manifest command for another folder is replaced by the command for the folder read."""
    R, a, b = tmp_path / "results", tmp_path / "imdb_a", tmp_path / "imdb_b"
    _imdb_results(a)
    _gradients(b, 199)
    _write(R / "manifest.json", {"mode": "full", "stages": {
        "imdb_compare": {"command": f"python experiments/imdb_compare.py --out {a}",
                         "seconds": 5.0, "returncode": 0, "load_before": 1, "load_after": 1},
        "imdb_gradients": {"command": "python experiments/imdb_gradients.py --runs elsewhere",
                           "seconds": 5.0, "returncode": 0, "load_before": 1, "load_after": 1}}})
    text = write_report(R, tmp_path / "report", [a, b])[0].read_text()
    s2 = text[text.index("## 2."):text.index("## 3.")]
    s5 = text[text.index("## 5."):text.index("## 6.")]
    assert f"gradients from {b})" in s2 and str(a) not in s2
    assert f"python experiments/imdb_gradients.py --runs {b}\n" in s2
    assert "elsewhere" not in s2
    assert f"Models (results from {a})" in s5
    assert f"python experiments/imdb_compare.py --out {a}   # 5 s, exit 0" in s5
    assert f"(last-state readout, from {b})" in " ".join(disagreements(R, [a, b]))


def test_decay_trained_says_which_statistic_and_probe_method(tmp_path):
    R = tmp_path / "results"
    d = R / "decay_trained"
    entry = {"seeds": [0, 1, 2], "ratio_statistic": "median over seeds", "ratio_k": 19,
             "loss_over_baseline": 0.5, "init_hidden_log10_ratio": -3.0,
             "trained_hidden_log10_ratio": -1.0}
    _write(d / "results.json",
           {"config": {"seq_len": 20, "hidden": 4, "steps": 10, "lr": 0.01, "batch": 2,
                       "probe_every": 5}, "archs": {"rnn": entry, "gru": entry}})
    for arch, method, samples in (("rnn", "exact", None), ("gru", "exact", None)):
        _write(d / "runs" / arch / "probes.jsonl", {"step": 0, "seed": 0, "method": method,
                                                    "samples": samples})
    (d / "decay_trained.png").write_bytes(b"\x89PNG")
    text = _report(R, tmp_path)
    assert "probes every 5 steps (exact) recorded" in text and "Hutchinson" not in text
    assert "final loss / baseline (mean over seeds)" in text
    assert "init → trained (median over seeds)" in text and "| rnn | 3 | 0.5 | 19 |" in text
    assert "After training (seed 0)." in text
    _write(d / "runs" / "gru" / "probes.jsonl", {"method": "hutchinson", "samples": 8})
    assert "(rnn: exact; gru: Hutchinson, 8 samples)" in _report(R, tmp_path)


def test_every_decay_figure_is_shown_and_a_cut_file_says_so(tmp_path):
    R = tmp_path / "results"
    _decay_init(R)
    (R / "decay_init" / "decay_init_cells.png").write_bytes(b"\x89PNG")
    summary = {"median": 230, "p90": 600, "p99": 1500, "frac_100_300": 0.5, "frac_gt_1000": 0.1}
    stats = {"counts": {"train": {"neg": 1, "pos": 1}},
             "tokens": {"train": {"all": summary, "neg": summary, "pos": summary}},
             "padding": ["x" * 50] * 200}
    _write(R / "eda" / "stats.json", stats)
    text = _report(R, tmp_path)
    assert "figures/decay_init_decay_init_cells.png" in text
    assert f"… truncated: 6,000 of {len(json.dumps(stats, indent=1)):,} characters" in text
    assert str(R / "eda" / "stats.json") in text
