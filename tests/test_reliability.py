"""Bad input is answered clearly; exploding gradients stop cleanly; checkpoints are checked.

The table below drives every entry point (CLI subcommands ``train``, ``probe``, ``demo``,
``eda``; config JSON; Python constructors and functions) with bad input. Each must give a
:class:`UserError` whose message is one line naming the field, the value and what is allowed; the
CLI exits with code 2 and prints that line and no traceback (argparse's own errors: usage + one
error line, also code 2). No case reaches a compile or the real IMDB archive: the bad archives are
built in ``tmp_path``.
"""

import contextlib
import gzip
import io
import json
import math
import tarfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from lstm_jax.cells import CellConfig
from lstm_jax.checkpoint import Checkpoints
from lstm_jax.cli import COMMANDS, build_parser, main
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError

TINY = ["--task", "adding", "--seq-len", "10", "--hidden", "8", "--steps", "4", "--batch", "4",
        "--eval-every", "2", "--eval-size", "4", "--no-progress"]


# ---------------------------------------------------------------- fixtures: bad files on disk

def _tar_gz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in members.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def small_archive(path, n=2):
    """The original layout with ``n`` reviews per split and class (too few for the real sizes)."""
    words = ["good film", "bad plot", "great acting", "dull story"]
    return _tar_gz(path, {f"aclImdb/{s}/{c}/{i}_7.txt": f"{words[i % 4]} number {i}"
                          for s in ("train", "test") for c in ("pos", "neg") for i in range(n)})


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("LSTM_JAX_CACHE", str(tmp_path / "cache"))
    f = {"dir": tmp_path, "file": tmp_path / "a_file", "missing": tmp_path / "missing.tar.gz",
         "garbage": tmp_path / "garbage.tar.gz", "small": small_archive(tmp_path / "small.tar.gz"),
         "layout": _tar_gz(tmp_path / "layout.tar.gz", {"reviews/r1.txt": "hello"}),
         "truncated": tmp_path / "truncated.tar.gz"}
    f["file"].write_text("not a directory")
    f["garbage"].write_bytes(b"\x00not a gzip at all" * 10)
    whole = f["small"].read_bytes()
    f["truncated"].write_bytes(whole[: len(whole) // 2])
    # a run directory whose checkpoint was written by a GRU (config.json says LSTM)
    lstm = TrainConfig(task="adding", seq_len=10, hidden=8, steps=4)
    other = tmp_path / "other_arch"
    other.mkdir()
    (other / "config.json").write_text(lstm.to_json())
    ck = Checkpoints(other / "checkpoints")
    ck.save(2, {"w": np.zeros(3, np.float32)}, {"config": lstm.replace(arch="gru").to_dict(),
                                                 "step": 2})
    ck.close()
    f["other_arch"] = other
    # a run directory with its config but no checkpoint directory
    nockpt = tmp_path / "no_ckpt"
    nockpt.mkdir()
    (nockpt / "config.json").write_text(lstm.to_json())
    f["no_ckpt"] = nockpt
    bad_json = tmp_path / "bad_json"
    bad_json.mkdir()
    (bad_json / "config.json").write_text("{hidden: 8")
    f["bad_json"] = bad_json
    return f


# ------------------------------------------------------------------------------ the table

def train_with(*flags):
    """A bad-input case: ``lstm-jax train`` on the tiny task with ``flags`` added."""
    return lambda f: cli("train", *TINY, *flags, "--out", f["dir"])


def cli(*argv):
    return ("cli", [str(a) for a in argv])


def api(fn):
    return ("api", fn)


def _recurrence_call(mask_shape):
    from lstm_jax.recurrence import Recurrence

    model = Recurrence(3, CellConfig("lstm", 4), rngs=nnx.Rngs(0))
    model(jnp.zeros((2, 5, 3)), jnp.ones(mask_shape, bool))


def _model(**kw):
    from lstm_jax.model import SequenceModel

    args = dict(input_kind="dense", in_features=3, out_features=1, cell=CellConfig("lstm", 4),
                rngs=nnx.Rngs(0))
    return SequenceModel(**{**args, **kw})


def _imdb_task(path, **kw):
    from lstm_jax.tasks import imdb as imdb_task
    from lstm_jax.tasks import make_task

    old = imdb_task.EXPECTED_SIZES
    imdb_task.EXPECTED_SIZES = None  # a small archive (restored below)
    try:
        return make_task("imdb", 10, data=str(path), **kw)
    finally:
        imdb_task.EXPECTED_SIZES = old


def _load_arrays(path, **kw):
    from lstm_jax.data import load_imdb_arrays

    return load_imdb_arrays(path, max_len=10, progress=False, use_cache=False,
                            expected_sizes=None, **kw)


# (id, case, fragments the message must contain: field, value, what is allowed)
CASES = [
    # train: names, sizes, ranges
    ("train-task", lambda f: cli("train", *TINY, "--task", "nope", "--out", f["dir"] / "o"),
     ["--task='nope'", "choose one of", "adding"]),
    ("train-arch", lambda f: cli("train", *TINY, "--arch", "transformer", "--out", f["dir"] / "o"),
     ["arch='transformer'", "rnn, lstm, gru"]),
    ("train-optimizer", train_with("--optimizer", "lion"),
     ["optimizer='lion'", "adam, rmsprop, sgd"]),
    ("train-schedule", train_with("--schedule", "step"),
     ["schedule='step'", "constant, cosine"]),
    ("train-readout", train_with("--readout", "median"),
     ["readout='median'", "task, last, mean, max"]),
    ("train-impl", train_with("--impl", "cudnn"),
     ["impl='cudnn'", "scan, fused"]),
    ("train-init", train_with("--recurrent-init", "xavier"),
     ["recurrent_init='xavier'", "orthogonal"]),
    ("train-hidden-0", train_with("--hidden", "0"),
     ["--hidden", "'0'", "positive integer"]),
    ("train-hidden-huge", train_with("--hidden", "100000"),
     ["hidden=100000", "at most 65536"]),
    ("train-layers-huge", train_with("--layers", "1000"),
     ["layers=1000", "at most 64"]),
    ("train-steps-absurd", train_with("--steps", "10000000000"),
     ["steps=10000000000", "at most"]),
    ("train-lr-nan", train_with("--lr", "nan"),
     ["--lr", "'nan'", "finite number"]),
    ("train-lr-negative", train_with("--lr", "-1"),
     ["lr=-1.0", "> 0"]),
    ("train-clip", train_with("--clip", "-2"),
     ["--clip", "'-2'", "> 0 (or 'none')"]),
    ("train-dropout", train_with("--dropout", "1.5"),
     ["dropout=1.5", "[0, 1)"]),
    ("train-momentum", train_with("--momentum", "1"),
     ["momentum=1.0", "[0, 1)"]),
    ("train-warmup", train_with("--warmup", "9"),
     ["warmup=9", "smaller than steps=4"]),
    ("train-scale", train_with("--recurrent-scale", "-1"),
     ["recurrent_scale=-1.0", "finite number ≥ 0"]),
    ("train-chrono", train_with("--chrono", "1"),
     ["chrono_tmax=1.0", "> 2"]),
    ("train-seq-len-task", lambda f: cli("train", *TINY, "--task", "adding_hochreiter",
                                         "--seq-len", "10", "--out", f["dir"] / "o"),
     ["seq_len=10", "not usable for task 'adding_hochreiter'", "≤ seq_len ≤"]),
    ("train-data-option", train_with("--vocab-size", "50"),
     ["data/vocab_size/truncate", "task='adding'", "imdb"]),
    ("train-batch-0", train_with("--batch", "0"),
     ["--batch", "'0'", "positive integer"]),
    # train: output directory, resume, checkpoints
    ("train-out-file", lambda f: cli("train", *TINY, "--out", f["file"]),
     ["--out=", "a_file", "is a file", "output directory is needed"]),
    ("train-resume-nothing", lambda f: cli("train", "--out", f["dir"] / "empty", "--resume"),
     ["--resume", "config.json does not exist", "nothing to resume"]),
    ("train-resume-no-ckpt", lambda f: cli("train", "--out", f["no_ckpt"], "--resume",
                                           "--no-progress"),
     ["--resume", "no checkpoint in", "run without --resume"]),
    ("train-resume-other-arch", lambda f: cli("train", "--out", f["other_arch"], "--resume",
                                              "--no-progress"),
     ["another configuration", "arch: checkpoint has 'gru', this run has 'lstm'"]),
    ("train-resume-other-flags", lambda f: cli("train", "--out", f["other_arch"], "--resume",
                                               "--hidden", "16"),
     ["flags disagree", "--hidden was 8, now 16"]),
    ("train-resume-bad-json", lambda f: cli("train", "--out", f["bad_json"], "--resume"),
     ["config.json", "is not valid JSON"]),
    # train --task imdb: data archives
    ("train-imdb-missing", lambda f: cli("train", *TINY, "--task", "imdb", "--data", f["missing"],
                                         "--out", f["dir"] / "o"),
     ["IMDB archive", "missing.tar.gz", "does not exist", "expected aclImdb_v1.tar.gz"]),
    ("train-imdb-garbage", lambda f: cli("train", *TINY, "--task", "imdb", "--data", f["garbage"],
                                         "--out", f["dir"] / "o"),
     ["garbage.tar.gz", "not a readable gzip-compressed tar archive", "expected aclImdb_v1"]),
    ("train-imdb-truncated", lambda f: cli("train", *TINY, "--task", "imdb", "--data",
                                           f["truncated"], "--out", f["dir"] / "o"),
     ["truncated.tar.gz", "not a readable gzip-compressed tar archive"]),
    ("train-imdb-layout", lambda f: cli("train", *TINY, "--task", "imdb", "--data", f["layout"],
                                        "--out", f["dir"] / "o"),
     ["layout.tar.gz", "no reviews for split 'train'", "aclImdb/train/{pos,neg}/"]),
    ("train-imdb-sizes", lambda f: cli("train", *TINY, "--task", "imdb", "--data", f["small"],
                                       "--out", f["dir"] / "o"),
     ["split 'train' has 4 reviews", "expected 25,000"]),
    # probe / demo / eda
    ("probe-arch", lambda f: cli("probe", "--arch", "rnn,cnn", "--out", f["dir"] / "p"),
     ["--arch='cnn'", "rnn, lstm, gru"]),
    ("probe-method", lambda f: cli("probe", "--method", "guess", "--out", f["dir"] / "p"),
     ["--method='guess'", "exact"]),
    ("probe-layer", lambda f: cli("probe", "--layer", "3", "--out", f["dir"] / "p"),
     ["--layer=3", "0..0", "--layers=1"]),
    ("probe-task", lambda f: cli("probe", "--task", "sorting", "--out", f["dir"] / "p"),
     ["task='sorting'", "adding"]),
    ("probe-out-file", lambda f: cli("probe", "--out", f["file"]), ["--out=", "is a file"]),
    ("probe-checkpoint-missing", lambda f: cli("probe", "--checkpoint", f["dir"] / "nothing",
                                               "--out", f["dir"] / "p"),
     ["config.json does not exist", "results file"]),
    ("probe-checkpoint-other-arch", lambda f: cli("probe", "--checkpoint", f["other_arch"],
                                                  "--out", f["dir"] / "p"),
     ["another configuration", "arch: checkpoint has 'gru', this run has 'lstm'"]),
    ("probe-seq-len", lambda f: cli("probe", "--seq-len", "-5", "--out", f["dir"] / "p"),
     ["--seq-len", "'-5'", "positive integer"]),
    ("demo-arch", lambda f: cli("demo", "--arch", ",", "--out", f["dir"] / "d"),
     ["--arch=','", "names no architecture", "rnn, lstm, gru"]),
    ("demo-train-steps", lambda f: cli("demo", "--train-steps", "-1", "--out", f["dir"] / "d"),
     ["--train-steps=-1", "≥ 0"]),
    ("demo-out-file", lambda f: cli("demo", "--out", f["file"]), ["--out=", "is a file"]),
    ("eda-dataset", lambda f: cli("eda", "mnist", "--out", f["dir"] / "e"),
     ["dataset", "'mnist'", "imdb"]),
    ("eda-missing", lambda f: cli("eda", "imdb", "--data", f["missing"], "--no-cache",
                                  "--out", f["dir"] / "e"),
     ["missing.tar.gz", "does not exist", "--data"]),
    ("eda-garbage", lambda f: cli("eda", "imdb", "--data", f["garbage"], "--no-cache",
                                  "--out", f["dir"] / "e"),
     ["garbage.tar.gz", "not a readable gzip-compressed tar archive"]),
    ("eda-layout", lambda f: cli("eda", "imdb", "--data", f["layout"], "--no-cache", "--any-size",
                                 "--no-unsup", "--out", f["dir"] / "e"),
     ["no reviews for split", "aclImdb_v1.tar.gz layout"]),
    ("eda-out-file", lambda f: cli("eda", "imdb", "--data", f["small"], "--out", f["file"]),
     ["--out=", "is a file"]),
    # config files / JSON
    ("json-invalid", lambda f: api(lambda: TrainConfig.from_json("{hidden: 8")),
     ["config is not valid JSON"]),
    ("json-not-object", lambda f: api(lambda: TrainConfig.from_json("[1, 2]")),
     ["JSON object", "list"]),
    ("json-unknown-field", lambda f: api(lambda: TrainConfig.from_dict({"hiden": 8})),
     ["unknown config fields ['hiden']", "known fields"]),
    ("json-wrong-type", lambda f: api(lambda: TrainConfig.from_json('{"hidden": "8"}')),
     ["hidden='8'", "positive integer"]),
    ("config-task", lambda f: api(lambda: TrainConfig(task="mnist")),
     ["task='mnist'", "adding"]),
    ("config-seed", lambda f: api(lambda: TrainConfig(seed=-1)), ["seed=-1", "integer ≥ 0"]),
    ("config-lr-inf", lambda f: api(lambda: TrainConfig(lr=math.inf)),
     ["lr=inf", "finite number"]),
    # Python API constructors
    ("cell-arch", lambda f: api(lambda: CellConfig(arch="transformer")),
     ["arch='transformer'", "rnn, lstm, gru"]),
    ("cell-hidden", lambda f: api(lambda: CellConfig(hidden=0)), ["hidden=0", "positive integer"]),
    ("cell-scale-nan", lambda f: api(lambda: CellConfig(recurrent_scale=math.nan)),
     ["recurrent_scale=nan", "finite number ≥ 0"]),
    ("cell-chrono-rnn", lambda f: api(lambda: CellConfig(arch="rnn", chrono_tmax=10.0)),
     ["chrono_tmax", "not rnn"]),
    ("recurrence-layers", lambda f: api(lambda: __import__("lstm_jax.recurrence").recurrence
                                        .Recurrence(3, CellConfig(), 0, rngs=nnx.Rngs(0))),
     ["layers=0", "positive integer"]),
    ("recurrence-mask-shape", lambda f: api(lambda: _recurrence_call((2, 4))),
     ["mask must have shape (batch, time)=(2, 5)", "got (2, 4)"]),
    ("recurrence-mask-rank", lambda f: api(lambda: _recurrence_call((2, 5, 1))),
     ["mask must have shape (batch, time)=(2, 5)", "got (2, 5, 1)"]),
    ("model-input-kind", lambda f: api(lambda: _model(input_kind="image")),
     ["input_kind='image'", "dense, symbols"]),
    ("model-dropout", lambda f: api(lambda: _model(dropout=1.0)), ["dropout=1.0", "[0, 1)"]),
    ("model-head", lambda f: api(lambda: _model(head="all")), ["head='all'", "last, per_step"]),
    ("make-task-name", lambda f: api(lambda: __import__("lstm_jax.tasks").tasks.make_task(
        "sorting", 10)), ["task='sorting'", "copy"]),
    ("make-task-len-type", lambda f: api(lambda: __import__("lstm_jax.tasks").tasks.make_task(
        "copy", "10")), ["seq_len='10'", "integer"]),
    ("make-task-imdb-vocab", lambda f: api(lambda: _imdb_task(f["small"], vocab_size=1000)),
     ["vocab_size=1000", "larger than the training split", "choose at most"]),
    ("load-imdb-vocab", lambda f: api(lambda: _load_arrays(f["small"], vocab_size=500)),
     ["vocab_size=500", "larger than the training split", "choose at most"]),
    ("load-imdb-missing", lambda f: api(lambda: _load_arrays(f["missing"])),
     ["missing.tar.gz", "does not exist"]),
    ("load-imdb-truncate", lambda f: api(lambda: _load_arrays(f["small"], truncate="middle")),
     ["truncate='middle'", "first, last"]),
]


def _run_cli(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = e.code
    cap = capsys.readouterr()
    return code, cap.err


@pytest.mark.parametrize("name,make,fragments", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line(name, make, fragments, files, capsys):
    kind, what = make(files)
    if kind == "cli":
        code, err = _run_cli(what, capsys)
        assert code == 2, (code, err)
        assert "Traceback" not in err
        lines = err.strip().splitlines()
        message = lines[-1]
        cmd = what[0]
        assert message.startswith(f"lstm-jax {cmd}: error: "), err
        # before it only argparse's usage lines or a progress bar, never a second error
        assert sum("error" in line.lower() for line in lines) == 1, err
    else:
        with pytest.raises(UserError) as info:
            what()
        message = str(info.value)
        assert "\n" not in message
    for frag in fragments:
        assert frag in message, (frag, message)


def test_table_is_large_enough():
    assert len(CASES) >= 30
    assert {k for k in ("train", "probe", "demo", "eda") if any(c[0].startswith(k) for c in CASES)} \
        == {"train", "probe", "demo", "eda"}


def test_debug_flag_shows_the_traceback(tmp_path):
    with pytest.raises(UserError, match="arch='transformer'"):
        main(["--debug", "train", *TINY, "--arch", "transformer", "--out", str(tmp_path)])


# --------------------------------------------------------------- fuzzing the argument parsing

VALUES = ["0", "-1", "1", "3", "10", "1e308", "1e-320", "nan", "inf", "-inf", "abc", "", "none",
          "lstm", "rnn,gru", "gru,,", "imdb", "adding", "copy", "exact", "cosine", "sgd", "-x",
          "--", "2.5", "99999999999999999999", "first"]


def _validate(command, args):
    """What each subcommand's ``run`` checks before doing any work."""
    from lstm_jax.cli.common import cell_config, parse_archs
    from lstm_jax.cli.train import plan
    from lstm_jax.probes import METHODS

    if command == "train":
        plan(args)
    elif command in ("plot", "evaluate", "compare"):
        args.func(args)  # checks its files first; none of them exists, so nothing is written
    elif command in ("probe", "demo"):
        if command == "probe":
            from lstm_jax.errors import check_choice

            check_choice("--method", args.method, METHODS)
        for arch in parse_archs(args.arch):
            cell_config(args, arch)


def _options(command):
    """``{option string: its default as a string (a valid value), "" if none, or None for a
    flag that takes no value}`` of a subcommand, without --help and --version."""
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return {o: None if a.nargs == 0 else "" if a.default is None else str(a.default)
            for a in sub.choices[command]._actions for o in a.option_strings
            if o not in ("-h", "--help", "--version")}


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in ("info", "archs")])
def test_fuzzed_argv_never_crashes(command, tmp_path):
    """Random flag/value pairs (odd values included) either stop at argparse (exit 2) or reach
    the command's own checks, which raise one-line UserErrors; nothing is written. The examples
    must reach those checks often enough for the test to mean something."""
    options = _options(command)
    def pair(o):  # a flag alone, or with its default, an odd value or random text
        if options[o] is None:
            return st.just((o,))
        return st.tuples(st.just(o), st.one_of(st.just(options[o] or "1"), st.sampled_from(VALUES),
                                               st.text(max_size=4)))
    positional = {"eda": ["imdb"], "plot": [str(tmp_path / "no_run")],
                  "evaluate": [str(tmp_path / "no_run")],
                  "compare": [str(tmp_path / "no_protocol.toml")]}.get(command, [])
    out = ["--out", str(tmp_path / "never_created")] if "--out" in options else []
    reached = []

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(pairs=st.lists(st.sampled_from(sorted(options)).flatmap(pair), max_size=4))
    def run(pairs):
        argv = [command, *positional, *(t for p in pairs for t in p), *out]
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as e:
                assert e.code == 2, (argv, sink.getvalue())
                return
            reached.append(argv)
            try:
                _validate(command, args)
            except UserError as e:
                assert "\n" not in str(e), (argv, str(e))
        assert not (tmp_path / "never_created").exists(), argv

    run()
    assert len(reached) >= 12, f"only {len(reached)} of 60 fuzzed argv got past argparse"


# ------------------------------------------------------------------------- numerics (CLI)

EXPLODE = ["train", "--task", "adding", "--seq-len", "20", "--arch", "rnn", "--hidden", "8",
           "--recurrent-scale", "1.5", "--optimizer", "sgd", "--momentum", "0", "--lr", "100",
           "--steps", "30", "--batch", "16", "--eval-every", "5", "--checkpoint-every", "5",
           "--eval-size", "16", "--no-progress"]


def test_exploding_gradients_without_clip_stop_cleanly(tmp_path, capsys):
    from lstm_jax.train import load_params

    out = tmp_path / "noclip"
    code = main([*EXPLODE, "--clip", "none", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("lstm-jax train: error: non-finite loss")
    assert "--clip" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged"
    bad = summary["diverged_at_step"]
    assert f"at step {bad} " in err
    kept = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert kept and kept[-1] <= bad and f"(step {kept[-1]})" in err
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(load_params(out)[1]))


def test_exploding_gradients_with_clip_stay_finite(tmp_path, capsys):
    from lstm_jax.metrics import read_jsonl
    from lstm_jax.train import load_params

    out = tmp_path / "clip"
    assert main([*EXPLODE, "--clip", "1.0", "--out", str(out)]) == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == 30
    for rec in read_jsonl(out / "metrics.jsonl"):
        assert all(math.isfinite(v) for v in rec["train/loss"] + rec["eval/loss"]), rec
    assert all(np.isfinite(np.asarray(a)).all() for a in jax.tree.leaves(load_params(out)[1]))


# ------------------------------------------------------------------ checkpoints and records

def test_silently_corrupted_checkpoint_is_never_loaded(tmp_path):
    """Same-length damage (no read error) is caught by the SHA-256; the previous one is used."""
    warnings = []
    ck = Checkpoints(tmp_path / "ck", keep=3, warn=warnings.append)
    like = {"w": jnp.zeros((64,), jnp.float32)}
    for step in (1, 2):
        ck.save(step, {"w": jnp.full((64,), float(step))}, {"step": step})
    data = [f for f in (tmp_path / "ck" / "2" / "state").rglob("*")
            if f.is_file() and f.parent.name == "d"]
    for f in data:  # flip every byte of the array data, keeping the files' sizes
        f.write_bytes(bytes(b ^ 0xFF for b in f.read_bytes()))
    step, state, meta = ck.restore_latest(like, quarantine=True)
    assert step == 1 and float(state["w"][0]) == 1.0
    assert len(warnings) == 1 and "checkpoint 2" in warnings[0] and "corrupt" in warnings[0]
    assert ck.steps() == [1] and (tmp_path / "ck.corrupt" / "2").is_dir()
    ck.save(2, {"w": jnp.full((64,), 2.0)}, {"step": 2})  # the step can be written again
    assert ck.restore_latest(like)[0] == 2
    ck.close()


def test_unfinished_save_is_removed_only_by_the_writer(tmp_path):
    ck = Checkpoints(tmp_path / "ck")
    ck.save(1, {"w": jnp.ones(3)}, {"step": 1})
    ck.close()
    tmp = tmp_path / "ck" / "2.orbax-checkpoint-tmp"
    (tmp / "state").mkdir(parents=True)
    reader = Checkpoints(tmp_path / "ck")  # e.g. `probe --checkpoint` during a save
    assert reader.steps() == [1] and tmp.is_dir()
    reader.close()
    said = []
    writer = Checkpoints(tmp_path / "ck", discard_incomplete=True, warn=said.append)
    assert writer.steps() == [1] and not tmp.exists()
    assert "checkpoint 2" in said[0] and "incomplete" in said[0]
    writer.close()


def test_metrics_torn_last_line_is_dropped_on_resume(tmp_path):
    from lstm_jax.metrics import append_jsonl, read_jsonl, truncate_after

    path = tmp_path / "metrics.jsonl"
    for step in (2, 4, 6):
        append_jsonl(path, {"step": step, "loss": [0.5]})
    with open(path, "a") as f:
        f.write('{"step": 8, "lo')  # the process died mid-write
    assert [r["step"] for r in read_jsonl(path)] == [2, 4, 6]
    truncate_after(path, 4)
    assert path.read_text() == "".join(json.dumps({"step": s, "loss": [0.5]}) + "\n"
                                       for s in (2, 4))


def test_gzip_magic_but_bad_stream(tmp_path, files):
    """A file that starts like gzip but is not one: the same one-line error."""
    from lstm_jax.data import load_imdb_arrays

    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(gzip.compress(b"plain text, not a tar archive" * 40))
    with pytest.raises(UserError, match="not a readable gzip-compressed tar archive"):
        load_imdb_arrays(bad, max_len=10, progress=False, use_cache=False, expected_sizes=None)
