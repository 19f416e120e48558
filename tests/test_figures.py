"""Every figure of lstm_jax.plots follows the one style (lstm_jax.plots.style): rendered on tiny
data, every panel has an x and a y label, log axes show whole decades (every 1, 2, 5, 10 …),
and the probe figures draw each quantity in its own line style."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest

from lstm_jax.compare import report as compare_report
from lstm_jax.compare.protocol import Point, load_protocol
from lstm_jax.compare.run import run_dir
from lstm_jax.plots import compare, imdb, probes, states, style, training
from lstm_jax.plots import runs as run_plots

K = 12


def _probe_record(arch: str, slope: float) -> dict:
    k = list(range(K))
    rec = {"arch": arch, "method": "exact", "seq_len": K, "hidden_size": 4, "k": k, "t": k,
           "log10_hidden": [slope * i for i in k], "log10_hidden_std": [0.3] * K,
           "log10_loss_grad": [-2.0 * (K - 1 - i) for i in k], "log10_loss_grad_std": [0.2] * K}
    if arch == "lstm":
        rec |= {"log10_cell": [-0.5 * i for i in k], "log10_cell_std": [0.1] * K,
                "log10_cec": [-0.9 * i for i in k], "log10_cec_std": [0.1] * K}
    return rec


@pytest.fixture(scope="module")
def probe_results():
    return {"config": {"forget_bias": 1.0, "chrono": None},
            "archs": {"rnn": _probe_record("rnn", -4.0), "lstm": _probe_record("lstm", -1.0),
                      "gru": _probe_record("gru", -3.0)}}


def _run_dir(tmp_path, name, arch, seeds=2, flat=False):
    """A run dir; ``flat``: an RNN that stays near the adding baseline 0.1667, so its log y axis
    spans well under one decade and has no 1, 2, 5 × 10ᵉ tick inside."""
    d = tmp_path / name
    d.mkdir()

    def loss(s, i):
        return 0.1667 + 0.008 / (1 + s + i) if flat else 0.2 / (1 + s + i)

    lines = [json.dumps({"step": s, "eval/loss": [loss(s, i) for i in range(seeds)],
                         "train/loss": [0.25 / (1 + s)] * seeds,
                         "eval/accuracy": [0.5 + 0.01 * s] * seeds, "baseline": 0.1667})
             for s in range(0, 50, 10)]
    (d / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (d / "config.json").write_text(json.dumps({"arch": arch, "task": "adding", "seq_len": 20,
                                               "hidden": 8, "forget_bias": 1.0, "chrono": None}))
    return d


def _figures(tmp_path, probe_results):
    """Every figure function, drawn on tiny data; yields (name, path)."""
    yield "decay", probes.plot_decay(probe_results, tmp_path / "decay.png")
    yield "loss_grad", probes.plot_loss_grad(probe_results, tmp_path / "loss_grad.png")
    recs = [dict(probe_results["archs"]["lstm"], step=s) for s in (0, 10, 20)]
    yield "heatmap", probes.plot_training_heatmap(recs, tmp_path / "heat.png")
    yield "states", states.plot_state_norms(
        {"config": {"hidden": 4, "forget_bias": 1.0},
         "state_norms": {a: list(np.linspace(0.1, 1, K)) for a in ("rnn", "lstm", "gru")}},
        tmp_path / "states.png")
    runs = {a: _run_dir(tmp_path, f"run_{a}", a) for a in ("rnn", "lstm")}
    yield "runs", compare.plot_runs(runs, tmp_path / "runs.png", title="t")
    flat = _run_dir(tmp_path, "run_flat", "rnn", flat=True)
    yield "runs_flat", compare.plot_runs({"rnn": flat}, tmp_path / "runs_flat.png", title="t")
    run_plots.plot_run_curves([runs["rnn"], runs["lstm"]], tmp_path / "run_curves.png")
    yield "run_curves", tmp_path / "run_curves.png"
    run_plots.plot_run_curves([flat], tmp_path / "run_curves_flat.png")
    yield "run_curves_flat", tmp_path / "run_curves_flat.png"
    (runs["lstm"] / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    run_plots.plot_probe_heatmap(runs["lstm"], tmp_path / "run_heat.png", probe="cec")
    yield "run_heatmap", tmp_path / "run_heat.png"
    proto = load_protocol(Path(__file__).parent.parent / "experiments/protocols/smoke.toml")
    result_rows = [{"task": "adding", "T": 10, "arm": arm, "status": "done", "success_rate": p,
                    "wilson_low": p / 2, "wilson_high": (1 + p) / 2,
                    "val_final_per_seed": [v, 2 * v], "test_per_seed": [v, 1.5 * v]}
                   for arm, p, v in (("rnn", 0.0, 0.17), ("lstm+chrono", 1.0, 1e-3))]
    yield "success_vs_T", compare_report.plot_success(proto, {"rows": result_rows},
                                                       tmp_path / "success.png")
    yield "final_by_arm", compare_report.plot_final_by_arm(proto, {"rows": result_rows},
                                                            tmp_path / "final_by_arm.png")
    cmp_out = tmp_path / "cmp"
    for r in result_rows:
        r |= {"arch": proto.arm(r["arm"]).arch, "lr": 0.01}
        where = run_dir(cmp_out, Point("adding", 10, r["arm"], 0.01))
        where.mkdir(parents=True)
        (where / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "eval/loss": [v * (30 / s), 2 * v * (30 / s)]}) + "\n"
            for s, v in ((s, r["val_final_per_seed"][0]) for s in (10, 20, 30))))
    yield "curves", compare_report.plot_curves(proto, {"rows": result_rows}, cmp_out,
                                               tmp_path / "curves.png")
    for p in training.plot_run(runs["lstm"]):
        yield p.stem, p
    rows = [{"task": task, "arch": a, "seq_len": T, "hidden": 8,
             "loss_over_baseline_mean": r, "loss_over_baseline_sd": 0.1 * r}
            for task in ("adding", "copy") for a, r in (("rnn", 0.9), ("lstm", 0.01))
            for T in (10, 20, 50)]
    yield "lag_sweep", training.plot_lag_sweep(rows, tmp_path / "lag.png")
    stats = {"counts": {"train": {"neg": 5, "pos": 5}, "test": {"neg": 4, "pos": 6}},
             "tokens": {"labelled": {"all": {"median": 20, "p90": 40, "p99": 60,
                                             "frac_100_300": 0.1, "frac_gt_1000": 0.0}}}}
    rng = np.random.default_rng(0)
    lengths = {s: {"tokens": rng.integers(5, 80, 10), "label": np.array([0, 1] * 5)}
               for s in ("train", "test")}
    yield "sentiment", imdb.plot_sentiment(stats, tmp_path / "sentiment.png")
    yield "length_hist", imdb.plot_length_histogram(lengths, stats, tmp_path / "hist.png")
    yield "length_box", imdb.plot_length_box(lengths, tmp_path / "box.png")


def _mantissas(ticks) -> set:
    return {round(t / 10.0 ** math.floor(math.log10(t) + 1e-9), 6) for t in ticks}


def _check_narrow_ticks(ax, name):
    """Under two decades: at least two distinct plain labels inside the axis; 1, 2, 5 × 10ᵉ
    whenever two of those fit."""
    lo, hi = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if lo <= t <= hi]
    fmt = ax.yaxis.get_major_formatter()
    labels = [fmt(t, i) for i, t in enumerate(ticks)]
    assert len(ticks) >= 2 and len(set(labels)) == len(labels) and all(labels), (name, labels)
    assert all("10^" not in label for label in labels), (name, labels)
    fits = [m * 10.0 ** e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in (1, 2, 5) if lo <= m * 10.0 ** e <= hi]
    if len(fits) >= 2:
        assert _mantissas(ticks) <= {1, 2, 5}, (name, ticks)


def _check_log_ticks(ax, name):
    """Decades at a regular step (1, 2, 5, 10 … decades apart), or under two decades at least
    two plain labels (:func:`_check_narrow_ticks`)."""
    ticks = ax.get_yticks()
    exps = [math.log10(t) for t in ticks]
    lo, hi = ax.get_ylim()
    if math.log10(hi) - math.log10(lo) < 2:
        _check_narrow_ticks(ax, name)
        return
    assert all(abs(e - round(e)) < 1e-9 for e in exps), (name, exps)
    gaps = {round(b - a) for a, b in zip(exps, exps[1:], strict=False)}
    assert len(gaps) <= 1 and gaps <= {1, 2, 5, 10, 20, 50, 100}, (name, exps)
    assert len(exps) <= 8, (name, exps)


def test_every_panel_is_labelled_and_log_ticks_are_decades(tmp_path, probe_results, monkeypatch):
    saved = {}
    real_save = plt.Figure.savefig

    def keep(fig, path, *a, **k):  # record each figure's axes as they are saved
        saved[Path(path)] = fig
        if os.environ.get("LSTM_JAX_KEEP_FIGURES"):
            return real_save(fig, path, *a, **k)
        fig.canvas.draw_idle()  # the labels are checked, not the pixels (rendering is slow)
        Path(path).write_bytes(b"png")

    monkeypatch.setattr(plt.Figure, "savefig", keep)
    names = []
    flat_axes = []
    for name, path in _figures(tmp_path, probe_results):
        assert Path(path) in saved, (name, path)  # the path it returns is the figure it saved
        names.append(name)
        fig = saved[Path(path)]
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                assert ax.get_ylabel(), f"{name}: colorbar without a label"
                continue
            assert ax.get_xlabel(), f"{name}: a panel without an x label"
            assert ax.get_ylabel(), f"{name}: a panel without a y label"
            if ax.get_legend_handles_labels()[1]:  # labelled lines need a legend to be read
                assert ax.get_legend() is not None or fig.legends, f"{name}: no legend"
            if ax.get_yscale() == "log":
                _check_log_ticks(ax, name)
                if name.endswith("_flat"):
                    flat_axes.append(ax.get_ylim())
    assert len(names) >= 13
    assert len(flat_axes) == 2 and all(hi / lo < 1.2 for lo, hi in flat_axes), flat_axes
    if os.environ.get("LSTM_JAX_KEEP_FIGURES"):  # to look at them: copy the PNGs out
        import shutil

        shutil.copytree(tmp_path, os.environ["LSTM_JAX_KEEP_FIGURES"], dirs_exist_ok=True)


def test_one_line_style_per_quantity(tmp_path, probe_results, monkeypatch):
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, path, *a, **k: Path(path).touch())
    path = probes.plot_decay(probe_results, tmp_path / "d.png")
    assert path.is_file()
    assert style.line_style("hidden") == "-" and style.line_style("cell") == "--"
    assert style.line_style("cec") == ":"
    drawn = {}
    orig = probes._band

    def spy(ax, x, mean, std, color, ls, label, **kw):
        drawn[label] = ls
        return orig(ax, x, mean, std, color, ls, label, **kw)

    probes._band = spy
    try:
        probes.plot_decay(probe_results, tmp_path / "d2.png")
    finally:
        probes._band = orig
    seen = set()
    for label, ls in drawn.items():
        quantity = ("cell" if "partial C" in label else "cec" if "prod" in label else "hidden")
        assert ls == style.line_style(quantity), label
        seen.add(quantity)
    assert seen == {"hidden", "cell", "cec"}, drawn  # every quantity was drawn and checked


def test_decade_ticks_thin_a_wide_range():
    fig, ax = plt.subplots()
    ax.semilogy([0, 1], [1e-26, 1.0])
    style.decade_ticks(ax)
    exps = [round(math.log10(t)) for t in ax.get_yticks()]
    assert exps == [-25, -20, -15, -10, -5, 0] or exps == [-20, -10, 0]
    plt.close(fig)


@pytest.mark.parametrize("lim", [(0.164, 0.176), (0.21, 0.45), (0.155, 0.21), (0.9, 1.1),
                                 (0.01, 0.5)])
def test_decade_ticks_label_a_narrow_axis_with_two_numbers_or_more(lim):
    fig, ax = plt.subplots()
    ax.set_yscale("log")
    ax.set_ylim(*lim)
    style.decade_ticks(ax)
    _check_narrow_ticks(ax, lim)
    plt.close(fig)


def _deep_record(T=600, slope=-0.7) -> dict:
    """An RNN whose log10 norm passes −300 at k = 429 (float64 cannot show 10^−300.3)."""
    k = list(range(T))
    return {"arch": "rnn", "seq_len": T, "hidden_size": 4, "k": k, "step": 0,
            "log10_hidden": [slope * i for i in k], "log10_hidden_std": [0.1] * T}


def test_values_below_the_float_floor_are_not_drawn_as_a_plateau(tmp_path, monkeypatch):
    figs = []
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, path, *a, **k: (figs.append(fig), Path(path).touch()))
    rec = _deep_record()
    below = np.array(rec["log10_hidden"]) < -300
    probes.plot_decay({"archs": {"rnn": rec}}, tmp_path / "d.png")
    probes.plot_training_heatmap([rec, dict(rec, step=10)], tmp_path / "h.png")
    for ax in (figs[0].axes[0], figs[1].axes[1]):
        y = np.asarray(ax.get_lines()[0].get_ydata(), dtype=float)
        assert np.isnan(y[below]).all() and np.isfinite(y[~below]).all(), ax.get_title()
        assert "below 1e-300 at k 429–599, not drawn" in ax.get_lines()[0].get_label()


def test_compare_plot_runs_sample_sd_accuracy_in_percent_and_damaged_metrics(tmp_path,
                                                                             monkeypatch):
    from lstm_jax.errors import UserError

    figs = []
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, path, *a, **k: (figs.append(fig), Path(path).touch()))
    run = _run_dir(tmp_path, "r", "lstm")
    compare.plot_runs({"lstm": run}, tmp_path / "loss.png")
    values = np.array([[0.2 / (1 + s + i) for i in range(2)] for s in range(0, 50, 10)])
    band = figs[-1].axes[0].collections[0].get_paths()[0].vertices
    np.testing.assert_allclose(band[:, 1].max(), (values.mean(1) + values.std(1, ddof=1)).max())
    compare.plot_runs({"lstm": run}, tmp_path / "acc.png", metric="eval/accuracy")
    ax = figs[-1].axes[0]
    assert ax.get_yscale() == "linear" and "accuracy (%)" in ax.get_ylabel()
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [50, 60, 70, 80, 90])
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join([lines[0], "{torn", *lines[1:]]) + "\n")
    with pytest.raises(UserError, match="line 2"):
        compare.plot_runs({"lstm": run}, tmp_path / "damaged.png")


def _decay_init_results(T=12):
    k = list(range(T))

    def probe(slope):
        mean = [slope * i for i in k]
        return {"mean": mean, "min": [m - 0.2 for m in mean], "max": [m + 0.2 for m in mean]}

    settings = {}
    for name, slope in (("rnn", -3.0), ("lstm", -0.9), ("gru", -2.0), ("lstm_fb0", -1.5),
                        ("lstm_chrono", -0.01), ("rnn_scale0.5", -4.0), ("rnn_scale1.5", -1.0),
                        ("janet", -0.05), ("indrnn", -0.5)):
        arch = name.split("_")[0]
        e = {"k": k, "options": {"arch": arch}, "hidden": probe(slope) | {
            "fitted_rate_log10_per_step": slope}, "bound_rate_log10_per_step": 0.0}
        if arch == "lstm":
            e |= {"cell": probe(slope / 2), "cec": probe(slope * 1.5)}
        settings[name] = e
    settings["rnn_scale1.5"]["options"]["recurrent_scale"] = 1.5
    return {"config": {"seq_len": T, "seeds": 2, "hidden": 4}, "settings": settings}


def test_experiment_figures_follow_the_style(tmp_path, monkeypatch):
    """The figures of experiments/*.py, on synthetic or committed results."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.syspath_prepend(str(root / "experiments"))
    figs, saved = [], []
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, path, *a, **k: (figs.append(fig), saved.append(Path(path).name),
                                                    Path(path).write_bytes(b"png")))
    import decay_init
    import imdb_compare
    import imdb_gradients
    import mixed_precision
    import stability

    decay_init.plot(_decay_init_results(), tmp_path)
    imdb = root / "experiments" / "results" / "imdb"
    for name in ("results.json", "curves.csv"):
        (tmp_path / name).write_bytes((imdb / name).read_bytes())
    imdb_compare.plot(tmp_path)
    imdb_gradients.plot(tmp_path / "g.png",
                        json.loads((imdb / "gradients.json").read_text())["records"])
    mixed_precision.plot(json.loads((root / "experiments" / "results" / "mixed_precision"
                                     / "results.json").read_text()), tmp_path / "mp.png")
    summary = [{"arch": a, "clip": c, "diverged": d, "seeds": 3, "diverged_fraction": d / 3}
               for a, c, d in (("rnn", None, 3), ("rnn", 1.0, 0), ("lstm", None, 0))]
    stability.plot({"summary": summary, "config": {"seq_len": 10, "lr": 0.1, "steps": 5,
                                                   "seeds": 3, "hidden": 4}}, tmp_path / "s.png")
    assert len(figs) == 8
    for fig in figs:
        for ax in fig.axes:
            assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()
            if ax.get_yscale() == "log":
                _check_log_ticks(ax, ax.get_title())
    assert saved[:4] == ["decay_init.png", "decay_forget_bias.png", "decay_rnn_scale.png",
                         "decay_init_cells.png"], saved


def test_a_real_render_is_a_png(tmp_path, probe_results):
    path = probes.plot_loss_grad(probe_results, tmp_path / "lg.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _lengths(*splits):
    rng = np.random.default_rng(1)
    return {s: {"tokens": rng.integers(5, 80, 10), "label": np.array([0, 1] * 5)} for s in splits}


def test_imdb_figures_with_missing_splits(tmp_path, monkeypatch):
    """A test split only: the histogram and its marks come from the test split and say so; no
    labelled split or no class counts at all: a ValueError that says what is missing."""
    figs = []
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, path, *a, **k: (figs.append(fig), Path(path).touch()))
    summary = {"median": 33, "p90": 70, "p99": 78, "frac_100_300": 0.0, "frac_gt_1000": 0.0}
    stats = {"counts": {"test": {"neg": 5, "pos": 5}}, "tokens": {"test": {"all": summary}}}
    imdb.plot_length_histogram(_lengths("test"), stats, tmp_path / "hist.png")
    ax = figs[-1].axes[0]
    assert "test (10 reviews)" in ax.get_title() and "train" not in ax.get_title()
    assert "median = 33" in ax.get_legend_handles_labels()[1]
    imdb.plot_sentiment(stats, tmp_path / "sentiment.png")
    with pytest.raises(ValueError, match="neither a train nor a test split"):
        imdb.plot_length_histogram(_lengths("unsupervised"), stats, tmp_path / "h.png")
    with pytest.raises(ValueError, match="neither a train nor a test split"):
        imdb.plot_length_box({}, tmp_path / "b.png")
    with pytest.raises(ValueError, match="no tokens summary for 'labelled'"):
        imdb.plot_length_histogram(_lengths("train", "test"), stats, tmp_path / "h.png")
    with pytest.raises(ValueError, match="no class counts for train, test, unsupervised"):
        imdb.plot_sentiment({"counts": {}}, tmp_path / "s.png")


def _sweep_row(tmp_path, arch, T, per_seed, chrono=None, baseline=0.1):
    """A sweep_lag results row whose run's summary.json holds the per-seed final losses."""
    run = tmp_path / f"{arch}_T{T}"
    run.mkdir()
    (run / "summary.json").write_text(json.dumps(
        {"final": {"eval/loss": {"per_seed": [baseline * v for v in per_seed]}},
         "task": {"baseline": baseline}}))
    v = np.array(per_seed)
    return {"task": "adding", "arch": arch, "seq_len": T, "hidden": 8, "chrono": chrono,
            "loss_over_baseline_mean": v.mean(), "loss_over_baseline_sd": v.std(ddof=1),
            "run_dir": str(run)}


def test_lag_sweep_bars_stay_above_zero_on_the_log_axis(tmp_path, monkeypatch):
    """Seeds at 0.01 and 0.9 of the baseline: mean 0.455 ± sd 0.63 would reach below 0; the
    figure draws each seed and their geometric mean with a bar of ± 1 sd of log10 instead."""
    figs = []
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, path, *a, **k: (figs.append(fig), Path(path).touch()))
    rows = [_sweep_row(tmp_path, "rnn", 10, [0.01, 0.9]), _sweep_row(tmp_path, "rnn", 20, [0.9, 1.0]),
            _sweep_row(tmp_path, "lstm", 10, [0.001, 0.002], chrono=10.0),
            {"task": "adding", "arch": "lstm", "seq_len": 20, "hidden": 8, "chrono": 20.0,
             "loss_over_baseline_mean": 0.5, "loss_over_baseline_sd": 0.1}]
    training.plot_lag_sweep(rows, tmp_path / "lag.png")
    ax = figs[-1].axes[0]
    (bars,) = [c for c in ax.containers if c.has_yerr and c.get_label() == "tanh RNN"]
    segments = np.concatenate(bars.lines[2][0].get_segments())
    assert (segments[:, 1] > 0).all(), segments
    centre = np.asarray(bars.lines[0].get_ydata(), dtype=float)
    np.testing.assert_allclose(centre, [np.sqrt(0.009), np.sqrt(0.9)])
    dots = [sorted(np.asarray(line.get_ydata(), dtype=float)) for line in ax.get_lines()
            if list(line.get_xdata()) == [10, 10]]
    assert any(np.allclose(d, [0.01, 0.9]) for d in dots), dots
    title, labels = ax.get_title(), ax.get_legend_handles_labels()[1]
    assert "geometric mean over seeds" in title and "± 1 sd of log10" in title
    assert "chrono T_max=T for LSTM" in title and "mean ± 1 sd" not in title
    assert "one seed" in labels and any("per-seed values not found" in la for la in labels)


def test_titles_and_labels_name_what_is_drawn(tmp_path, monkeypatch, probe_results):
    """No LSTM forget bias in a title without an LSTM; the cell panel names every cell in it;
    σ_max dots are not called a Frobenius norm; one seed is "1 seed"."""
    figs = []
    monkeypatch.setattr(plt.Figure, "savefig",
                        lambda fig, path, *a, **k: (figs.append(fig), Path(path).touch()))
    norms = list(np.linspace(0.1, 1, K))
    cfg = {"hidden": 4, "forget_bias": 1.0, "chrono": None}
    states.plot_state_norms({"config": cfg, "state_norms": {"rnn": norms, "gru": norms}},
                            tmp_path / "s.png")
    assert "forget bias" not in figs[-1].axes[0].get_title()
    assert "default init" in figs[-1].axes[0].get_title()
    states.plot_state_norms({"config": cfg, "state_norms": {"rnn": norms, "lstm": norms}},
                            tmp_path / "s2.png")
    assert "forget bias 1" in figs[-1].axes[0].get_title()
    janet = dict(_probe_record("lstm", -0.2), arch="janet")
    rnn = dict(_probe_record("rnn", -2.0), spectral_k=[0, 5], log10_spectral=[0.0, -9.0])
    probes.plot_decay({"config": cfg, "archs": {"rnn": rnn, "lstm": _probe_record("lstm", -1.0),
                                                "janet": janet}}, tmp_path / "d.png")
    left, right = figs[-1].axes
    assert right.get_title().startswith("LSTM, JANET:"), right.get_title()
    assert "σ_max" in left.get_ylabel() and "σ_max" not in right.get_ylabel()
    probes.plot_decay({"config": cfg, "archs": {"rnn": rnn, "gru": _probe_record("gru", -3.0)}},
                      tmp_path / "d2.png")
    assert "forget bias" not in figs[-1].axes[0].get_title()
    records = [{"step": s, "eval/loss": [0.2 / (1 + s)]} for s in (0, 10)]
    training.plot_curves(records, tmp_path / "c.png")
    (label,) = [la for la in figs[-1].axes[0].get_legend_handles_labels()[1] if "held-out" in la]
    assert label == "held-out loss (1 seed)", label
