"""Commands over trained runs: ``probe --checkpoint``, ``train --arch a,b``, ``--tensorboard``,
progress in a log, and ``lstm-jax plot``.

One tiny run is trained in-process (module scope; LSTM, H=4, T=8, 2 seeds, checkpoints at steps 2
and 4) with its stderr captured (not a terminal) and a TensorBoard writer attached.
"""

import contextlib
import io
import json
import struct
from pathlib import Path

import jax
import numpy as np
import pytest

from lstm_jax.cli import main
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError

CFG = TrainConfig(task="adding", seq_len=8, hidden=4, steps=4, batch=4, seeds=2, seed=3,
                  eval_every=2, eval_size=4, checkpoint_every=2, keep_checkpoints=3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from lstm_jax.tensorboard import MetricsWriter
    from lstm_jax.train import train

    out = tmp_path_factory.mktemp("runs") / "lstm"
    writer = MetricsWriter(out)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        summary = train(CFG, out, progress=True, on_metrics=writer.write)
    writer.close()
    assert summary["status"] == "completed"
    return out, err.getvalue()


def _cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


# --------------------------------------------------------------------- progress in a log

def test_progress_off_a_terminal_is_plain_periodic_lines(trained):
    _, err = trained
    assert "\r" not in err and "\x1b" not in err
    lines = err.strip().splitlines()
    assert lines[0].startswith("first step (XLA compilation included) took ")
    steps = [line for line in lines[1:] if line.startswith("step ")]
    assert len(lines) <= 1 + 11 and len(steps) == len(lines) - 1  # ≤ one line per 10 %
    assert steps[-1].startswith(f"step {CFG.steps}/{CFG.steps} (100%)") and "baseline" in steps[-1]


def test_plain_progress_prints_every_tenth():
    from lstm_jax.progress import PlainProgress

    sink = io.StringIO()
    bar = PlainProgress(1000, 0, sink, seconds=1e9)
    for _ in range(1000):
        bar.update(1)
    bar.close()
    lines = sink.getvalue().splitlines()
    assert [int(line.split()[1].split("/")[0]) for line in lines] == list(range(100, 1001, 100))


# ---------------------------------------------------------------------------- TensorBoard

def _events(path: Path):
    """(step, tag, value) of every scalar in a TFRecord event file, read with its protobufs."""
    from tensorboardX.proto import event_pb2

    data, pos, out = path.read_bytes(), 0, []
    while pos < len(data):
        (n,) = struct.unpack("<Q", data[pos:pos + 8])
        event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
        pos += 12 + n + 4
        out += [(event.step, v.tag, v.simple_value) for v in event.summary.value]
    return out


def test_tensorboard_scalars_equal_metrics_jsonl(trained):
    out, _ = trained
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for i, seed in enumerate(range(CFG.seed, CFG.seed + CFG.seeds)):
        files = list((out / "tensorboard" / f"seed_{seed}").glob("events.out.tfevents.*"))
        assert len(files) == 1
        got = {(s, tag): v for s, tag, v in _events(files[0])}
        want = {}
        for r in records:
            want[(r["step"], "lr")] = r["lr"]
            for key in ("train/loss", "eval/loss"):
                want[(r["step"], key)] = r[key][i]
        assert set(got) == set(want)
        for key, value in want.items():
            assert got[key] == np.float32(value), key  # event files hold float32


def test_tensorboard_without_the_library_names_the_extra(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import fails
    code, out, err = _cli(["train", "--steps", "2", "--tensorboard", "--out", tmp_path / "r"],
                          capsys)
    assert code == 2 and "lstm_jax[tensorboard]" in err and "tensorboardX" in err
    assert out == "" and not (tmp_path / "r").exists()


# ----------------------------------------------------------------------- probe --checkpoint

@pytest.mark.parametrize("flags, fragments", [
    (["--hidden", "8"], ["--hidden=8 contradicts", "hidden=4"]),
    (["--arch", "gru"], ["--arch='gru' contradicts", "arch='lstm'"]),
    (["--arch", "rnn,lstm"], ["--arch='rnn,lstm' contradicts"]),
    (["--layers", "2"], ["--layers=2 contradicts", "layers=1"]),
    (["--task", "copy"], ["--task='copy' contradicts", "task='adding'"]),
    (["--forget-bias", "2"], ["--forget-bias=2.0 contradicts", "forget_bias=1.0"]),
    (["--recurrent-init", "normal"], ["--recurrent-init='normal' contradicts"]),
    (["--features", "3"], ["--features=3 does not apply"]),
    (["--seed-index", "2"], ["--seed-index=2", "choose 0..1"]),
    (["--step", "3"], ["--step=3 has no checkpoint", "saved steps: 2, 4"]),
    (["--layer", "1"], ["--layer=1 must be in 0..0"]),
])
def test_probe_flags_that_contradict_the_checkpoint_are_errors(trained, flags, fragments,
                                                               tmp_path, capsys):
    out, _ = trained
    code, _, err = _cli(["probe", "--checkpoint", out, *flags, "--out", tmp_path / "p"], capsys)
    assert code == 2 and err.startswith("lstm-jax probe: error: ") and err.count("\n") == 1, err
    for frag in fragments:
        assert frag in err, (frag, err)
    assert not (tmp_path / "p").exists()


def test_probe_flags_that_agree_with_the_checkpoint_are_fine():
    from types import SimpleNamespace

    from lstm_jax.cli.probe import _check_flags_against

    args = SimpleNamespace(checkpoint="run", given=frozenset({"arch", "hidden", "task"}),
                           arch="lstm", hidden=4, task="adding", seed_index=1, layer=0)
    _check_flags_against(args, CFG)
    with pytest.raises(UserError, match="--hidden=5 contradicts"):
        _check_flags_against(SimpleNamespace(**{**vars(args), "hidden": 5}), CFG)


def test_probe_checkpoint_probes_the_chosen_step_seed_and_length(trained, tmp_path, capsys,
                                                                 monkeypatch):
    """The CLI's record equals lstm_jax.probes.probe of the model restored by hand from the
    orbax checkpoint of step 2, seed index 1, on T=12 inputs of the task."""
    from flax import nnx

    from lstm_jax.checkpoint import Checkpoints
    from lstm_jax.plots import probes as probe_plots
    from lstm_jax.probes import head_loss, probe
    from lstm_jax.sharding import data_mesh
    from lstm_jax.steps import build_programs, seed_keys
    from lstm_jax.tasks import make_task

    out, _ = trained
    titles = []
    real = probe_plots.plot_decay
    monkeypatch.setattr(probe_plots, "plot_decay",
                        lambda results, path, **kw: titles.append(kw.get("title")) or real(
                            results, path, **kw))
    dest = tmp_path / "p"
    code, stdout, err = _cli(["probe", "--checkpoint", out, "--step", "2", "--seed-index", "1",
                              "--seq-len", "12", "--batch", "4", "--out", dest], capsys)
    assert code == 0, err
    got = json.loads((dest / "probe.json").read_text())
    cfg = got["config"]
    assert {k: cfg[k] for k in ("checkpoint", "step", "seed_index", "run_seed", "arch", "hidden",
                                "seq_len", "trained_seq_len", "batch")} == {
        "checkpoint": str(out), "step": 2, "seed_index": 1, "run_seed": CFG.seed + 1,
        "arch": "lstm", "hidden": 4, "seq_len": 12, "trained_seq_len": 8, "batch": 4}
    assert got["k"] == list(range(12))
    # the batch comes from validation (test stays for the once-scored evaluation), and the
    # exact sweep records no Hutchinson sample count
    assert cfg["probe_split"] == "validation" and cfg["samples"] is None
    assert titles == ["Trained LSTM: adding, T=8, step 2, seed 4; probed at T=12"]

    # the reference: restore step 2 with the checkpoint API, take model 1, probe T=12 inputs
    progs = build_programs(CFG, data_mesh())
    like = jax.eval_shape(progs.init, seed_keys(CFG)["init"])
    ckpts = Checkpoints(out / "checkpoints")
    state = ckpts.restore(2, like)
    ckpts.close()
    model = nnx.merge(progs.graphdef, jax.tree.map(lambda a: a[1], state["params"]))
    task = make_task("adding", 12)
    batch = task.eval_set(task.device_data(), jax.random.key(0 + 1), 4)
    ref = probe(model.recurrence, model.inputs(batch.x), batch.mask, method="exact",
                loss_fn=head_loss(model, batch, task.loss), key=jax.random.key(0))
    for key in ("log10_hidden", "log10_cell", "log10_loss_grad"):
        np.testing.assert_allclose(got["archs"]["lstm"][key], ref[key], rtol=1e-5, atol=1e-6)
    # which seed index is taken matters: the two models differ (so the match above picks one)
    first, second = (jax.tree.leaves(jax.tree.map(lambda a, i=i: a[i], state["params"]))
                     for i in (0, 1))
    assert any(not np.array_equal(x, y) for x, y in zip(first, second, strict=True))


# ----------------------------------------------------------------------------- train --arch

def _fake_train(calls):
    """Stands in for lstm_jax.train.train: records its call and writes a run's files."""
    def fake(cfg, out, *, resume=False, probe_fn=None, progress=True, on_metrics=None, **kw):
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        calls.append((cfg, out, resume))
        (out / "config.json").write_text(cfg.to_json())
        with open(out / "metrics.jsonl", "a") as f:
            for step in (1, 2):
                f.write(json.dumps({"step": step, "baseline": 0.1667, "lr": 1e-3,
                                    "train/loss": [0.3 / step], "eval/loss": [0.25 / step]})
                        + "\n")
        return {"status": "completed", "final": {"eval/loss": {"mean": 0.125, "sd": 0.0}},
                "task": {"loss": "mse", "baseline": 0.1667, "baseline_note": "mean"},
                "steps": cfg.steps, "wall_time_s": 0.1, "parameters_per_model": 10}
    return fake


def test_train_several_archs_into_out_arch_and_resume_each(tmp_path, monkeypatch, capsys):
    import lstm_jax.train

    calls = []
    monkeypatch.setattr(lstm_jax.train, "train", _fake_train(calls))
    out = tmp_path / "cmp"
    flags = ["--task", "copy", "--seq-len", "12", "--hidden", "6", "--steps", "5",
             "--no-progress"]
    code, stdout, err = _cli(["train", "--arch", "rnn,gru", *flags, "--out", out], capsys)
    assert code == 0, err
    assert [(c.arch, o, r) for c, o, r in calls] == [("rnn", out / "rnn", False),
                                                     ("gru", out / "gru", False)]
    assert calls[0][0].replace(arch="gru") == calls[1][0]  # the same settings otherwise
    assert stdout.count("training 1 × ") == 2 and (out / "curves.png").stat().st_size > 1000
    calls.clear()
    code, stdout, err = _cli(["train", "--out", out, "--resume", "--steps", "9", "--no-progress"],
                             capsys)
    assert code == 0, err
    assert [(c.arch, c.steps, o, r) for c, o, r in calls] == [("gru", 9, out / "gru", True),
                                                              ("rnn", 9, out / "rnn", True)]
    calls.clear()
    code, stdout, err = _cli(["train", "--arch", "gru", "--out", out, "--resume"], capsys)
    assert code == 0 and [(c.arch, o, r) for c, o, r in calls] == [("gru", out / "gru", True)]
    calls.clear()
    code, stdout, err = _cli(["train", "--arch", "rnn,lstm", "--out", out, "--resume"], capsys)
    assert code == 2 and f"{out / 'lstm' / 'config.json'} does not exist" in err and not calls


def test_train_refuses_a_used_out_before_printing(tmp_path, monkeypatch, capsys):
    import lstm_jax.train

    calls = []
    monkeypatch.setattr(lstm_jax.train, "train", _fake_train(calls))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    code, stdout, err = _cli(["train", "--out", tmp_path / "run"], capsys)
    assert code == 2 and "already holds a run; pass --resume" in err
    assert stdout == "" and not calls
    (tmp_path / "cmp" / "gru" / "checkpoints").mkdir(parents=True)  # the second arch is used
    code, stdout, err = _cli(["train", "--arch", "rnn,gru", "--out", tmp_path / "cmp"], capsys)
    assert code == 2 and "gru" in err and stdout == "" and not calls


@pytest.mark.slow
def test_train_two_archs_for_real(tmp_path, capsys):
    out = tmp_path / "cmp"
    code, stdout, err = _cli(["train", "--arch", "rnn,lstm", "--seq-len", "6", "--hidden", "4",
                              "--steps", "2", "--batch", "4", "--eval-every", "2",
                              "--eval-size", "4", "--no-progress", "--out", out], capsys)
    assert code == 0, err
    for arch in ("rnn", "lstm"):
        assert json.loads((out / arch / "config.json").read_text())["arch"] == arch
        assert json.loads((out / arch / "summary.json").read_text())["status"] == "completed"


# ------------------------------------------------------------------------------- plot

def _write_run(path: Path, arch: str, seq_len: int, eval_loss, baseline=0.1667, seeds=2,
               accuracy=None):
    path.mkdir(parents=True)
    (path / "config.json").write_text(TrainConfig(arch=arch, seq_len=seq_len).to_json())
    with open(path / "metrics.jsonl", "w") as f:
        for i, v in enumerate(eval_loss):
            rec = {"step": 10 * (i + 1), "baseline": baseline, "lr": 1e-3,
                   "train/loss": [v * 1.1] * seeds,
                   "eval/loss": [v * (1 + 0.1 * s) for s in range(seeds)]}
            if accuracy is not None:
                rec["eval/accuracy"] = [accuracy[i]] * seeds
            f.write(json.dumps(rec) + "\n")
    return path


def _write_probes(path: Path, steps=(0, 10, 20), seeds=(0, 1), T=6):
    with open(path / "probes.jsonl", "w") as f:
        for step in steps:
            for seed in seeds:
                k = list(range(T))
                f.write(json.dumps({"step": step, "seed": seed, "arch": "lstm", "k": k,
                                    "log10_hidden": [-0.1 * j * (1 + step / 10) for j in k],
                                    "log10_cell": [-0.05 * j for j in k]}) + "\n")


def _labelled(fig):
    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):  # a colorbar labels its one axis
            assert ax.get_ylabel() or ax.get_xlabel()
            continue
        assert ax.get_xlabel() and ax.get_ylabel(), ax.get_title()


def test_plot_run_curves_overlays_runs_with_labels_and_baseline(tmp_path):
    from lstm_jax.plots.runs import plot_run_curves

    a = _write_run(tmp_path / "a", "lstm", 50, [0.2, 0.1, 0.05])
    b = _write_run(tmp_path / "b", "rnn", 50, [0.2, 0.18, 0.17])
    fig = plot_run_curves([a, b], tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000
    _labelled(fig)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0].startswith("arch=lstm") and texts[1].startswith("arch=rnn")
    assert any(t.startswith("memoryless baseline 0.1667") for t in texts)
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[0].get_ydata(), [0.2 * 1.05, 0.1 * 1.05, 0.05 * 1.05])
    np.testing.assert_allclose(lines[0].get_xdata(), [10, 20, 30])
    assert ax.get_yscale() == "log" and "adding" in ax.get_title() and "T=50" in ax.get_title()


def test_plot_run_curves_follows_the_shared_style(tmp_path):
    """Architecture colours, the legend outside the axes, the init in the title, accuracy in %."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_hex

    from lstm_jax.plots.runs import plot_run_curves
    from lstm_jax.plots.style import ACCURACY_LABEL, ARCH_COLORS

    a = _write_run(tmp_path / "a", "rnn", 50, [0.2, 0.18], accuracy=[0.5, 0.6])
    b = _write_run(tmp_path / "b", "lstm", 50, [0.2, 0.1], accuracy=[0.5, 0.9])
    fig = plot_run_curves([a, b], tmp_path / "c.png")
    ax = fig.axes[0]
    assert [to_hex(line.get_color()) for line in ax.get_lines()[:2]] == [ARCH_COLORS["rnn"],
                                                                          ARCH_COLORS["lstm"]]
    canvas = FigureCanvasAgg(fig)  # the figure is closed once saved: lay it out again
    canvas.draw()
    renderer = canvas.get_renderer()
    assert ax.get_legend().get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
    assert "forget bias 1" in ax.get_title()
    fig = plot_run_curves([a, b], tmp_path / "acc.png", metric="eval/accuracy")
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.get_lines()[1].get_ydata(), [50, 90])
    assert ax.get_ylabel().endswith(ACCURACY_LABEL) and ax.get_yscale() == "linear"


def test_plot_probe_heatmap_masks_log10_zero(tmp_path):
    """log10 0 (−1e308, an exactly zero Jacobian) and None are blank in the heatmap and not
    drawn in the curves, so the other cells keep their colour range; the cec curves are dotted."""
    from lstm_jax.plots.runs import plot_probe_heatmap
    from lstm_jax.plots.style import line_style

    run = _write_run(tmp_path / "r", "lstm", 4, [0.2])
    with open(run / "probes.jsonl", "w") as f:
        for step in (0, 10):
            f.write(json.dumps({"step": step, "seed": 0, "arch": "lstm", "k": [0, 1, 2, 3],
                                "log10_hidden": [0.0, 0.6, -1.0, -1e308],
                                "log10_cec": [0.0, -0.5, None, -1e308]}) + "\n")
    fig = plot_probe_heatmap(run, tmp_path / "h.png")
    mesh = fig.axes[0].collections[0]
    z = np.ma.filled(np.ma.asarray(mesh.get_array(), dtype=float), np.nan).reshape(2, 4)
    assert np.isnan(z[:, 3]).all() and mesh.get_clim() == (-1.0, 0.6)
    curve = np.asarray(fig.axes[1].get_lines()[0].get_ydata(), dtype=float)
    assert np.isnan(curve[3]) and np.all(curve[:3] > 1e-2), curve
    fig = plot_probe_heatmap(run, tmp_path / "cec.png", probe="cec")
    assert {line.get_linestyle() for line in fig.axes[1].get_lines()} == {line_style("cec")}
    assert "forget-gate product" in fig.axes[1].get_ylabel()


def test_plot_probe_heatmap_from_probes_jsonl(tmp_path):
    from lstm_jax.plots.runs import plot_probe_heatmap

    run = _write_run(tmp_path / "r", "lstm", 6, [0.2])
    _write_probes(run)
    fig = plot_probe_heatmap(run, tmp_path / "h.png", seed=1)
    assert (tmp_path / "h.png").stat().st_size > 1000
    _labelled(fig)
    mesh = fig.axes[0].collections[0]
    want = np.array([[-0.1 * j * (1 + s / 10) for j in range(6)] for s in (0, 10, 20)])
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 6), want)
    assert "seed 1" in fig.axes[0].get_title()


def test_plot_cli(tmp_path, capsys):
    a = _write_run(tmp_path / "a", "lstm", 50, [0.2, 0.1])
    b = _write_run(tmp_path / "b", "lstm", 100, [0.2, 0.15])
    _write_probes(a)
    code, stdout, err = _cli(["plot", a, b, "--out", tmp_path / "c.png"], capsys)
    assert code == 0 and (tmp_path / "c.png").is_file(), err
    code, stdout, err = _cli(["plot", "--probes", a, "--probe", "cell", "--out", tmp_path / "h.svg"],
                             capsys)
    assert code == 0 and (tmp_path / "h.svg").is_file(), err
    for argv, message in [
        ([a, tmp_path / "nope", "--out", tmp_path / "x.png"], "is not a directory"),
        ([tmp_path, "--out", tmp_path / "x.png"], "has no metrics.jsonl"),
        (["--probes", b, "--out", tmp_path / "x.png"], "has no probes.jsonl; train with --probe-every"),
        (["--probes", a, b, "--out", tmp_path / "x.png"], "--probes draws one run"),
        ([a, "--metric", "eval/accuracy", "--out", tmp_path / "x.png"], "it has eval/loss, train/loss"),
        ([a, b, "--labels", "one", "--out", tmp_path / "x.png"], "--labels has 1 names for 2"),
        ([a, "--out", tmp_path / "x.txt"], "needs a figure file name"),
        (["--probes", a, "--seed", "7", "--out", tmp_path / "x.png"], "--seed=7 has no probes"),
    ]:
        code, _, err = _cli(["plot", *argv], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x.png").exists()


def test_plot_cli_refuses_flags_the_chosen_figure_ignores(tmp_path, capsys):
    a = _write_run(tmp_path / "a", "lstm", 50, [0.2, 0.1])
    _write_probes(a)
    for argv, message in [
        (["--probes", a, "--metric", "eval/loss"], "--metric sets the curves, which --probes"),
        (["--probes", a, "--labels", "x"], "--labels sets the curves"),
        (["--probes", a, "--metric", "train/loss", "--labels", "x"],
         "--metric and --labels set the curves"),
        ([a, "--probe", "cell"], "--probe sets the heatmap, which is drawn only with --probes"),
        ([a, "--seed", "0"], "--seed sets the heatmap"),
    ]:
        code, _, err = _cli(["plot", *argv, "--out", tmp_path / "x.png"], capsys)
        assert code == 2 and message in err and err.count("\n") == 1, (argv, err)
    assert not (tmp_path / "x.png").exists()
    code, _, err = _cli(["plot", "--probes", a, "--seed", "1", "--out", tmp_path / "h.png"],
                        capsys)
    assert code == 0, err
