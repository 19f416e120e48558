"""Run-folder integrity (issue: resume and bad-input holes): early interrupts, damaged records,
checkpoints without a digest, two processes on one folder, orbax's noise from broken checkpoints,
and the environment JAX reads at start-up. Each bad input gets one clear line (exit 2 on the CLI)."""

import gc
import json
import time

import jax.numpy as jnp
import numpy as np
import pytest

from lstm_jax.checkpoint import Checkpoints, CorruptCheckpoint
from lstm_jax.cli import main
from lstm_jax.config import TrainConfig
from lstm_jax.environment import MAX_CPU_DEVICES, check_environment
from lstm_jax.errors import UserError
from lstm_jax.io import run_lock
from lstm_jax.metrics import read_jsonl

# test_cli_runs' configuration: whichever module trains it second reads its programs from the
# shared compilation cache
TINY_CFG = TrainConfig(task="adding", seq_len=8, hidden=4, steps=4, batch=4, seeds=2, seed=3,
                       eval_every=2, eval_size=4, checkpoint_every=2, keep_checkpoints=3)


def _cli(argv, capsys):
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    return code, err


def _one_line_error(code, err, *fragments, command="train"):
    assert code == 2, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"lstm-jax {command}: error: "), err
    for frag in fragments:
        assert frag in last, (frag, last)


def _fake_run(path, cfg=TINY_CFG, step=2, metrics=None):
    """A run folder as `train` leaves it, with a checkpoint of dummy arrays (nothing compiled)."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(cfg.to_json())
    ck = Checkpoints(path / "checkpoints")
    ck.save(step, {"w": np.zeros(3, np.float32)}, {"config": cfg.to_dict(), "step": step})
    ck.close()
    if metrics is not None:
        (path / "metrics.jsonl").write_bytes(metrics)
    return path


GOOD = b'{"step": 2, "eval/loss": [0.1]}\n'


@pytest.mark.parametrize("name,damaged,line", [
    ("garbage", GOOD + b"not json at all\n" + GOOD, 2),
    ("binary", GOOD + b"\xff\xfe\x00\x81\n" + GOOD, 2),
    ("not-an-object", b"5\n" + GOOD, 1),
    ("no-step", GOOD + b'{"loss": 1}\n' + GOOD, 2),
])
def test_damaged_metrics_line_is_refused_not_truncated(tmp_path, capsys, name, damaged, line):
    run = _fake_run(tmp_path / name, metrics=damaged)
    code, err = _cli(["train", "--resume", "--no-progress", "--out", run], capsys)
    _one_line_error(code, err, "metrics.jsonl", f"line {line}", "repair or delete that line")
    assert (run / "metrics.jsonl").read_bytes() == damaged  # nothing was dropped


def test_torn_last_line_alone_is_dropped(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_bytes(GOOD + b'{"step": 4, "eval')
    assert [r["step"] for r in read_jsonl(path)] == [2]


@pytest.mark.parametrize("content,fragment", [
    (b"\xff\xfe\x00binary", "is not valid JSON"),
    (b"{hidden: 8", "is not valid JSON"),
    (b"5", "must be a JSON object"),
    (b"[1, 2]", "must be a JSON object"),
])
def test_damaged_config_is_one_line(tmp_path, capsys, content, fragment):
    run = _fake_run(tmp_path / "run")
    (run / "config.json").write_bytes(content)
    code, err = _cli(["train", "--resume", "--no-progress", "--out", run], capsys)
    _one_line_error(code, err, "config", fragment)


def test_resume_cannot_shrink_steps(tmp_path, capsys):
    run = _fake_run(tmp_path / "run", cfg=TINY_CFG.replace(steps=30), step=30)
    code, err = _cli(["train", "--resume", "--steps", "10", "--no-progress", "--out", run], capsys)
    _one_line_error(code, err, "--steps=10", "30 steps", "may only stay or grow")
    assert json.loads((run / "config.json").read_text())["steps"] == 30  # not rewritten


@pytest.mark.parametrize("out,fragment", [
    ("", "--out is empty"),
    ("x" * 300, "(File name too long)"),
    ("bad\udcffname", "is not valid UTF-8"),
])
def test_unusable_out_is_refused(tmp_path, capsys, monkeypatch, out, fragment):
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["train", "--task", "adding", "--steps", "2", "--no-progress", "--out", out],
                     capsys)
    _one_line_error(code, err, fragment)
    assert not (tmp_path / "summary.json").exists()


def test_embed_dim_on_a_dense_task_is_refused(tmp_path, capsys):
    code, err = _cli(["train", "--task", "adding", "--embed-dim", "16", "--out", tmp_path / "o"],
                     capsys)
    _one_line_error(code, err, "--embed-dim=16", "copy", "--task adding")


def test_sizes_that_cannot_fit_are_refused_before_compiling(tmp_path, capsys):
    t0 = time.perf_counter()
    code, err = _cli(["train", "--task", "adding", "--hidden", "65536", "--steps", "2",
                      "--no-progress", "--out", tmp_path / "o"], capsys)
    _one_line_error(code, err, "needs at least", "GiB per device", "GiB available", "--hidden")
    assert time.perf_counter() - t0 < 60  # no compile, no allocation


def test_a_second_process_on_one_out_is_refused(tmp_path, capsys):
    import os

    out = tmp_path / "run"
    out.mkdir()
    with run_lock(out):  # as another process holding the folder (flock is per open file)
        code, err = _cli(["train", "--task", "adding", "--seq-len", "10", "--hidden", "8",
                          "--steps", "2", "--no-progress", "--out", out], capsys)
    _one_line_error(code, err, "is in use by another lstm-jax process", f"PID {os.getpid()}")
    assert not (out / "config.json").exists()
    with run_lock(out):  # released: it can be taken again
        pass


def test_interrupt_before_the_first_eval_can_be_resumed(tmp_path):
    """Stopped (as by Ctrl-C) at step 1 < eval_every: a checkpoint and no metrics line yet; the
    resume used to fail with IndexError on the empty metrics file."""
    from lstm_jax.train import train

    out = tmp_path / "run"
    first = train(TINY_CFG, out, stop_at=1, progress=False, log=lambda m: None)
    assert first["status"] == "stopped" and not read_jsonl(out / "metrics.jsonl")
    done = train(TINY_CFG, out, resume=True, progress=False, log=lambda m: None)
    assert done["status"] == "completed" and done["steps"] == 4
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl")] == [2, 4]


def test_a_stop_request_during_the_last_step_completes_the_run(tmp_path):
    """A signal (here ``stop_at``, which takes the same path) that arrives while the last step
    runs stops nothing: the run is completed, with its figure, not "interrupted"."""
    from lstm_jax.train import train

    out = tmp_path / "run"
    done = train(TINY_CFG, out, stop_at=TINY_CFG.steps, progress=False, log=lambda m: None)
    assert done["status"] == "completed" and done["steps"] == TINY_CFG.steps
    assert (out / "curves.png").is_file()


def test_resume_after_a_nan_evaluation(tmp_path):
    """A NaN evaluation value is stored as null; resuming after it (the progress line and the
    summary read the last metrics line) works, and the summary says NaN for that seed."""
    import json
    import math

    from lstm_jax.metrics import mean_sd
    from lstm_jax.train import _postfix, train

    assert math.isnan(mean_sd([0.5, None])["mean"]) and mean_sd([0.5, None])["per_seed"][0] == 0.5
    assert "eval nan" in _postfix(0.1, {"eval/loss": [None, 0.2]}, 0.167)
    out = tmp_path / "run"
    assert train(TINY_CFG, out, stop_at=2, progress=False, log=lambda m: None)["status"] == "stopped"
    (line,) = read_jsonl(out / "metrics.jsonl")
    line["eval/loss"][0] = None
    (out / "metrics.jsonl").write_text(json.dumps(line) + "\n")
    done = train(TINY_CFG, out, resume=True, progress=True, log=lambda m: None)
    assert done["status"] == "completed" and done["steps"] == TINY_CFG.steps


def test_resumed_at_exactly_the_budget_makes_the_final_evaluation(tmp_path):
    """Stopped at step 3 (a checkpoint, the last evaluation at 2), then resumed with
    ``steps=3``: the training loop has nothing left to do, but the run still ends with the
    step-3 evaluation an uninterrupted 3-step run makes, bit for bit."""
    import dataclasses

    from lstm_jax.train import train

    quiet = {"progress": False, "log": lambda m: None}
    out, ref = tmp_path / "run", tmp_path / "ref"
    assert train(TINY_CFG, out, stop_at=3, **quiet)["status"] == "stopped"
    three = dataclasses.replace(TINY_CFG, steps=3)
    done = train(three, out, resume=True, **quiet)
    assert done["status"] == "completed" and done["steps"] == 3
    train(three, ref, **quiet)
    got, want = read_jsonl(out / "metrics.jsonl"), read_jsonl(ref / "metrics.jsonl")
    assert [r["step"] for r in got] == [r["step"] for r in want] == [2, 3]
    drop = ("time",)
    assert ({k: v for k, v in got[-1].items() if k not in drop}
            == {k: v for k, v in want[-1].items() if k not in drop})


def test_a_resumed_session_that_dies_leaves_no_stale_summary(tmp_path):
    """A finished 4-step run resumed to 6 steps whose process dies mid-session (here: an
    exception from a metrics callback; a kill -9 in life) must not leave the old "completed at
    4 steps" summary behind: a comparison would read the point as done."""
    import dataclasses

    from lstm_jax.compare.run import point_status
    from lstm_jax.train import train

    quiet = {"progress": False, "log": lambda m: None}
    out = tmp_path / "run"
    assert train(TINY_CFG, out, **quiet)["status"] == "completed"
    six = dataclasses.replace(TINY_CFG, steps=6)

    def dies(record):
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        train(six, out, resume=True, on_metrics=dies, **quiet)
    assert not (out / "summary.json").exists()
    assert point_status(out, 6) == "partial"
    assert train(six, out, resume=True, **quiet)["status"] == "completed"


def test_checkpoint_without_digest_is_not_loaded(tmp_path):
    import orbax.checkpoint as ocp

    said = []
    ck = Checkpoints(tmp_path / "ck", keep=3, warn=said.append)
    like = {"w": jnp.zeros((4,), jnp.float32)}
    ck.save(1, {"w": jnp.ones((4,))}, {"step": 1})
    ck.manager.save(2, args=ocp.args.Composite(  # written without the SHA-256 lstm-jax adds
        state=ocp.args.StandardSave({"00000": jnp.full((4,), 2.0)}),
        meta=ocp.args.JsonSave({"step": 2})), force=True)
    ck.manager.wait_until_finished()
    with pytest.raises(CorruptCheckpoint, match="no SHA-256"):
        ck.restore(2, like)
    step, state, _ = ck.restore_latest(like, quarantine=True)
    assert step == 1 and float(state["w"][0]) == 1.0
    assert len(said) == 1 and "checkpoint 2" in said[0] and "no SHA-256" in said[0]
    ck.close()


def test_all_checkpoints_broken_gives_one_line_each(tmp_path, capsys):
    """A broken checkpoint's abandoned tensorstore reads used to print dozens of "Event loop is
    closed" tracebacks each; now each broken checkpoint is one warning line."""
    ck = Checkpoints(tmp_path / "ck", keep=3)
    like = {f"w{i}": jnp.zeros((32,), jnp.float32) for i in range(12)}
    for step in (1, 2):
        ck.save(step, {k: jnp.full((32,), float(step)) for k in like}, {"step": step})
    for f in (tmp_path / "ck").rglob("*"):
        if f.is_file() and (f.parent.name == "d" or f.name == "manifest.ocdbt"):
            f.write_bytes(f.read_bytes()[:20])
    assert ck.restore_latest(like) is None
    time.sleep(0.5)
    gc.collect()
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: checkpoint") for line in lines), err
    ck.close()


def test_only_the_closed_loop_callbacks_are_dropped(monkeypatch):
    import asyncio
    import sys
    import types

    from lstm_jax.checkpoint import _drop_closed_loop_callbacks

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    _drop_closed_loop_callbacks()
    loop = asyncio.new_event_loop()
    loop.close()
    try:
        loop.call_soon_threadsafe(print)
    except RuntimeError as e:
        late = e
    other = RuntimeError("Event loop is closed")  # same text, raised elsewhere: still reported
    for exc in (late, other, ValueError("something else")):
        sys.unraisablehook(types.SimpleNamespace(exc_type=type(exc), exc_value=exc,
                                                 exc_traceback=exc.__traceback__))
    assert [u.exc_value for u in seen] == [other, seen[-1].exc_value]
    assert str(seen[-1].exc_value) == "something else"


@pytest.mark.parametrize("env,fragment", [
    ({"JAX_NUM_CPU_DEVICES": "abc"}, "JAX_NUM_CPU_DEVICES='abc' must be a whole number"),
    ({"JAX_NUM_CPU_DEVICES": "0"}, f"between 1 and {MAX_CPU_DEVICES}"),
    ({"JAX_NUM_CPU_DEVICES": "1000000"}, f"between 1 and {MAX_CPU_DEVICES}"),
    ({"LSTM_JAX_DISTRIBUTED": "yes"}, "LSTM_JAX_DISTRIBUTED='yes' must be 1"),
    ({"JAX_COORDINATOR_ADDRESS": "garbage"}, "must be HOST:PORT"),
    ({"JAX_COORDINATOR_ADDRESS": "host:99999"}, "port between 1 and 65535"),
    ({"JAX_NUM_PROCESSES": "two"}, "JAX_NUM_PROCESSES='two'"),
])
def test_bad_environment_is_one_line(env, fragment, monkeypatch, capsys):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(").replace("'", "'")):
        check_environment(env)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    code, err = _cli(["info"], capsys)
    _one_line_error(code, err, fragment, command="info")


def test_cpu_devices_flag_is_bounded(capsys):
    code, err = _cli(["--cpu-devices", "1000000", "info"], capsys)
    _one_line_error(code, err, "cpu_devices=1000000", f"between 1 and {MAX_CPU_DEVICES}",
                    command="info")


def test_distributed_without_coordinator_is_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LSTM_JAX_DISTRIBUTED", "1")
    from lstm_jax.sharding import maybe_initialize_distributed

    with pytest.raises(UserError, match="multi-host start-up failed.*JAX_COORDINATOR_ADDRESS"):
        maybe_initialize_distributed()
