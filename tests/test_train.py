"""The training loop: it learns, it resumes bit for bit, seeds vmap, devices shard, it stops cleanly.

One small reference run (2 seeds, dropout, warm-up + cosine schedule) is shared: the interrupted
and resumed run, the single-seed run and the 8-device subprocess are all compared against it.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.metrics import read_jsonl
from lstm_jax.train import Diverged, load_params, train

SMALL = TrainConfig(task="adding", seq_len=12, arch="lstm", hidden=8, steps=16, batch=16,
                    lr=3e-2, eval_every=8, eval_size=32, checkpoint_every=8, seeds=2, seed=0,
                    dropout=0.1, warmup=4, schedule="cosine", probe_every=4)


@jax.jit(static_argnums=0)
def _h_norm(graphdef, state, batch):
    h = nnx.merge(graphdef, state).run(batch.x, batch.mask)[1].outputs
    return jnp.linalg.norm(h, axis=-1).mean(0)


def h_norm_probe(model, batch):
    """A cheap probe: mean ‖h_t‖ over the batch at each step."""
    return {"h_norm": _h_norm(*nnx.split(model), batch)}


def metrics_without_time(path):
    return [{k: v for k, v in r.items() if k != "time"} for r in read_jsonl(path)]


def leaves(tree):
    return [np.asarray(a) for a in jax.tree.leaves(tree)]


def assert_same_run(a_dir, b_dir):
    """Two runs' final parameters and eval losses agree to float32 rounding (not bitwise)."""
    for a, b in zip(leaves(load_params(a_dir)[1]), leaves(load_params(b_dir)[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-5)
    for r, s in zip(read_jsonl(a_dir / "metrics.jsonl"), read_jsonl(b_dir / "metrics.jsonl"),
                    strict=True):
        np.testing.assert_allclose(r["eval/loss"], s["eval/loss"], rtol=1e-4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    summary = train(SMALL, out, probe_fn=h_norm_probe, progress=False)
    return out, summary


def test_reference_run_writes_its_files(reference):
    out, summary = reference
    for name in ("config.json", "metrics.jsonl", "probes.jsonl", "summary.json", "curves.png"):
        assert (out / name).is_file(), name
    assert TrainConfig.from_json((out / "config.json").read_text()) == SMALL
    steps = [r["step"] for r in read_jsonl(out / "metrics.jsonl")]
    assert steps == [8, 16]
    assert [r["step"] for r in read_jsonl(out / "probes.jsonl")] == [0, 0, 4, 4, 8, 8, 12, 12,
                                                                     16, 16]
    assert summary["status"] == "completed" and summary["steps"] == 16
    assert summary["final"]["eval/loss"]["per_seed"] == read_jsonl(out / "metrics.jsonl")[-1][
        "eval/loss"]
    assert summary["task"]["baseline"] == pytest.approx(1 / 6)
    # 4 gate blocks of (2 + 8 + 1)·8 plus the head 8 + 1
    assert summary["parameters_per_model"] == 4 * 8 * (2 + 8 + 1) + 9
    # the CPU is recorded: float32 results repeat bit for bit only on the same instruction sets
    from lstm_jax.machine import machine_info

    assert summary["machine"]["cpu_detail"] == machine_info()["cpu_detail"]


def assert_bitwise_same_run(a, b):
    """Two run directories hold the same metrics (times apart), probes and final parameters,
    bit for bit."""
    assert metrics_without_time(a / "metrics.jsonl") == metrics_without_time(b / "metrics.jsonl")
    assert read_jsonl(a / "probes.jsonl") == read_jsonl(b / "probes.jsonl")
    for x, y in zip(leaves(load_params(a)[1]), leaves(load_params(b)[1]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_interrupted_and_resumed_run_is_bitwise_identical(reference, tmp_path):
    ref_out, _ = reference

    def interrupting_probe(model, batch):
        rec = h_norm_probe(model, batch)
        interrupting_probe.calls += 1
        if interrupting_probe.calls == 4:  # step 4, second seed: mid-interval (eval every 8)
            os.kill(os.getpid(), signal.SIGINT)
        return rec

    interrupting_probe.calls = 0
    first = train(SMALL, tmp_path, probe_fn=interrupting_probe, progress=False)
    assert first["status"] == "interrupted" and first["steps"] == 4
    with pytest.raises(UserError, match="already holds a run"):
        train(SMALL, tmp_path, probe_fn=h_norm_probe, progress=False)
    with pytest.raises(UserError, match="another configuration.*hidden"):
        train(SMALL.replace(hidden=9), tmp_path, resume=True, probe_fn=h_norm_probe,
              progress=False)
    resumed = train(SMALL, tmp_path, resume=True, probe_fn=h_norm_probe, progress=False)
    assert resumed["status"] == "completed"
    assert_bitwise_same_run(ref_out, tmp_path)


def test_resume_without_checkpoint_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no checkpoint"):
        train(SMALL.replace(probe_every=0), tmp_path, resume=True, progress=False)


def test_vmapped_seeds_equal_separate_runs(reference, tmp_path):
    ref_out, _ = reference
    single = SMALL.replace(seeds=1, seed=1)
    train(single, tmp_path, probe_fn=h_norm_probe, progress=False)
    ref = leaves(load_params(ref_out)[1])
    one = leaves(load_params(tmp_path)[1])
    for a, b in zip(ref, one, strict=True):
        np.testing.assert_allclose(a[1], b[0], rtol=1e-5, atol=1e-6)
    for r, s in zip(read_jsonl(ref_out / "metrics.jsonl"), read_jsonl(tmp_path / "metrics.jsonl"),
                    strict=True):
        np.testing.assert_allclose(r["eval/loss"][1], s["eval/loss"][0], rtol=1e-5)
    assert not np.allclose(ref[0][0], ref[0][1])  # the two seeds really differ


def test_scan_backward_trains_the_same_model(reference, tmp_path):
    """The default ``impl="fused"`` (hand-written backward pass) against ``jax.grad`` of the plain
    scan: the same run, step for step, to float32 rounding."""
    ref_out, _ = reference
    assert SMALL.impl == "fused"
    train(SMALL.replace(impl="scan"), tmp_path, probe_fn=h_norm_probe, progress=False)
    assert_same_run(ref_out, tmp_path)


def test_config_without_impl_resumes_as_scan():
    """Runs saved before ``impl`` existed trained through the scan; resuming one keeps it."""
    d = SMALL.to_dict()
    del d["impl"]
    assert TrainConfig.from_dict(d).impl == "scan"


def test_eight_devices_match_one(reference, tmp_path, tmp_path_factory):
    """8 fake CPU devices train the same model as one, and wait for every step: a deep queue of
    data-parallel steps stalls XLA:CPU's all-reduce until it aborts (``waits_for_each_step``;
    docs/robustness.md; ``experiments/cpu_devices_stall_repro.py`` shows it without lstm_jax).
    A run interrupted on 8 devices and resumed there ends bit for bit as the uninterrupted one."""
    ref_out, _ = reference
    resumed_dir = tmp_path_factory.mktemp("resumed8")
    script = textwrap.dedent(f"""
        import jax, json, os, signal
        from jax.sharding import Mesh
        assert len(jax.devices()) == 8, jax.devices()
        waits, real = [], jax.block_until_ready
        jax.block_until_ready = lambda x: (waits.append(1), real(x))[1]
        from lstm_jax.config import TrainConfig
        from lstm_jax.sharding import data_mesh, waits_for_each_step
        from lstm_jax.train import train
        from tests.test_train import h_norm_probe
        cfg = TrainConfig.from_json({SMALL.to_json()!r})
        s = train(cfg, {str(tmp_path)!r}, probe_fn=h_norm_probe, progress=False)
        n_waits = len(waits)
        calls = []
        def interrupting(model, batch):
            calls.append(1)
            if len(calls) == 4:  # step 4: mid-interval (eval and checkpoint every 8)
                os.kill(os.getpid(), signal.SIGINT)
            return h_norm_probe(model, batch)
        first = train(cfg, {str(resumed_dir)!r}, probe_fn=interrupting, progress=False)
        assert (first["status"], first["steps"]) == ("interrupted", 4), first
        again = train(cfg, {str(resumed_dir)!r}, resume=True, probe_fn=h_norm_probe,
                      progress=False)
        assert again["status"] == "completed", again
        waits = waits[:n_waits]
        from lstm_jax.evaluate import score
        val = score({str(tmp_path)!r}, "validation")["metrics"]
        print(json.dumps({{"devices": s["devices"], "waits": len(waits), "val": val,
                          "waits_each": waits_for_each_step(data_mesh()),
                          "one": waits_for_each_step(Mesh(jax.devices()[:1], ("data",)))}}))
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(got["devices"]) == 8
    assert got["waits_each"] is True and got["one"] is False
    assert got["waits"] >= SMALL.steps  # one wait per step (the first step adds its own)
    assert_same_run(ref_out, tmp_path)
    assert_bitwise_same_run(tmp_path, resumed_dir)
    # scoring a run works on 8 devices too (params and batches placed on the mesh) and agrees
    # with one device
    from lstm_jax.evaluate import score

    one = score(ref_out, "validation")["metrics"]
    for name, m in one.items():
        np.testing.assert_allclose(got["val"][name]["per_seed"], m["per_seed"], rtol=1e-5)


def test_non_finite_loss_stops_cleanly_and_keeps_last_good_checkpoint(tmp_path):
    cfg = TrainConfig(task="adding", seq_len=20, arch="rnn", hidden=8, steps=40, batch=16,
                      lr=100.0, optimizer="sgd", momentum=0.0, clip=None, eval_every=5,
                      checkpoint_every=5, recurrent_scale=1.5, eval_size=16)
    with pytest.raises(Diverged, match=r"non-finite.*step \d+.*--clip"):
        train(cfg, tmp_path, progress=False)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "diverged"
    bad = summary["diverged_at_step"]
    _, params = load_params(tmp_path)
    assert all(np.isfinite(a).all() for a in leaves(params))
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert saved and max(saved) <= bad


def test_an_update_that_overflows_stops_the_run_before_it_is_saved(tmp_path):
    """Finite loss and gradients, but lr × gradient overflows float32: the step is a divergence
    (it is not applied), and no checkpoint holds an infinite parameter."""
    cfg = TrainConfig(task="adding", seq_len=10, arch="rnn", hidden=8, steps=6, batch=8,
                      lr=3e38, optimizer="sgd", momentum=0.0, clip=None, eval_every=3,
                      checkpoint_every=1, eval_size=8)
    with pytest.raises(Diverged, match=r"non-finite.*step 0"):
        train(cfg, tmp_path, progress=False)
    assert json.loads((tmp_path / "summary.json").read_text())["diverged_at_step"] == 0
    saved = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    for step in saved:
        _, params = load_params(tmp_path, step=step)
        assert all(np.isfinite(a).all() for a in leaves(params)), step


def test_seeds_past_uint32_are_refused():
    """Seeds are uint32: 2^32 would wrap round to 0 and train seed 0's models again."""
    from lstm_jax.errors import UserError

    assert TrainConfig(seed=2**32 - 1).seed == 2**32 - 1
    for bad in ({"seed": 2**32}, {"seed": 2**32 - 1, "seeds": 2}, {"eval_seed": 2**32}):
        with pytest.raises(UserError, match="2\\^32"):
            TrainConfig(**bad)


def test_adams_overflowing_second_moment_is_a_divergence():
    """A finite gradient of 1e20 is not a divergence by itself (all_finite above), but Adam's
    ν = g² overflows float32 and would freeze that parameter for good: the step refuses it."""
    import optax

    from lstm_jax.steps import all_finite

    params = {"w": jnp.ones(3)}
    tx = optax.adam(1e-3)
    grads = {"w": jnp.array([1.0, 1e20, 0.0])}
    _, opt = tx.update(grads, tx.init(params), params)
    assert all_finite(grads) and not all_finite(opt)


@pytest.mark.parametrize("seed", [0])
def test_lstm_learns_adding_at_T50(tmp_path, seed):
    cfg = TrainConfig(task="adding", seq_len=50, arch="lstm", hidden=32, steps=400, batch=64,
                      lr=1e-2, eval_every=100, eval_size=512, seed=seed, checkpoint_every=400)
    summary = train(cfg, tmp_path, progress=False)
    loss = summary["final"]["eval/loss"]["mean"]
    assert loss < 0.1 * summary["task"]["baseline"], loss




def test_all_finite_checks_leaves_not_the_overflowing_norm():
    """Gradients of 1e20 are finite, but their float32 global norm is inf; the divergence check
    must not stop such a run (clipping would not help: it computes the same norm)."""
    import optax

    from lstm_jax.steps import all_finite

    big = {"w": jnp.full((3, 3), 1e20, jnp.float32), "b": jnp.ones((3,), jnp.float32)}
    assert not jnp.isfinite(optax.tree.norm(big))  # the old check's premise
    assert bool(all_finite(big))
    assert not bool(all_finite({**big, "b": jnp.array([1.0, jnp.nan, 0.0])}))
    assert not bool(all_finite({**big, "w": big["w"].at[0, 0].set(jnp.inf)}))
    assert bool(jax.jit(all_finite)(big))


def test_resume_on_another_runtime_warns_that_it_is_not_bitwise(tmp_path, monkeypatch):
    """Every checkpoint records the device count and JAX stack; a resume where they differ says
    that the continuation is no longer bit for bit an uninterrupted run's."""
    import lstm_jax.train as train_mod

    cfg = TrainConfig(task="adding", seq_len=6, arch="rnn", hidden=4, steps=2, batch=4,
                      eval_every=2, eval_size=4, checkpoint_every=2)
    train(cfg, tmp_path, progress=False, log=lambda m: None)
    lines = []
    train(cfg.replace(steps=4), tmp_path, resume=True, progress=False, log=lines.append)
    assert not any("another runtime" in m for m in lines)
    real = train_mod.runtime
    monkeypatch.setattr(train_mod, "runtime", lambda mesh: {**real(mesh), "devices": 8})
    lines = []
    train(cfg.replace(steps=6), tmp_path, resume=True, progress=False, log=lines.append)
    assert any("another runtime (devices 1 → 8)" in m for m in lines), lines
    assert train_mod._runtime_change(None, {"devices": 1}) == ""  # checkpoints from before


def test_resume_of_a_constrained_cell_with_a_scaled_rate_is_bitwise(tmp_path):
    """Resume restores what the plain LSTM run does not exercise: a cell with a projection
    (IndRNN's |u| bound) and an optimiser state with masked parts (recurrent_lr_scale): three
    steps, then three more on --resume, equal the six uninterrupted steps bit for bit."""
    cfg = TrainConfig(task="adding", seq_len=8, arch="indrnn", chrono=8.0, indrnn_init="paper",
                      layers=2, hidden=6, steps=6, batch=8, lr=0.05, recurrent_lr_scale=0.1,
                      eval_every=3, eval_size=8, checkpoint_every=3, seeds=2)
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(cfg, whole, progress=False, log=lambda m: None)
    train(cfg.replace(steps=3), split, progress=False, log=lambda m: None)
    train(cfg, split, resume=True, progress=False, log=lambda m: None)
    assert metrics_without_time(split / "metrics.jsonl") == metrics_without_time(
        whole / "metrics.jsonl")
    for a, b in zip(leaves(load_params(whole)[1]), leaves(load_params(split)[1]), strict=True):
        np.testing.assert_array_equal(a, b)
