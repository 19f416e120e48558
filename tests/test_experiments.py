"""The reproduction experiments end to end at toy size, and the report built from their files.

One module-scoped fixture runs every experiment once into a temporary results folder (toy sizes:
the cost is compiling); the tests check the files and figures each promises, against independent
facts (‖I‖_F = √H at lag 0; an orthogonal matrix times s has spectral norm s; the Pascanu et al.
2013 bound on the RNN's decay rate), and that rebuilding the table and report does not train.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "experiments"))

import comparison_table  # noqa: E402
import decay_init  # noqa: E402
import decay_trained  # noqa: E402
import stability  # noqa: E402

H, T = 8, 30


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    import sweep_lag

    R = tmp_path_factory.mktemp("reproduce")
    assert decay_init.main(["--seq-len", str(T), "--hidden", str(H), "--features", "3",
                            "--batch", "2", "--seeds", "2", "--out", str(R / "decay_init")]) == 0
    assert decay_trained.main(["--archs", "lstm", "--seq-len", "8", "--hidden", "4",
                               "--steps", "4", "--batch", "8", "--probe-every", "2",
                               "--seeds", "2", "--out", str(R / "decay_trained")]) == 0
    assert stability.main(["--archs", "rnn", "--seq-len", "6", "--hidden", "4", "--steps", "3",
                           "--batch", "8", "--seeds", "1", "--clips", "none",
                           "--out", str(R / "stability")]) == 0
    assert sweep_lag.main(["--tasks", "adding", "--archs", "rnn", "--lengths", "5", "--steps",
                           "2", "--seeds", "1", "--hidden", "4", "--batch", "8", "--eval-every",
                           "2", "--out", str(R / "sweep_lag")]) == 0
    assert comparison_table.main(["--results", str(R), "--imdb", str(R / "no_imdb"),
                                  "--hidden", "4", "--seq-len", "5", "--batch", "4",
                                  "--no-timing", "--out", str(R / "comparison")]) == 0
    return R


def _mean(res, setting, probe="hidden"):
    return np.asarray(res["settings"][setting][probe]["mean"])


def test_decay_init_files_and_closed_forms(results):
    d = results / "decay_init"
    for name in ("results.json", "decay_init.png", "decay_forget_bias.png", "decay_rnn_scale.png",
                 "decay_init_cells.png"):
        assert (d / name).is_file() and (d / name).stat().st_size > 0, name
    res = json.loads((d / "results.json").read_text())
    for name, e in res["settings"].items():
        # lag 0: ∂h_T/∂h_T = I, ‖I‖_F = √H
        assert e["hidden"]["mean"][0] == pytest.approx(0.5 * math.log10(H), abs=1e-4), name
        assert len(e["hidden"]["per_seed"]) == 2 and len(e["hidden"]["mean"]) == T
    for name, scale in (("rnn_scale0.5", 0.5), ("rnn", 1.0), ("rnn_scale1.5", 1.5)):
        e = res["settings"][name]
        assert e["w_hh_spectral_norm"] == pytest.approx(scale, rel=1e-4)
        assert e["bound_rate_log10_per_step"] == pytest.approx(math.log10(scale), abs=1e-4)
        # Pascanu et al. 2013: the per-step decay cannot beat log10 ‖W_hh‖₂ (tanh' ≤ 1); the
        # Frobenius norm of the fitted curve adds at most a constant, not a slope.
        assert e["hidden"]["fitted_rate_log10_per_step"] <= e["bound_rate_log10_per_step"] + 0.02
    # default init: the RNN's hidden Jacobian decays faster than the LSTM's cell Jacobian
    assert _mean(res, "rnn")[-1] < _mean(res, "lstm", "cell")[-1] - 1.0
    # chrono init keeps ∏f closer to 1 than forget bias 1, which beats forget bias 0
    assert _mean(res, "lstm_chrono", "cec")[-1] > _mean(res, "lstm", "cec")[-1] \
        > _mean(res, "lstm_fb0", "cec")[-1]


def test_decay_init_uses_the_papers_init_and_remeasures_a_changed_setting(results, capsys):
    """JANET and IndRNN get their papers' T-dependent init at the probe's T (chrono T_max = T and
    Glorot kernels, as JANET's code; IndRNN's authors' adding init); a stored setting measured
    with other options is measured again on the next run, the others are reused."""
    opts = decay_init.settings(T)
    assert opts["janet"] == {"arch": "janet", "chrono_tmax": float(T), "input_init": "glorot",
                             "recurrent_init": "glorot"}
    assert opts["indrnn"] == {"arch": "indrnn", "chrono_tmax": float(T), "indrnn_init": "paper"}
    d = results / "decay_init"
    res = json.loads((d / "results.json").read_text())
    assert res["settings"]["indrnn"]["options"] == opts["indrnn"]
    res["settings"]["indrnn"]["options"] = {"arch": "indrnn"}  # as written before the change
    (d / "results.json").write_text(json.dumps(res))
    argv = ["--seq-len", str(T), "--hidden", str(H), "--features", "3", "--batch", "2",
            "--seeds", "2", "--out", str(d)]
    capsys.readouterr()
    assert decay_init.main(argv) == 0
    assert "; measuring indrnn\n" in capsys.readouterr().out
    again = json.loads((d / "results.json").read_text())
    assert again["settings"]["indrnn"]["options"] == opts["indrnn"]
    assert again["settings"]["rnn"] == res["settings"]["rnn"]  # reused


def test_decay_trained_files(results, capsys):
    d = results / "decay_trained"
    for name in ("results.json", "decay_trained.png", "decay_trained_step0.png",
                 "heatmap_lstm.png", "runs/lstm/probes.jsonl"):
        assert (d / name).is_file(), name
    steps = [json.loads(x)["step"] for x in (d / "runs/lstm/probes.jsonl").read_text().splitlines()]
    assert sorted(set(steps)) == [0, 2, 4] and len(steps) == 6  # 2 seeds
    e = json.loads((d / "results.json").read_text())["archs"]["lstm"]
    assert e["ratio_k"] == 7
    for key in ("init_hidden_log10_ratio", "trained_hidden_log10_ratio", "init_cell_log10_ratio",
                "trained_cec_log10_ratio"):
        assert math.isfinite(e[key]) and e[key] < 1.0, key
    # every seed's ratio, straight from probes.jsonl, and their median
    recs = [json.loads(x) for x in (d / "runs/lstm/probes.jsonl").read_text().splitlines()]
    last = {r["seed"]: r["log10_hidden"] for r in recs if r["step"] == 4}
    per_seed = [last[i][7] - last[i][0] for i in (0, 1)]
    assert e["seeds"] == [0, 1] and e["per_seed"]["trained_hidden"] == pytest.approx(per_seed)
    assert e["trained_hidden_log10_ratio"] == pytest.approx(np.median(per_seed))
    # a finished run is not reused blindly
    assert decay_trained.main(["--archs", "lstm", "--seq-len", "8", "--hidden", "4", "--steps",
                               "4", "--batch", "8", "--probe-every", "2", "--seeds", "3",
                               "--out", str(d)]) == 2
    assert "other settings" in capsys.readouterr().err


def test_stability_rows(results):
    d = results / "stability"
    assert (d / "stability.png").is_file()
    res = json.loads((d / "results.json").read_text())
    assert [(r["arch"], r["clip"]) for r in res["rows"]] == [("rnn", None)]
    for r in res["rows"]:
        assert r["status"] in ("completed", "diverged")
        assert (r["loss_over_baseline"] is None) == (r["status"] == "diverged")
    for s in res["summary"]:
        assert 0.0 <= s["diverged_fraction"] <= s["failed_fraction"] <= 1.0


def test_comparison_table(results):
    res = json.loads((results / "comparison" / "comparison.json").read_text())
    c = res["columns"]
    # parameter counts: G·H·(D + H) + G·H, plus H for the GRU's b_hn (H=4, D=2)
    assert (c["rnn"]["parameters"], c["lstm"]["parameters"], c["gru"]["parameters"]) == \
        (1 * 4 * 6 + 4, 4 * 4 * 6 + 16, 3 * 4 * 6 + 12 + 4)
    for a in ("rnn", "lstm", "gru"):
        assert c[a]["step_ms"] is None and c[a]["imdb_last"] is None
    assert c["rnn"]["lags_tried"] == [5] and c["lstm"]["longest_lag_solved"] is None
    assert c["rnn"]["diverged_noclip"][1] == 1 and "diverged_noclip" not in c["lstm"]
    md = (results / "comparison" / "comparison.md").read_text()
    assert "Poor on long sequences / Stable" in md and "not run" in md


def test_report_builds_without_training(results, tmp_path, monkeypatch):
    import lstm_jax.train
    from lstm_jax.report import write_report

    def no_training(*a, **k):
        raise AssertionError("the report and the table must not train")

    monkeypatch.setattr(lstm_jax.train, "train", no_training)
    before = {p: p.stat().st_mtime_ns for p in results.rglob("summary.json")}
    assert comparison_table.main(["--results", str(results), "--imdb", str(results / "x"),
                                  "--hidden", "4", "--no-timing",
                                  "--out", str(results / "comparison")]) == 0
    md, page = write_report(results, tmp_path / "report", imdb=str(results / "x"))
    assert before == {p: p.stat().st_mtime_ns for p in results.rglob("summary.json")}
    text = md.read_text()
    for heading in ("essay's table, measured", "Gradient decay at initialisation",
                    "after training", "Success against lag", "stability", "IMDB"):
        assert heading in text, heading
    assert "python experiments/decay_init.py" in text and "Bai, Kolter & Koltun (2018)" in text
    figs = [line for line in text.splitlines() if line.startswith("![")]
    assert len(figs) >= 8
    for line in figs:
        assert (md.parent / line.split("](")[1].rstrip(")")).is_file()
    html = page.read_text()
    assert html.count("data:image/png;base64,") == len(figs) and "<table>" in html


@pytest.mark.slow
def test_comparison_timing_runs_once(tmp_path, monkeypatch):
    """The timing rows train once per architecture; a second build reuses the runs."""
    args = ["--results", str(tmp_path / "none"), "--imdb", str(tmp_path / "x"), "--hidden", "4",
            "--seq-len", "5", "--batch", "4", "--steps", "3", "--out", str(tmp_path / "cmp")]
    assert comparison_table.main(args) == 0
    c = json.loads((tmp_path / "cmp" / "comparison.json").read_text())["columns"]
    for a in ("rnn", "lstm", "gru"):
        assert c[a]["step_ms"] > 0
        assert c[a]["tokens_per_s"] == pytest.approx(1000 / c[a]["step_ms"] * 4 * 5)
    import lstm_jax.train

    monkeypatch.setattr(lstm_jax.train, "train", lambda *a, **k: pytest.fail("retrained"))
    assert comparison_table.main(args) == 0
    assert "tokens/s" in (tmp_path / "cmp" / "comparison.md").read_text()


def test_sweep_collect_merges_invocations(results):
    import sweep_lag

    d = results / "sweep_lag"
    first = json.loads((d / "results.json").read_text())
    assert [(r["arch"], r["seq_len"]) for r in first] == [("rnn", 5)]
    assert sweep_lag.main(["--tasks", "adding", "--archs", "rnn", "--lengths", "4", "--steps",
                           "2", "--seeds", "1", "--hidden", "4", "--batch", "8", "--eval-every",
                           "2", "--out", str(d)]) == 0
    assert [r["seq_len"] for r in json.loads((d / "results.json").read_text())] == [4]
    assert sweep_lag.main(["--collect", "--out", str(d)]) == 0  # trains nothing
    rows = json.loads((d / "results.json").read_text())
    assert [r["seq_len"] for r in rows] == [4, 5]
    assert rows[1] == first[0]  # the same row, rebuilt from the run's files
    assert (d / "lag_sweep.png").stat().st_size > 0
    table = (d / "results.md").read_text()
    assert "| T | rnn |" in table
    for r in rows:  # one line per T, its ratio as the sweep computed it
        assert f"| {r['seq_len']} | {r['loss_over_baseline_mean']:.3g} ± " in table
    merged = d.parent / "sweep_merged"
    assert sweep_lag.main(["--collect", "--out", str(merged), "--include", str(d)]) == 0
    assert json.loads((merged / "results.json").read_text()) == rows


def test_sweep_collect_empty_dir_is_a_clear_error(tmp_path):
    import sweep_lag

    with pytest.raises(SystemExit, match="no completed runs"):
        sweep_lag.main(["--collect", "--out", str(tmp_path / "empty")])


def test_sweep_refuses_a_run_of_other_settings(results, tmp_path):
    """A finished point is reused only if its settings match (steps, lr, …); ``impl`` may differ."""
    import shutil

    import sweep_lag

    d = tmp_path / "sweep"
    shutil.copytree(results / "sweep_lag" / "adding_rnn_T5", d / "adding_rnn_T5")
    args = ["--tasks", "adding", "--archs", "rnn", "--lengths", "5", "--seeds", "1", "--hidden",
            "4", "--batch", "8", "--eval-every", "2", "--out", str(d)]
    with pytest.raises(SystemExit, match="steps was 2, now 3"):
        sweep_lag.main([*args, "--steps", "3"])
    cfg_path = d / "adding_rnn_T5" / "config.json"
    saved = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**saved, "impl": "scan"}))
    before = (d / "adding_rnn_T5" / "summary.json").read_text()
    assert sweep_lag.main([*args, "--steps", "2"]) == 0
    assert (d / "adding_rnn_T5" / "summary.json").read_text() == before  # reused, not retrained


def test_reproduce_full_stages_and_recorded_time(results, tmp_path):
    """FULL's stage list runs the README's sweeps into one folder and collects them; single
    runs resume a run already there; the recorded training time sums every summary.json; the
    report lists the longer runs with their final loss / baseline per seed."""
    import shutil

    import reproduce

    from lstm_jax.report import write_report

    out = tmp_path / "full"
    names = [n for n, _ in reproduce.stages(True, out, tmp_path / "rep", "imdb", "py")]
    assert names[:8] == ["decay_init", "decay_trained", "sweep_adding", "sweep_copy",
                         "sweep_copy_rnn500", "sweep_lag", "adding_lstm_T1000_1200",
                         "copy500_lstm_chrono"]
    assert {"imdb_compare", "imdb_best", "imdb_gradients", "comparison", "report"} <= set(names)
    quick = [n for n, _ in reproduce.stages(False, out, tmp_path / "rep", "imdb", "py")]
    assert "sweep_adding" not in quick and "imdb_best" not in quick and "sweep_lag" in quick
    cmd = dict(reproduce.stages(True, out, tmp_path / "rep", "imdb", "py"))
    assert cmd["sweep_lag"][2:] == ["--collect", "--out", str(out / "sweep_lag")]
    assert "--resume" not in cmd["copy500_lstm_chrono"]

    run = out / "long_runs" / "copy500_lstm_chrono"
    shutil.copytree(results / "sweep_lag" / "adding_rnn_T5", run)
    cmd = dict(reproduce.stages(True, out, tmp_path / "rep", "imdb", "py"))
    assert cmd["copy500_lstm_chrono"][-1] == "--resume"

    summary = json.loads((run / "summary.json").read_text())
    rec = reproduce.recorded_training_s(out, tmp_path / "no_imdb")
    assert rec["runs"] == 1 and rec["total_s"] == pytest.approx(summary["wall_time_s"], abs=0.1)

    shutil.copytree(results / "decay_init", out / "decay_init")
    md, _ = write_report(out, tmp_path / "rep", imdb=str(tmp_path / "no_imdb"))
    text = md.read_text()
    base = summary["task"]["baseline"]
    ratio = summary["final"]["eval/loss"]["per_seed"][0] / base
    assert "Longer single runs" in text and "| `copy500_lstm_chrono` | adding | rnn | 5 |" in text
    assert f"| {ratio:.3g} |" in text


def test_mixed_precision_tiny_run_and_reuse(tmp_path):
    """float32 against bfloat16 products: both runs train, the gradients agree to bfloat16's
    precision, and a second invocation reuses the finished runs instead of training again."""
    import mixed_precision

    argv = ["--archs", "lstm", "--seq-len", "6", "--hidden", "4", "--steps", "4", "--batch", "8",
            "--seeds", "1", "--grad-seq", "12", "--out", str(tmp_path)]
    assert mixed_precision.main(argv) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert [(r["arch"], r["matmul_dtype"], r["status"]) for r in res["train"]] == [
        ("lstm", "float32", "completed"), ("lstm", "bfloat16", "completed")]
    assert (tmp_path / "runs" / "lstm_bfloat16" / "config.json").read_text().count("bfloat16") == 1
    (g,) = res["gradients"]
    assert 0.999 < g["grad_cosine"] <= 1.0 + 1e-9 and 0 < g["grad_rel_error"] < 0.05
    assert [r["k"] for r in g["dL_dx_norm_by_lag"]] == [0, 10]
    assert all(abs(r["ratio"] - 1) < 0.05 for r in g["dL_dx_norm_by_lag"])
    assert (tmp_path / "mixed_precision.png").is_file()
    mtime = (tmp_path / "runs" / "lstm_float32" / "summary.json").stat().st_mtime
    assert mixed_precision.main(argv) == 0
    assert (tmp_path / "runs" / "lstm_float32" / "summary.json").stat().st_mtime == mtime
