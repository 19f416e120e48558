"""The training loop: results files, checkpoints, resume, seeds, devices, probes, signals.

``train(cfg, out)`` writes into ``out``::

    config.json      the TrainConfig (JSON round-trip: TrainConfig.from_json)
    metrics.jsonl    every eval_every steps: step, lr, train/loss and eval/<metric> per seed,
                     measured on the VALIDATION split ("eval_split": "validation"; the test split
                     is never scored here: lstm_jax.evaluate scores it once, after training)
    probes.jsonl     every probe_every steps (if a probe_fn is given): its record, per seed
    summary.json     status, final metrics (mean ± sd over seeds), baseline, steps, wall time
    checkpoints/     orbax CheckpointManager (atomic; keeps the last keep_checkpoints)
    curves.png       eval loss against step, with the baseline

Resume (``resume=True``) restores the newest complete checkpoint (refusing one written by another
configuration), drops any metrics/probes lines after it, and continues; since every batch, dropout
mask and accumulator is a function of the step (see :mod:`lstm_jax.steps`), the run ends with
bitwise the same parameters and metrics as an uninterrupted one (wall-clock ``time`` aside).
This holds after ``kill -9`` at any moment too: a save that never finished is removed, a finished
checkpoint that does not load or match its SHA-256 is moved to ``checkpoints.corrupt/`` and the
previous one is used (each with a warning), and a run stopped before its first complete
checkpoint starts again from step 0 (``config.json`` is written first, so it can be resumed).

A non-finite loss or gradient stops the run with :class:`Diverged` (the last good checkpoint is
kept; nothing after it is saved). Once the first step has completed, SIGINT/SIGTERM save a
checkpoint at the next step boundary and stop (status ``"interrupted"``), with a message saying
how to resume; a second signal, or one before the first step completes, ends the process at once
(:mod:`lstm_jax.interrupts`; the command line's policy, a library caller gets KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from lstm_jax import interrupts
from lstm_jax.checkpoint import Checkpoints
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.io import ensure_out_dir, read_json, run_lock, write_json
from lstm_jax.machine import machine_info
from lstm_jax.memory import check_fits, device_memory_bytes, training_bytes_lower_bound
from lstm_jax.metrics import append_jsonl, mean_sd, read_jsonl, truncate_after
from lstm_jax.sharding import check_batch, data_mesh, is_primary, replicated, waits_for_each_step
from lstm_jax.steps import build_programs, placed_inputs, seed_keys, seed_slice

ProbeFn = Callable[[nnx.Module, object], dict]
# The split of every held-out metric written during training. Never "test": selection (learning
# rate, early stopping, "best" run) happens on these numbers, so the test split is scored only by
# lstm_jax.evaluate, once per final configuration.
EVAL_SPLIT = "validation"


class Diverged(UserError):
    """The loss or the gradient became non-finite; the run stopped cleanly."""


def _resume_hint(out: Path) -> str:
    return f"lstm-jax train --out {out} --resume"


def _same_saved_config(cfg: TrainConfig, out: Path) -> bool:
    """Whether ``out/config.json`` holds ``cfg`` (up to fields a resume may change)."""
    try:
        saved = TrainConfig.from_dict(read_json(out / "config.json"))
    except UserError:
        return False
    return not cfg.resume_differences(saved)


def runtime(mesh) -> dict:
    """What a bitwise-exact resume needs unchanged besides the config: the JAX stack, the backend
    and the device count the batch is split over (saved in every checkpoint's meta)."""
    import jaxlib

    return {"devices": int(mesh.size), "backend": jax.default_backend(),
            "jax": jax.__version__, "jaxlib": jaxlib.__version__}


def _runtime_change(saved: dict | None, now: dict) -> str:
    """``"devices 1 → 2, …"`` for the fields that differ ("" when none, or nothing was saved)."""
    if not saved:
        return ""
    return ", ".join(f"{k} {saved[k]} → {now[k]}" for k in now if k in saved and saved[k] != now[k])


def check_resume_config(cfg: TrainConfig, meta: dict, where: Path) -> None:
    from lstm_jax.config import DATA_TASKS

    if meta["config"].get("task") in DATA_TASKS and "val_size" not in meta["config"]:
        raise UserError(f"cannot resume from {where}: it was written before runs held out a "
                        "validation split, so it trained on every train review; resuming would "
                        "change its training set. Start a new run (another --out)")
    saved = TrainConfig.from_dict(meta["config"])
    diff = cfg.resume_differences(saved)
    if diff:
        what = "; ".join(f"{k}: checkpoint has {a!r}, this run has {b!r}" for k, (a, b) in diff.items())
        raise UserError(f"cannot resume from {where}: it was written by another configuration "
                        f"({what}); use another --out or the checkpoint's settings")


@contextlib.contextmanager
def _disarmed_at_exit(intr):
    """Disarm the interrupt policy however the loop ends (a Diverged or a user error included),
    so a signal during the next command's start-up or compilation acts at once again."""
    try:
        yield
    finally:
        if intr is not None:
            intr.disarm()


def _progress(total: int, initial: int, enabled: bool, first_step_s: float | None = None):
    """A bar from ``initial`` (made after the first step, so its rate excludes compilation) or
    plain periodic lines when stderr is not a terminal (:mod:`lstm_jax.progress`)."""
    if not enabled or not is_primary():
        return None
    from lstm_jax.progress import make_progress

    return make_progress(total, initial, first_step_s)


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False,
          probe_fn: ProbeFn | None = None, stop_at: int | None = None,
          progress: bool = True, log: Callable[[str], None] = print,
          on_metrics: Callable[[dict], None] | None = None, lock: bool = True) -> dict:
    """Train ``cfg.seeds`` models of ``cfg`` and write the run's files into ``out``.

    Args:
      cfg: the run.
      out: output directory (created; must not hold another run unless ``resume``).
      resume: continue from the newest checkpoint in ``out/checkpoints``.
      probe_fn: ``(model, batch) -> dict`` called every ``cfg.probe_every`` steps on the first
        held-out chunk, per seed; records go to ``out/probes.jsonl``.
      stop_at: stop (with a checkpoint) once this many steps are done, as an interruption would.
      progress: show a tqdm bar (loss and baseline); plain periodic lines when stderr is not a
        terminal.
      on_metrics: also called with each metrics record (e.g. a TensorBoard writer's ``write``).
      lock: hold :func:`lstm_jax.io.run_lock` on ``out`` while training; False only when the
        caller already holds it (``lstm-jax compare`` claims a point before deciding to train it).

    Returns:
      The summary dict (also written to ``out/summary.json``).
    """
    out = ensure_out_dir(out)
    with run_lock(out) if lock and is_primary() else contextlib.nullcontext():
        return _train(cfg, out, resume=resume, probe_fn=probe_fn, stop_at=stop_at,
                      progress=progress, log=log, on_metrics=on_metrics)


def _train(cfg: TrainConfig, out: Path, *, resume: bool, probe_fn: ProbeFn | None,
           stop_at: int | None, progress: bool, log: Callable[[str], None],
           on_metrics: Callable[[dict], None] | None) -> dict:
    mesh = data_mesh()
    check_batch(cfg.batch, mesh)
    if probe_fn is None and cfg.probe_every:
        raise UserError("probe_every > 0 needs a probe function (the CLI wires lstm_jax.probes)")
    ckpt_dir = out / "checkpoints"
    if not resume and (ckpt_dir.exists() or (out / "metrics.jsonl").exists()):
        raise UserError(f"--out={str(out)!r} already holds a run; pass --resume to continue it "
                        "or choose another --out")
    if resume and not ckpt_dir.is_dir():
        raise UserError(f"--resume: no checkpoint in {ckpt_dir} to resume from; "
                        "run without --resume to start")
    if resume:  # a damaged results file is reported now, not after compiling
        for name in ("metrics.jsonl", "probes.jsonl"):
            read_jsonl(out / name)
    if not resume and is_primary():
        # before anything else, so a run killed while compiling can still be resumed
        write_json(out / "config.json", cfg.to_dict())
    warn = {} if log is print else {"warn": lambda m: log(f"warning: {m}")}  # default: stderr
    ckpts = Checkpoints(ckpt_dir, keep=cfg.keep_checkpoints, discard_incomplete=resume, **warn)
    done = ckpts.latest_step()
    if resume and done is not None and done > cfg.steps:
        ckpts.close()
        raise UserError(f"--steps={cfg.steps} is below the {done} steps the run in {out} has already "
                        f"done; on --resume, --steps may only stay or grow")
    restart = resume and ckpts.latest_step() is None and _same_saved_config(cfg, out)
    if resume and ckpts.latest_step() is None and not restart:
        ckpts.close()
        raise UserError(f"--resume: no checkpoint in {ckpt_dir} to resume from; "
                        "run without --resume to start")
    if restart:  # stopped before its first complete checkpoint: start again from step 0
        log(f"--resume: no complete checkpoint in {ckpt_dir} yet; starting {out} from step 0")
        resume = False
        if is_primary():
            truncate_after(out / "metrics.jsonl", 0)
            truncate_after(out / "probes.jsonl", -1)
    if resume:  # refuse another configuration before compiling anything
        try:
            check_resume_config(cfg, ckpts.meta(ckpts.latest_step()), ckpt_dir)
        except UserError:
            ckpts.close()
            raise
        except Exception:  # noqa: BLE001 - unreadable: restore_latest reports and falls back
            pass
    progs = build_programs(cfg, mesh)
    task, spec = progs.task, progs.task.spec
    keys = seed_keys(cfg)
    check_fits(training_bytes_lower_bound(
        jax.eval_shape(progs.init, keys["init"]), seeds=cfg.seeds, layers=cfg.layers,
        batch=cfg.batch, seq_len=cfg.seq_len, hidden=cfg.hidden, devices=mesh.size),
        device_memory_bytes())
    state = jax.device_put(progs.init(keys["init"]), replicated(mesh))
    data, chunks = placed_inputs(progs, mesh, EVAL_SPLIT)
    n_params = sum(a.size for a in jax.tree.leaves(state["params"])) // cfg.seeds

    start, elapsed_before = 0, 0.0
    if resume:
        got = ckpts.restore_latest(state, check_meta=lambda m: check_resume_config(cfg, m, ckpt_dir),
                                   quarantine=True)
        if got is None:  # every checkpoint was broken (each reported): start again
            log(f"--resume: no usable checkpoint in {ckpt_dir}; starting {out} from step 0")
            got = (0, state, {"elapsed": 0.0})
        start, state, meta = got
        elapsed_before = float(meta.get("elapsed", 0.0))
        moved = _runtime_change(meta.get("runtime"), runtime(mesh))
        if moved:
            log(f"warning: resuming on another runtime ({moved}): the continuation equals an "
                "uninterrupted run to float rounding, not bit for bit")
        if is_primary():
            truncate_after(out / "metrics.jsonl", start)
            truncate_after(out / "probes.jsonl", start if start else -1)  # step 0 is re-probed
            # the old summary ("completed" at fewer steps, say) would outlive a session killed
            # before it writes the new one; no summary means "not finished"
            (out / "summary.json").unlink(missing_ok=True)
        log(f"resuming {out} from step {start}")
    if is_primary():
        write_json(out / "config.json", cfg.to_dict())

    schedule = progs.learning_rate
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    baseline = spec.baseline
    t0 = time.perf_counter()
    elapsed = lambda: elapsed_before + time.perf_counter() - t0

    def save(step: int) -> None:
        ckpts.save(step, state, {"config": cfg.to_dict(), "step": step, "elapsed": elapsed(),
                                 "runtime": runtime(mesh)})

    def check_finite(step: int) -> None:
        bad = np.asarray(state["bad_step"])
        if (bad >= 0).any():
            i = int(np.argmax(bad >= 0))
            last = ckpts.latest_step()
            kept = (f"the last good checkpoint (step {last}) is kept in {ckpt_dir}"
                    if last is not None else "no checkpoint was written")
            summary = _summary(cfg, spec, out, "diverged", step, elapsed(), n_params, metrics_last,
                               task.split_info())
            summary["diverged_at_step"] = int(bad[i])
            if is_primary():
                write_json(out / "summary.json", summary)
            raise Diverged(f"non-finite loss or gradient at step {int(bad[i])} (seed {seeds[i]}); "
                           f"{kept}; clip gradients with --clip (e.g. --clip 1.0) or lower --lr")

    def record_metrics(step: int) -> dict:
        prev = (step - 1) // cfg.eval_every * cfg.eval_every
        ev = progs.evaluate(state["params"], chunks)
        rec = {"step": step, "time": round(elapsed(), 3), "lr": float(schedule(step - 1)),
               "baseline": baseline, "eval_split": EVAL_SPLIT,
               "train/loss": (np.asarray(state["loss_sum"]) / np.float32(step - prev)).tolist()}
        rec.update({f"eval/{k}": np.asarray(v).tolist() for k, v in ev.items()})
        if is_primary():
            append_jsonl(out / "metrics.jsonl", rec)
            if on_metrics is not None:
                on_metrics(rec)
        return rec

    def record_probes(step: int) -> None:
        batch = seed_slice(chunks, 0)
        for i, s in enumerate(seeds):
            model = nnx.merge(progs.graphdef, seed_slice(state["params"], i))
            rec = {"step": step, "seed": s, **probe_fn(model, batch)}
            if is_primary():
                append_jsonl(out / "probes.jsonl", rec)

    records = read_jsonl(out / "metrics.jsonl") if resume and start else []
    metrics_last = records[-1] if records else None  # none yet if stopped before eval_every
    bar = None
    status, step, signalled = "completed", start, None
    step_arr = np.int32
    first_step_s, counted = None, False
    wait_each_step = waits_for_each_step(mesh)
    try:
        with interrupts.installed(hard=False) as intr, _disarmed_at_exit(intr):
            if start == 0 and cfg.probe_every and probe_fn is not None:
                record_probes(0)
            if step == cfg.steps and (metrics_last is None or metrics_last["step"] != step):
                # resumed exactly at the budget from a checkpoint between evaluations: the
                # final evaluation an uninterrupted run makes at its last step
                check_finite(step)
                metrics_last = record_metrics(step)
            while step < cfg.steps:
                state, loss = progs.train_step(state, keys["data"], keys["dropout"],
                                               step_arr(step), data)
                if wait_each_step or first_step_s is None:
                    jax.block_until_ready(loss)
                if first_step_s is None:
                    first_step_s = time.perf_counter() - t0
                    if intr is not None:  # from now on a signal stops at a step boundary
                        intr.arm()
                    # the first step is reported on its own line; the bar times the rest
                    bar = _progress(cfg.steps, step + 1, progress, first_step_s)
                    counted = True
                step += 1
                if step % cfg.eval_every == 0 or step == cfg.steps:
                    check_finite(step)
                    metrics_last = record_metrics(step)
                if cfg.probe_every and step % cfg.probe_every == 0:
                    check_finite(step)
                    record_probes(step)
                if bar is not None:
                    if step % 10 == 0 or step == cfg.steps:
                        bar.set_postfix_str(_postfix(loss, metrics_last, baseline))
                    if counted:
                        counted = False
                    else:
                        bar.update(1)
                signalled = intr.signal if intr is not None else None
                stopping = signalled or (stop_at is not None and step >= stop_at)
                if step % cfg.checkpoint_every == 0 or step == cfg.steps or stopping:
                    check_finite(step)
                    save(step)
                if stopping:
                    if step < cfg.steps:  # a signal during the last step stops nothing
                        status = "interrupted" if signalled else "stopped"
                    break
    finally:
        if bar is not None:
            bar.close()
        ckpts.close()
    summary = _summary(cfg, spec, out, status, step, elapsed(), n_params, metrics_last,
                       task.split_info())
    if first_step_s is not None and step - start > 1:
        run_s = time.perf_counter() - t0 - first_step_s
        summary["this_session"] = {"steps": step - start, "first_step_s": round(first_step_s, 3),
                                   "steps_per_s_after_first": round((step - start - 1) / run_s, 3)}
    if is_primary():
        write_json(out / "summary.json", summary)
        if status == "completed":
            _plot(out)
    if status == "interrupted":
        log(f"interrupted by {signalled} at step {step}; checkpoint saved in {ckpt_dir}; "
            f"resume with: {_resume_hint(out)}")
    return summary


def _postfix(loss, rec: dict | None, baseline: float) -> str:
    text = f"loss {float(np.mean(np.asarray(loss))):.4g}"
    if rec is not None:
        text += f" eval {float(np.mean(np.asarray(rec['eval/loss'], float))):.4g}"  # None: NaN
    return text + f" (baseline {baseline:.4g})"


def _summary(cfg, spec, out, status, step, wall, n_params, rec, splits) -> dict:
    final = {}
    if rec is not None:
        final = {k: mean_sd(v) for k, v in rec.items() if isinstance(v, list)}
    loss = final.get("eval/loss", {}).get("mean")
    return {
        "status": status, "steps": step, "wall_time_s": round(wall, 3),
        "steps_per_s": round(step / wall, 3) if wall > 0 else None,
        "parameters_per_model": int(n_params), "seeds": cfg.seeds,
        "devices": [str(d) for d in jax.devices()],
        "machine": machine_info(),  # of the session that wrote this summary (the last, if resumed)
        "task": {"name": spec.name, "seq_len": spec.seq_len, "max_len": spec.max_len,
                 "loss": spec.loss_name, "baseline": spec.baseline,
                 "baseline_note": spec.baseline_note, "metric_baselines": spec.metric_baselines},
        "metrics_step": None if rec is None else rec["step"],
        "eval_split": EVAL_SPLIT, "splits": splits,
        "final": final,
        "eval_loss_over_baseline": None if loss is None else loss / spec.baseline,
        "config": cfg.to_dict(),
        "files": {"config": str(out / "config.json"), "metrics": str(out / "metrics.jsonl"),
                  "checkpoints": str(out / "checkpoints")},
    }


def _plot(out: Path) -> None:
    from lstm_jax.plots.training import plot_run

    plot_run(out)


def default_probe_fn(task_loss=None, *, method: str = "hutchinson", samples: int = 4,
                     layer: int = 0) -> ProbeFn:
    """Probe records from :func:`lstm_jax.probes.probe` on a trained model's recurrence:
    ‖∂h_T/∂h_{T−k}‖ (and ‖∂C_T/∂C_{T−k}‖ for the LSTM) per lag, gate statistics, and
    ‖∂L/∂h_t‖ per step of the task's loss ``task_loss(outputs, batch)`` through the model's head
    (:func:`lstm_jax.probes.head_loss`; None: the probes' default random readout)."""
    try:
        from lstm_jax.probes import head_loss, probe
    except ImportError as e:
        raise UserError(f"--probe-every needs lstm_jax.probes, which is not importable ({e})") from None

    def probe_fn(model, batch) -> dict:
        loss_fn = None if task_loss is None else head_loss(model, batch, task_loss)
        return probe(model.recurrence, model.inputs(batch.x), batch.mask, layer=layer,
                     method=method, samples=samples, loss_fn=loss_fn, key=jax.random.key(0))

    return probe_fn


def load_config(out: str | Path) -> TrainConfig:
    """The TrainConfig saved in a run directory."""
    return TrainConfig.from_dict(read_json(Path(out) / "config.json"))


def load_params(out: str | Path, cfg: TrainConfig | None = None, step: int | None = None):
    """``(graphdef, params)`` of a saved run (params stacked over seeds) from its checkpoint."""
    from lstm_jax.steps import build_programs

    cfg = cfg or load_config(out)
    mesh = data_mesh()
    progs = build_programs(cfg, mesh)
    like = jax.eval_shape(progs.init, seed_keys(cfg)["init"])
    ckpts = Checkpoints(Path(out) / "checkpoints", keep=cfg.keep_checkpoints)
    try:
        if step is None:  # the newest checkpoint that loads (a broken one is reported)
            where = Path(out) / "checkpoints"
            got = ckpts.restore_latest(like, check_meta=lambda m: check_resume_config(cfg, m, where))
            if got is None:
                raise UserError(f"no complete checkpoint in {Path(out) / 'checkpoints'}")
            state = got[1]
        else:
            if step not in ckpts.steps():
                raise UserError(f"step={step} has no checkpoint in {Path(out) / 'checkpoints'}; "
                                f"saved steps: {ckpts.steps()}")
            state = ckpts.restore(step, like)
    finally:
        ckpts.close()
    return progs.graphdef, state["params"]
