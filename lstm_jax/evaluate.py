"""Score a trained run on a held-out split after training; the test split once per configuration.

Training reports only validation metrics (:data:`lstm_jax.train.EVAL_SPLIT`): every choice
(learning rate, readout, early stopping, the "best" attempt) is made on them. The test split is
scored here, for a final configuration, and the score is written apart from the training files::

    RUN_DIR/test_metrics.json        split, checkpoint step, examples (and the size asked for),
                                     mean ± sd over seeds,
                                     per-seed values, how many times test has been scored
    RUN_DIR/test_log.jsonl           one line per scoring of test (append-only, even with force)
    RUN_DIR/validation_metrics.json  the same for ``split="validation"`` (no limit)
    RUN_DIR/<split>_per_example.npz  with a whole-split exact evaluator (IMDB): ``correct`` and
                                     ``nll`` ``(seeds, n)`` per review, in the split's row order,
                                     so two configurations can be compared on the same reviews

Scoring test again is refused unless ``force=True``, and ``times_scored`` says how often it
happened, so a reader can tell a test number that was looked at once from one that was tuned on.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax

from lstm_jax.errors import UserError, check_choice
from lstm_jax.io import read_json, write_json
from lstm_jax.metrics import append_jsonl, mean_sd, read_jsonl

SPLITS = ("validation", "test")


def metrics_path(run_dir: str | Path, split: str) -> Path:
    return Path(run_dir) / f"{split}_metrics.json"


def per_example_path(run_dir: str | Path, split: str) -> Path:
    return Path(run_dir) / f"{split}_per_example.npz"


def saved_steps(run_dir: str | Path) -> list[int]:
    """Steps of the complete checkpoints in ``run_dir/checkpoints`` (ascending)."""
    from lstm_jax.checkpoint import Checkpoints

    where = Path(run_dir) / "checkpoints"
    if not where.is_dir():
        raise UserError(f"run_dir={str(run_dir)!r} has no checkpoints/ to score")
    ckpts = Checkpoints(where, keep=1000)
    try:
        return sorted(ckpts.steps())
    finally:
        ckpts.close()


def score(run_dir: str | Path, split: str = "test", *, step: int | None = None,
          size: int | None = None, force: bool = False, lock: bool = True) -> dict:
    """Evaluate every seed of the run in ``run_dir`` on ``split`` and write the result.

    Args:
      run_dir: a run directory of :func:`lstm_jax.train.train`.
      split: ``"test"`` (refused if already scored, unless ``force``) or ``"validation"``.
      step: the checkpoint to score (default: the newest).
      size: held-out examples (default: the whole split of a data-backed task, else the run's
        ``eval_size``); rounded to whole batches as during training, except that a whole split
        of a task with an exact evaluator (IMDB) is scored review by review, every one once.
      force: score test again although it was scored before (counted in ``times_scored``).
      lock: hold the run's lock (:func:`lstm_jax.io.run_lock`) while scoring test, so two
        processes never score one run's test split at once (and a run still training is not
        scored on test); False when the caller holds it. Validation never takes it: scoring a
        checkpoint of a running run on validation stays allowed.

    Returns:
      The record written to ``RUN_DIR/<split>_metrics.json``.
    """
    import contextlib

    from lstm_jax.io import run_lock
    from lstm_jax.sharding import is_primary

    held = lock and split == "test" and is_primary()
    with run_lock(Path(run_dir), "RUN_DIR") if held else contextlib.nullcontext():
        return _score(Path(run_dir), split, step, size, force)


def _score(run_dir: Path, split: str, step: int | None, size: int | None, force: bool) -> dict:
    from lstm_jax.sharding import data_mesh, replicated
    from lstm_jax.steps import build_programs, placed_inputs
    from lstm_jax.train import load_config, load_params

    check_choice("split", split, SPLITS)
    out = metrics_path(run_dir, split)
    log = run_dir / "test_log.jsonl"
    if split == "test" and out.is_file() and not force:
        prev = read_json(out)
        raise UserError(f"{out} already holds a test score (checkpoint step {prev.get('step')}, "
                        f"scored {prev.get('times_scored', 1)} time(s)); test is scored once per "
                        "final configuration: pass --force to score it again (it is counted)")
    cfg = load_config(run_dir)
    steps = saved_steps(run_dir)
    if not steps:
        raise UserError(f"{run_dir}/checkpoints holds no complete checkpoint to score")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise UserError(f"step={step} has no checkpoint in {run_dir}/checkpoints; saved: {steps}")
    graphdef, params = load_params(run_dir, cfg, step=step)
    mesh = data_mesh()
    progs = build_programs(cfg, mesh)
    task = progs.task
    whole = getattr(task, "sizes", {}).get(split)
    exact = getattr(task, "evaluate_exact", None)
    if exact is not None and (size is None or size >= whole):
        # every example of the split counts once (batches would drop the remainder)
        ev, rows = _exact_per_seed(exact, graphdef, params, cfg.seeds, split)
        examples = whole
        _write_per_example(run_dir, split, step, rows)
    else:
        _, chunks = placed_inputs(progs, mesh, split, size or whole or cfg.eval_size)
        params = jax.device_put(params, replicated(mesh))  # as train() places them
        ev = jax.device_get(progs.evaluate(params, chunks))
        examples = int(chunks.y.shape[0] * chunks.y.shape[1])
    times = len(read_jsonl(log)) + 1 if split == "test" else None
    record = {
        "split": split, "step": int(step), "examples": int(examples), "size_requested": size,
        "seeds": list(range(cfg.seed, cfg.seed + cfg.seeds)),
        "metrics": {k: mean_sd(v.tolist()) for k, v in ev.items()},
        "times_scored": times, "trained_steps_saved": steps[-1],
        "splits": task.split_info(), "config": cfg.to_dict(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if split == "test":
        append_jsonl(log, {"time": record["time"], "step": record["step"], "forced": bool(force),
                           "metrics": {k: v["mean"] for k, v in record["metrics"].items()}})
    write_json(out, record)
    return record


def per_example(run_dir: str | Path, split: str = "test") -> dict:
    """Per-review outcomes ``{"correct", "nll"}`` ``(seeds, n)`` of the scored checkpoint.

    Read from ``RUN_DIR/<split>_per_example.npz``. A run scored before that file existed is
    evaluated again at the checkpoint step its ``<split>_metrics.json`` records; the recount must
    reproduce the recorded accuracy of every seed exactly, or this raises. It informs no choice
    and is not a new score, so ``times_scored`` is unchanged (the file says ``recomputed``).
    """
    import numpy as np

    path = per_example_path(run_dir, split)
    if not path.is_file():
        _recompute_per_example(Path(run_dir), split)
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def _recompute_per_example(run_dir: Path, split: str) -> None:
    from lstm_jax.sharding import data_mesh
    from lstm_jax.steps import build_programs
    from lstm_jax.train import load_config, load_params

    rec_path = metrics_path(run_dir, split)
    if not rec_path.is_file():
        raise UserError(f"{run_dir} has no {rec_path.name}: score {split} first")
    rec = read_json(rec_path)
    cfg = load_config(run_dir)
    task = build_programs(cfg, data_mesh()).task
    exact = getattr(task, "evaluate_exact", None)
    if exact is None or rec["examples"] != task.sizes.get(split):
        raise UserError(f"{run_dir}: per-example outcomes need a whole-split exact evaluator "
                        f"(task {cfg.task!r} scored {rec['examples']} examples)")
    graphdef, params = load_params(run_dir, cfg, step=rec["step"])
    ev, rows = _exact_per_seed(exact, graphdef, params, cfg.seeds, split)
    recorded = rec["metrics"]["accuracy"]["per_seed"]
    if [round(a * rec["examples"]) for a in recorded] != rows["correct"].sum(axis=1).tolist():
        raise UserError(f"{run_dir}: re-evaluating {split} at step {rec['step']} gave accuracy "
                        f"{ev['accuracy'].tolist()}, not the recorded {recorded}")
    _write_per_example(run_dir, split, rec["step"], rows, recomputed=True)


def _write_per_example(run_dir: Path, split: str, step: int, rows: dict,
                       recomputed: bool = False) -> None:
    import io

    import numpy as np

    from lstm_jax.io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez_compressed(buf, correct=rows["correct"], nll=rows["nll"], step=np.int64(step),
                        recomputed=np.bool_(recomputed))
    atomic_write_bytes(per_example_path(run_dir, split), buf.getvalue())


def _exact_per_seed(exact, graphdef, params, seeds: int, split: str) -> tuple[dict, dict]:
    """The task's exact whole-split evaluator on every seed: ``({"loss": (seeds,),
    "accuracy": (seeds,)}, {"correct": (seeds, n) bool, "nll": (seeds, n)})``."""
    import numpy as np
    from flax import nnx

    from lstm_jax.steps import seed_slice

    runs = [exact(nnx.merge(graphdef, seed_slice(params, i)), split, per_example=True)
            for i in range(seeds)]
    metrics = {k: np.array([r[k] for r in runs]) for k in ("loss", "accuracy")}
    rows = {"correct": np.stack([r["correct_per_example"] for r in runs]),
            "nll": np.stack([r["nll_per_example"] for r in runs])}
    return metrics, rows
