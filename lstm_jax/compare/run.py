"""Run a comparison point by point, resumably, and collect its results.

``run_comparison(PROTOCOL, OUT)`` trains every (task, T, arm, lr) point of the protocol as its own
run directory ``OUT/runs/<task>/T<T>/<arm>/lr<lr>/`` (:func:`lstm_jax.train.train`, all seeds
vmapped in one program), then, for every (task, T, arm) whose learning rates have all finished,
picks the rate on VALIDATION (:func:`~lstm_jax.compare.outcome.selection_key`) and scores the
TEST split once for that configuration only (:func:`lstm_jax.evaluate.score`, at the budget's
checkpoint). Results are rewritten after every point, so the table fills in as points finish.

Resume: a finished point is read, not retrained; an interrupted one continues from its newest
checkpoint; a point whose saved config differs from the protocol's (other than ``steps``, which a
plain ``--resume`` may grow, and ``impl``, which changes only float rounding) is refused, and so is
an ``OUT`` that holds a comparison under another protocol. A point trained past the declared
budget is flagged (``past_budget``) and credited with the evaluations up to the budget only.

Several processes may run the same comparison on one ``OUT`` (two terminals, or machines sharing
the directory): each claims a point by taking its run lock (:func:`lstm_jax.io.try_run_lock`)
and passes over the points others hold, so the points are shared without any coordination. A
point whose process let go of it unfinished (stopped or killed) is taken over by a process still
running, once it has been through the others.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
from collections.abc import Callable
from pathlib import Path

from lstm_jax.compare.outcome import point_outcome, selection_key
from lstm_jax.compare.protocol import (
    SUFFIXES,
    Point,
    Protocol,
    load_protocol,
    parse_protocol,
    read_protocol_text,
)
from lstm_jax.compare.stats import paired_bootstrap, wilson
from lstm_jax.config import TrainConfig
from lstm_jax.errors import UserError
from lstm_jax.io import atomic_write_text, ensure_out_dir, lock_holder, read_json, try_run_lock
from lstm_jax.metrics import read_jsonl

MAY_DIFFER = ("steps", "impl")
FINISHED = ("completed", "diverged")


def run_dir(out: Path, p: Point) -> Path:
    return out / "runs" / p.slug


def check_point(cfg: TrainConfig, where: Path) -> None:
    """Refuse a point directory that holds a run of other settings (see the module docstring)."""
    path = where / "config.json"
    if not path.is_file():
        return
    saved = TrainConfig.from_dict(read_json(path))
    diff = {f: (getattr(saved, f), getattr(cfg, f)) for f in cfg.to_dict()
            if f not in MAY_DIFFER and getattr(saved, f) != getattr(cfg, f)}
    if diff:
        what = "; ".join(f"{k} was {a!r}, the protocol says {b!r}" for k, (a, b) in diff.items())
        raise UserError(f"{where} holds a run with other settings ({what}); it was not made by "
                        "this protocol: use another --out or delete that point")


def point_status(where: Path, budget: int) -> str:
    """``"done"`` (finished at or past the budget, or diverged), ``"partial"`` or ``"new"``.

    A point that was started (its ``config.json`` is there) counts as partial even without a
    checkpoint directory: checkpoints are not committed, so a point cut off on another machine
    arrives with its config and metrics only, and starts again from step 0 (``train`` does that
    on resume when no complete checkpoint exists).
    """
    path = where / "summary.json"
    if not path.is_file():
        started = (where / "checkpoints").is_dir() or (where / "config.json").is_file()
        return "partial" if started else "new"
    s = read_json(path)
    if s.get("status") == "diverged" or (s.get("status") == "completed" and s["steps"] >= budget):
        return "done"
    return "partial"


@contextlib.contextmanager
def _claim(where: Path):
    """Hold ``where``'s run lock (yields None) or learn that another process holds it (yields its
    PID), so several ``lstm-jax compare`` processes on one ``--out`` share the points between
    them. A multi-host run does not claim: its processes must train the same point together
    (and :func:`lstm_jax.train.train` locks on the primary only)."""
    import jax

    if jax.process_count() > 1:
        yield None
        return
    ensure_out_dir(where)
    with try_run_lock(where) as holder:
        yield holder


def saved_protocol(out: Path) -> Path | None:
    """The copy of the protocol a comparison directory holds (``protocol.toml``, ``.yaml`` or
    ``.yml``, as the file it was run from), None before its first run."""
    return next((p for s in SUFFIXES if (p := out / f"protocol{s}").is_file()), None)


def _check_out(proto: Protocol, source: Path, out: Path) -> None:
    saved = saved_protocol(out)
    if saved is not None:
        old = parse_protocol(read_protocol_text(saved.read_text(), saved),
                             default_name=proto.name).to_dict()
        new = proto.to_dict()
        diff = sorted(k for k in new if old.get(k) != new[k])
        if diff:
            raise UserError(f"{out} holds a comparison under another protocol (fields that differ: "
                            f"{', '.join(diff)}); a declared protocol does not change after the "
                            "run: use another --out")
    else:
        atomic_write_text(out / f"protocol{source.suffix.lower()}", source.read_text())


def run_comparison(protocol: str | Path, out: str | Path, *, max_points: int | None = None,
                   progress: bool = False, score_test: bool = True,
                   log: Callable[[str], None] = print) -> dict:
    """Train the protocol's points that are not done yet and write the results into ``out``.

    Args:
      protocol: the protocol file (TOML, or YAML: ``.yaml``/``.yml``).
      out: the comparison directory (created; resumable).
      max_points: stop after training this many points in this call (None: all; 0 trains
        nothing and only rewrites the tables and figures from the finished points).
      progress: show each point's progress (:func:`lstm_jax.progress.make_progress`).
      score_test: score test for every (task, T, arm) whose learning rates are all done.

    Returns:
      ``{"status": ..., "trained": n, "results": ...}``, the status ``"completed"`` (every
      point done), ``"shared"`` (all this process could take is done; other processes are still
      training the rest), ``"stopped"`` (``max_points``) or ``"interrupted"``.
    """
    from lstm_jax.compare.report import write_report
    from lstm_jax.train import Diverged, train

    proto = load_protocol(protocol)
    out = ensure_out_dir(out)
    _check_out(proto, Path(protocol), out)
    points = proto.points()
    for p in points:  # refuse a foreign point before training anything
        check_point(proto.config(p), run_dir(out, p))
    trained, status, results, busy = 0, "completed", None, {}
    todo = list(enumerate(points, 1))
    while todo and status == "completed":
        for i, p in todo:
            where = run_dir(out, p)
            if point_status(where, proto.steps) == "done":
                continue
            if max_points is not None and trained >= max_points:
                status = "stopped"
                break
            with _claim(where) as holder:
                if holder is not None:  # another process is training this point: leave it
                    busy[(i, p)] = holder
                    continue
                busy.pop((i, p), None)
                state = point_status(where, proto.steps)  # again: it may have finished meanwhile
                if state == "done":
                    continue
                log(f"[{i}/{len(points)}] {p.task} T={p.T} {p.arm} lr={p.lr:g} → {where}")
                if state == "partial":
                    (where / "checkpoints").mkdir(exist_ok=True)  # see point_status
                try:
                    summary = train(proto.config(p), where, resume=state == "partial",
                                    progress=progress, log=log, lock=False)
                except Diverged as e:
                    log(f"  diverged: {e}")
                    summary = {"status": "diverged"}
            trained += 1
            if summary["status"] not in FINISHED:
                status = "interrupted"
                break
            # figures too: a comparison stopped hard (a second signal) still has them up to here
            results = collect(proto, out, score_test=score_test, log=log)
            write_report(out, proto, results)
        # another pass for the points whose process let go of them unfinished (stopped, killed)
        todo = [(i, p) for (i, p) in busy
                if point_status(run_dir(out, p), proto.steps) != "done"
                and lock_holder(run_dir(out, p)) is None]
    if results is None:  # nothing finished in this call (all done before, stopped, interrupted)
        results = collect(proto, out, score_test=score_test, log=log)
        write_report(out, proto, results)
    busy = {p.slug: pid for (_, p), pid in busy.items()
            if point_status(run_dir(out, p), proto.steps) != "done"}
    if busy and status == "completed":
        status = "shared"
        log(f"{len(busy)} point(s) are being trained by other processes ("
            + ", ".join(f"{slug}: PID {pid}" for slug, pid in busy.items())
            + "); each rewrites the tables when its point finishes")
    elif status != "completed":
        log(f"comparison {status} after {trained} point(s) this session; continue with: "
            f"lstm-jax compare {protocol} --out {out}")
    return {"status": status, "trained": trained, "results": results}


def collect(proto: Protocol, out: Path, *, score_test: bool = True,
            log: Callable[[str], None] = print) -> dict:
    """Results of every point done so far: one row per (task, T, arm), paired differences."""
    rows = []
    for t in proto.tasks:
        for T in t.lengths:
            for arm in proto.arms:
                rows.append(_row(proto, out, t, T, arm.name, score_test, log))
    diffs, best = [], []
    for t in proto.tasks:
        for T in t.lengths:
            here = [r for r in rows if (r["task"], r["T"]) == (t.name, T)]
            done = [r for r in here if r["status"] == "done"]
            for a, b in itertools.combinations(done, 2):
                diffs += _differences(a, b, t.success.metric)
            if done and len(done) == len(here):
                best.append(_best_on_validation(done, t.success))
    return {"protocol": proto.name, "budget": {"steps": proto.steps, "batch": proto.batch},
            "rows": rows, "differences": diffs, "best_on_validation": best}


def _best_on_validation(rows: list[dict], crit) -> dict:
    """The arm a reader would deploy, chosen on VALIDATION only (as each arm's learning rate:
    most successes, then the best mean final value); its test score was already written once."""
    def key(r):
        finals = r["val_final_per_seed"]
        ok = all(math.isfinite(v) for v in finals)
        return (r["successes"], crit.sign() * statistics.fmean(finals) if ok else -math.inf)

    r = max(rows, key=key)
    return {"task": r["task"], "T": r["T"], "arm": r["arm"], "lr": r["lr"],
            "val_final_mean": r["val_final_mean"], "test_mean": r.get("test_mean"),
            "test_sd": r.get("test_sd"), "test_per_seed": r.get("test_per_seed"),
            "arms_compared": len(rows)}


def _row(proto: Protocol, out: Path, task, T: int, arm: str, score_test: bool, log) -> dict:
    crit, budget = task.success, proto.steps
    row = {"task": task.name, "T": T, "arm": arm, "arch": proto.arm(arm).arch,
           "criterion": str(crit), "budget_steps": budget, "batch": proto.batch,
           "seeds": proto.seeds, "status": "pending", "lr_scores": {}}
    outcomes = {}
    for lr in proto.lr_grid:
        where = run_dir(out, Point(task.name, T, arm, lr))
        if point_status(where, budget) != "done":
            continue
        diverged = read_json(where / "summary.json").get("status") == "diverged"
        outcomes[lr] = (where, point_outcome(read_jsonl(where / "metrics.jsonl"), crit, budget,
                                             proto.seeds, diverged=diverged))
        k, score = selection_key(outcomes[lr][1], crit)
        row["lr_scores"][f"{lr:g}"] = {"successes": int(k), "final_mean": crit.sign() * score
                                       if math.isfinite(score) else None}
    if len(outcomes) < len(proto.lr_grid):
        return row
    lr = max(proto.lr_grid, key=lambda v: (*selection_key(outcomes[v][1], crit), -v))
    where, o = outcomes[lr]
    summary = read_json(where / "summary.json")
    k, n = sum(o["success"]), proto.seeds
    lo, hi = wilson(k, n)
    steps = [s for s in o["steps_to_success"] if s is not None]
    row.update({
        "status": "done", "lr": lr, "run_dir": str(where), "successes": k,
        "success_rate": k / n, "wilson_low": lo, "wilson_high": hi,
        "success_per_seed": o["success"], "steps_to_success": o["steps_to_success"],
        "median_steps_to_success": statistics.median(steps) if steps else None,
        "val_final_per_seed": o["final"], "val_final_mean": _mean(o["final"]),
        "val_final_sd": _sd(o["final"]), "last_eval_step": o["last_step"],
        "parameters": summary.get("parameters_per_model"),
        "trained_steps": summary.get("steps"), "diverged": summary.get("status") == "diverged",
        "past_budget": o["past_budget"] or (summary.get("steps") or 0) > budget,
    })
    row.update(_test(where, budget, proto.test_size, crit.metric, score_test, log))
    return row


def _mean(v: list[float]) -> float | None:
    return statistics.fmean(v) if v and all(math.isfinite(x) for x in v) else None


def _sd(v: list[float]) -> float | None:
    return statistics.stdev(v) if len(v) > 1 and _mean(v) is not None else None


def _test(where: Path, budget: int, size: int, metric: str, score_test: bool, log) -> dict:
    """The selected configuration's test score (scored here once; read back afterwards)."""
    from lstm_jax.evaluate import metrics_path, saved_steps, score

    path = metrics_path(where, "test")
    if path.is_file():
        rec = read_json(path)
    elif score_test:
        with _hold(where, log):  # another process may be scoring it right now
            if path.is_file():
                rec = read_json(path)
            else:
                steps = [s for s in saved_steps(where) if s <= budget]
                if not steps:
                    return {"test_note": "no checkpoint at or before the budget"}
                log(f"  scoring test once: {where} at step {steps[-1]}")
                rec = score(where, "test", step=steps[-1], size=size, lock=False)
    else:
        return {}
    m = rec["metrics"].get(metric, {})
    out = {"test_metric": metric, "test_mean": m.get("mean"), "test_sd": m.get("sd"),
           "test_per_seed": m.get("per_seed"), "test_step": rec["step"],
           "test_examples": rec["examples"], "test_times_scored": rec["times_scored"],
           "test_step_not_budget": rec["step"] != budget,
           "test_size_not_protocol": not _scored_at_size(rec, size)}
    if rec["examples"] == rec.get("splits", {}).get("sizes", {}).get("test"):
        # a whole split scored review by review keeps per-review outcomes (for paired CIs);
        # score() writes them, a record older than that file gets them recounted here
        from lstm_jax.evaluate import per_example, per_example_path

        per_review = per_example_path(where, "test")
        if score_test and not per_review.is_file() and (where / "checkpoints").is_dir():
            with _hold(where, log):
                if not per_review.is_file():
                    log(f"  per-review test outcomes (a recount of the recorded score): {where}")
                    per_example(where, "test")
        if per_review.is_file():
            out["test_per_example"] = str(per_review)
    return out


def _hold(where: Path, log):
    """Hold ``where``'s run lock, waiting (and saying so once) while another process holds it."""
    return try_run_lock(where, wait=lambda pid: log(f"  waiting for PID {pid}, which holds {where}"))


def _scored_at_size(rec: dict, size: int) -> bool:
    """Whether a test record was scored at the protocol's ``test_size``: the size it was asked
    for (records older than that field: its example count, which batching may round down), or
    the whole split scored example by example when the size asks for at least all of it."""
    whole = rec.get("splits", {}).get("sizes", {}).get("test")
    if whole is not None and rec["examples"] == whole and size >= whole:
        return True
    return rec.get("size_requested", rec["examples"]) == size


def _differences(a: dict, b: dict, metric: str) -> list[dict]:
    """Paired bootstrap CIs of arm a − arm b: test metric and success paired by seed, and, where
    both test splits were scored review by review, accuracy paired by review (averaged over seeds;
    this interval covers the sampling of test reviews, not the spread over seeds)."""
    out = []
    base = {"task": a["task"], "T": a["T"], "arm_a": a["arm"], "arm_b": b["arm"]}
    if a.get("test_per_seed") and b.get("test_per_seed"):
        d = [x - y for x, y in zip(a["test_per_seed"], b["test_per_seed"], strict=True)]
        out.append({**base, "quantity": f"test {metric}", "per_seed": d, **paired_bootstrap(d)})
    if a.get("test_per_example") and b.get("test_per_example"):
        from lstm_jax.evaluate import per_example

        ra, rb = (per_example(Path(r["run_dir"]), "test")["correct"] for r in (a, b))
        d = ra.mean(axis=0) - rb.mean(axis=0)  # (reviews,)
        out.append({**base, "quantity": "test accuracy, paired by review", "per_seed": None,
                    **paired_bootstrap(d)})
    d = [int(x) - int(y) for x, y in zip(a["success_per_seed"], b["success_per_seed"], strict=True)]
    out.append({**base, "quantity": "success", "per_seed": d, **paired_bootstrap(d)})
    return out
