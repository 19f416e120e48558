"""Where a comparison stands: every point's state and an estimate of the wall time left.

``lstm-jax compare PROTOCOL --out DIR --status`` prints :func:`status_rows` as a table without
training or writing anything. The estimate is deliberately simple: a point that is not done is
estimated from the finished points of the same arm (those that ran the whole budget), by
:func:`wall_time_model`, times the fraction of the budget still to train. A step's cost is a part
proportional to T plus a part that is not (evaluation, checkpoints, dispatch); on a small CPU the
second can dominate (the adding comparison's GRU points took 11–19 min at T=50, 14 at T=100
and 15 at T=200). Arms with no finished point get no estimate. Finished points' wall times include whatever
else shared the machine, so the estimate is as noisy as they were.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from lstm_jax.compare.protocol import Protocol
from lstm_jax.compare.run import point_status, run_dir
from lstm_jax.io import lock_holder, read_json
from lstm_jax.metrics import read_jsonl


def wall_time_model(points: list[tuple[int, float]]) -> tuple[float, float]:
    """``(a, b)`` such that a whole point at length T takes about ``a + b·T`` seconds.

    Args:
      points: ``(T, wall seconds)`` of an arm's finished points (at least one).

    With points at two or more lengths, the least-squares line, kept non-negative (a negative
    slope, which noise can give, becomes the flat mean; a negative intercept the line through 0).
    With one length only, ``a = 0``: time in proportion to T, an upper bound for longer T.
    """
    Ts = [float(T) for T, _ in points]
    walls = [w for _, w in points]
    if len(set(Ts)) < 2:
        return 0.0, statistics.fmean(walls) / statistics.fmean(Ts)
    b, a = statistics.linear_regression(Ts, walls)
    if b < 0:
        return statistics.fmean(walls), 0.0
    if a < 0:
        return 0.0, sum(T * w for T, w in points) / sum(T * T for T in Ts)
    return a, b


def status_rows(proto: Protocol, out: Path) -> list[dict]:
    """One row per (task, T, arm, lr) point, in the order the comparison trains them.

    Returns:
      dicts with ``task, T, arm, lr, state`` (``done``; ``running``: a process holds its run
      lock; ``partial``; ``new``), ``step`` (the last logged step, 0 if none), ``wall_s``
      (training wall time so far, or None) and ``left_s`` (the estimated wall time still to
      train: 0 when done, None when the arm has no finished point to scale from). A running
      point continues from its logged step; a partial one resumes from its newest complete
      checkpoint, or from step 0 without one (a point copied without its checkpoints).
    """
    rows, starts = [], []  # starts: the step each point's remaining training begins at
    for p in proto.points():
        where = run_dir(out, p)
        state = point_status(where, proto.steps)
        summary = read_json(where / "summary.json") if (where / "summary.json").is_file() else {}
        wall = summary.get("wall_time_s")
        if state == "done":  # its summary says everything (a diverged run stops short)
            step = summary.get("steps", proto.steps)
        else:  # the log runs ahead of an interrupted run's old summary
            last = read_jsonl(where / "metrics.jsonl")[-1:] if state == "partial" else []
            step = last[0]["step"] if last else 0
            if last and last[0].get("time") is not None:
                wall = max(wall or 0.0, last[0]["time"])
            if lock_holder(where) is not None:
                state = "running"  # a process holds the point's run lock now
        rows.append({"task": p.task, "T": p.T, "arm": p.arm, "lr": p.lr, "state": state,
                     "step": step, "wall_s": wall})
        starts.append(step if state in ("running", "done") else _newest_checkpoint(where))
    finished = {}  # (task, arm) -> [(T, wall seconds for the budget)] of its whole-budget points
    for r in rows:
        if r["state"] == "done" and r["wall_s"] and r["step"] >= proto.steps:
            finished.setdefault((r["task"], r["arm"]), []).append(
                (r["T"], r["wall_s"] * proto.steps / r["step"]))  # a run past the budget scaled
    for r, start in zip(rows, starts, strict=True):
        if r["state"] == "done":
            r["left_s"] = 0.0
        elif (r["task"], r["arm"]) in finished:
            a, b = wall_time_model(finished[(r["task"], r["arm"])])
            r["left_s"] = (a + b * r["T"]) * max(0.0, 1 - start / proto.steps)
        else:
            r["left_s"] = None
    return rows


def _newest_checkpoint(where: Path) -> int:
    """The step of the newest complete checkpoint in ``where/checkpoints`` (orbax names each
    by its step; a save in progress carries a suffix), 0 if there is none. Reads only."""
    ckpts = where / "checkpoints"
    if not ckpts.is_dir():
        return 0
    return max((int(d.name) for d in ckpts.iterdir() if d.is_dir() and d.name.isdigit()),
               default=0)


def format_status(proto: Protocol, rows: list[dict]) -> str:
    """``rows`` as an aligned text table with a one-line total."""
    def minutes(s):
        return "?" if s is None else f"{s / 60:.0f}"

    head = ["task", "T", "arm", "lr", "state", "step", "wall min", "left min"]
    body = [[r["task"], str(r["T"]), r["arm"], f"{r['lr']:g}", r["state"],
             f"{r['step']}/{proto.steps}", "" if r["wall_s"] is None else minutes(r["wall_s"]),
             "" if r["state"] == "done" else minutes(r["left_s"])] for r in rows]
    width = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(x.ljust(w) for x, w in zip(line, width, strict=True)).rstrip()
             for line in [head, *body]]
    todo = [r for r in rows if r["state"] != "done"]
    known = sum(r["left_s"] for r in todo if r["left_s"] is not None)
    unknown = sum(r["left_s"] is None for r in todo)
    total = (f"{len(rows) - len(todo)}/{len(rows)} points done; about {known / 3600:.1f} h left"
             + (f" plus {unknown} point(s) of arms with no finished point" if unknown else "")
             + " (from the same arm's finished points: a fixed part plus a part in proportion to T)")
    running = sum(r["state"] == "running" for r in rows)
    if running > 1:  # processes sharing the comparison (each claims the points it trains)
        total += (f"; {running} points are training at once (processes sharing the "
                  "comparison): the hours above add up the points one after another, at the pace "
                  "of the finished ones")
    return "\n".join([*lines, total])
