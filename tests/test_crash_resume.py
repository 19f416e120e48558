"""Crashes lose nothing: ``kill -9`` of a real ``lstm-jax train`` at several moments (one of them
inside a checkpoint save), SIGTERM, a corrupted finished checkpoint, then ``--resume``; the run ends
bitwise equal to an uninterrupted one. And the same command twice gives bitwise the same run.

All processes share a persistent XLA compilation cache (in tmp), so only the first one compiles.
The moment "inside a save" is made exact rather than raced: the victim process wraps orbax's
``AtomicRenameTemporaryPath.finalize`` (the rename that completes a save) to write a marker and
sleep when it reaches step ``HANG_AT_SAVE``; the test kills it there, with the step's
``.orbax-checkpoint-tmp`` directory fully written but not renamed.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from lstm_jax.metrics import read_jsonl
from lstm_jax.train import load_params

ROOT = Path(__file__).resolve().parents[1]


def cli_args(steps: int) -> list[str]:
    return ["train", "--task", "adding", "--seq-len", "10", "--arch", "lstm", "--hidden", "8",
            "--steps", str(steps), "--batch", "8", "--lr", "1e-2", "--dropout", "0.1",
            "--eval-every", "3", "--eval-size", "8", "--checkpoint-every", "5",
            "--keep-checkpoints", "3", "--no-progress"]


ARGS, STEPS = cli_args(30), list(range(3, 31, 3))
# the default run's crash-resume: the same run cut to 15 steps (kill -9 in the save of step 10)
SHORT, SHORT_STEPS = cli_args(15), list(range(3, 16, 3))

WRAPPER = """
import os, pathlib, sys, time
hang = os.environ.get("HANG_AT_SAVE")
if hang:
    from orbax.checkpoint._src.path import atomicity
    orig = atomicity.AtomicRenameTemporaryPath.finalize
    async def finalize(self):
        if self.get_final().name == hang:
            pathlib.Path(os.environ["HANG_MARKER"]).write_text(str(self.get()))
            time.sleep(600)
        return await orig(self)
    atomicity.AtomicRenameTemporaryPath.finalize = finalize
from lstm_jax.cli import main
sys.exit(main(sys.argv[1:]))
"""


def env(cache, **extra):
    return {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_COMPILATION_CACHE_DIR": str(cache),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1", **extra}


def start(out, cache, *extra, args=ARGS, **env_extra):
    return subprocess.Popen([sys.executable, "-c", WRAPPER, *args, "--out", str(out), *extra],
                            cwd=ROOT, env=env(cache, **env_extra), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=300):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def wait_for(pred, proc, what, timeout=240):
    t0 = time.monotonic()
    while not pred():
        if proc.poll() is not None:
            code, out, err = finish(proc)
            pytest.fail(f"process ended ({code}) before {what}:\n{out}\n{err[-3000:]}")
        if time.monotonic() - t0 > timeout:
            proc.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


def kill9(proc):
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def metric_steps(out):
    return [r["step"] for r in read_jsonl(out / "metrics.jsonl")]


def check_jsonl_survived(path, steps=STEPS):
    """Every line but possibly a torn last one is complete JSON; steps strictly increase."""
    lines = path.read_text().split("\n") if path.exists() else [""]
    body = lines[:-1]  # lines[-1], after the final newline, is "" or a torn line (allowed there)
    records = [json.loads(line) for line in body]  # any other torn line fails here
    logged = [r["step"] for r in records]
    assert logged == sorted(set(logged)), logged
    assert set(logged) <= set(steps)


def without_time(out):
    return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(out / "metrics.jsonl")]


def params(out):
    return [np.asarray(a) for a in jax.tree.leaves(load_params(out)[1])]


def assert_same_run(a, b, steps=STEPS):
    assert without_time(a) == without_time(b)
    assert metric_steps(a) == steps
    for x, y in zip(params(a), params(b), strict=True):
        np.testing.assert_array_equal(x, y)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["status"] == sb["status"] == "completed"
    assert sa["final"] == sb["final"]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("xla_cache")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("reference") / "run"
    code, stdout, err = finish(start(out, cache))
    assert code == 0, err[-3000:]
    return out


def test_same_command_twice_is_bitwise_identical(reference, cache, tmp_path):
    out = tmp_path / "again"
    code, _, err = finish(start(out, cache))
    assert code == 0, err[-3000:]
    assert_same_run(reference, out)


def test_kill9_sigterm_and_corruption_then_resume_is_bitwise_identical(reference, cache,
                                                                       tmp_path):
    out, marker = tmp_path / "run", tmp_path / "hang_marker"
    ckpts = out / "checkpoints"

    # 1. kill -9 inside the save of step 10 (its tmp directory written, not yet renamed)
    p = start(out, cache, HANG_AT_SAVE="10", HANG_MARKER=str(marker))
    wait_for(marker.exists, p, "the save of step 10")
    assert (ckpts / "10.orbax-checkpoint-tmp").is_dir()
    kill9(p)
    check_jsonl_survived(out / "metrics.jsonl")
    assert sorted(x.name for x in ckpts.iterdir()) == ["10.orbax-checkpoint-tmp", "5"]

    # 2. resume: the partial save is dropped with a message, the run continues from step 5;
    #    SIGTERM once step 18's metrics are written: a checkpoint is saved, exit 130 with a hint
    p = start(out, cache, "--resume")
    wait_for(lambda: 18 in metric_steps(out), p, "step 18")
    p.send_signal(signal.SIGTERM)
    code, stdout, err = finish(p)
    assert "checkpoint 10" in err and "incomplete and was removed" in err, err[-2000:]
    assert "resuming" in stdout and "from step 5" in stdout
    assert code == 130, err[-3000:]
    assert f"resume with: lstm-jax train --out {out} --resume" in stdout
    stopped = json.loads((out / "summary.json").read_text())
    assert stopped["status"] == "interrupted"
    assert str(stopped["steps"]) in os.listdir(ckpts)
    check_jsonl_survived(out / "metrics.jsonl")

    # 3. resume, kill -9 at an arbitrary moment once step 24's metrics are written
    p = start(out, cache, "--resume")
    wait_for(lambda: 24 in metric_steps(out), p, "step 24")
    kill9(p)
    check_jsonl_survived(out / "metrics.jsonl")

    # 4. damage the newest finished checkpoint (truncate its array data): resume must not load it
    done = sorted(int(x.name) for x in ckpts.iterdir() if x.name.isdigit())
    newest = done[-1]
    data = [f for f in (ckpts / str(newest) / "state").rglob("*")
            if f.is_file() and f.parent.name == "d"]
    assert data
    for f in data:
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    code, stdout, err = finish(start(out, cache, "--resume"))
    assert code == 0, err[-3000:]
    assert f"checkpoint {newest}" in err and "corrupt or unreadable" in err, err[-2000:]
    assert f"from step {done[-2]}" in stdout
    assert (out / "checkpoints.corrupt" / str(newest)).is_dir()

    assert_same_run(reference, out)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(STEPS)  # nothing duplicated, nothing torn


def test_kill9_inside_a_save_then_resume_equals_an_uninterrupted_run(tmp_path):
    """The default run's crash-resume (the test above, with SIGTERM, a second kill -9 and a
    corrupted checkpoint, runs in `make test-all`): a real ``lstm-jax train`` process killed
    with -9 inside the save of step 10 of 15, then ``--resume``, ends bitwise equal to an
    uninterrupted run of the same command's config (trained in this process through the CLI's
    own parser)."""
    from lstm_jax.cli import build_parser
    from lstm_jax.cli.train import plan
    from lstm_jax.train import train

    # The reference trains here first, into this worker's compilation cache, which the children
    # then read: they compile nothing (racing them against it would compile everything twice).
    ref = tmp_path / "reference"
    ((cfg, where),) = plan(build_parser().parse_args([*SHORT, "--out", str(ref)]))
    train(cfg, where, progress=False, log=lambda *_: None)
    cache = os.environ["JAX_COMPILATION_CACHE_DIR"]
    out, marker = tmp_path / "run", tmp_path / "hang_marker"
    p = start(out, cache, args=SHORT, HANG_AT_SAVE="10", HANG_MARKER=str(marker))
    wait_for(marker.exists, p, "the save of step 10")
    assert (out / "checkpoints" / "10.orbax-checkpoint-tmp").is_dir()
    kill9(p)
    check_jsonl_survived(out / "metrics.jsonl", SHORT_STEPS)
    code, stdout, err = finish(start(out, cache, "--resume", args=SHORT))
    assert code == 0, err[-3000:]
    assert "checkpoint 10" in err and "incomplete and was removed" in err, err[-2000:]
    assert "from step 5" in stdout
    assert_same_run(ref, out, SHORT_STEPS)
