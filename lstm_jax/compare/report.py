"""A comparison's result files, from :func:`lstm_jax.compare.run.collect`'s dict alone::

    results.json       budget, one row per (task, T, arm), paired differences
    results.csv        the rows (lists joined with ';')
    differences.csv    paired bootstrap CIs of arm a − arm b per (task, T)
    results.md         Markdown tables: per task first arms × lengths (successes and test mean),
                       then every row: parameters per model, success rate [Wilson 95 % CI],
                       median steps-to-success,
                       test metric mean ± sd, the selected lr, flags
    success_vs_T.png   success rate against T per arm, one panel per task, Wilson bars
    final_by_arm.png   every seed's final validation and test metric per arm, one panel per
                       (task, T), the success threshold drawn
    curves.png         validation metric against step per arm (its chosen learning rate): every
                       seed thin, the median over seeds bold; one panel per (task, T)
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from lstm_jax.compare.outcome import validation_curve
from lstm_jax.compare.protocol import Point
from lstm_jax.compare.run import run_dir
from lstm_jax.io import atomic_write_text, write_json
from lstm_jax.metrics import read_jsonl

ROW_FIELDS = ("task", "T", "arm", "arch", "parameters", "status", "lr", "seeds", "successes",
              "success_rate", "wilson_low", "wilson_high", "median_steps_to_success",
              "steps_to_success", "val_final_mean", "val_final_sd",
              "test_metric", "test_mean", "test_sd", "test_per_seed", "test_step",
              "test_examples", "test_times_scored", "budget_steps", "batch", "trained_steps",
              "past_budget", "diverged", "criterion", "run_dir")
DIFF_FIELDS = ("task", "T", "arm_a", "arm_b", "quantity", "mean", "low", "high", "n", "per_seed")


def _csv(rows: list[dict], fields) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ";".join(map(str, v)) if isinstance(v, list) else v for k, v in r.items()})
    return buf.getvalue()


def _fmt(v, spec=".3g") -> str:
    """``format(v, spec)``, with more significant digits where rounding would reach a whole
    number that ``v`` is not: a recall of 0.99996 prints as 0.99996, not as a perfect "1"."""
    if v is None:
        return "—"
    text = format(v, spec)
    m = re.fullmatch(r"\.(\d+)g", spec)
    digits = int(m.group(1)) if m else None
    while digits is not None and digits < 8 and float(text) != v and float(text) == round(float(text)):
        digits += 1
        text = format(v, f".{digits}g")
    return text


def by_length(task: str, rows: list[dict]) -> list[str]:
    """Markdown table: one line per arm, one column per T, each cell ``successes/seeds ·
    test mean`` (``pending`` until the point is done); arms and lengths in the rows' order."""
    rows = [r for r in rows if r["task"] == task]
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    lengths = list(dict.fromkeys(r["T"] for r in rows))
    cell = {(r["arm"], r["T"]): ("pending" if r["status"] != "done" else
                                 f"{r['successes']}/{r['seeds']} · "
                                 f"{_fmt(r.get('test_mean'), '.3g')}") for r in rows}
    lines = ["| arm | " + " | ".join(f"T={T}" for T in lengths) + " |",
             "|---" * (len(lengths) + 1) + "|"]
    lines += ["| " + " | ".join([a, *(cell.get((a, T), "") for T in lengths)]) + " |"
              for a in arms]
    return lines


def markdown(proto, results: dict) -> str:
    rows = results["rows"]
    lines = [f"# Comparison `{proto.name}`", "",
             f"Budget: {proto.steps} steps × batch {proto.batch} for every arm "
             f"({proto.steps * proto.batch:,} sequences); {proto.seeds} seeds per point; "
             f"learning rate chosen per arm on validation from {list(proto.lr_grid)}; "
             "test scored once per selected configuration.", ""]
    for t in proto.tasks:
        lines += [f"## {t.name}: success = {t.success}", "",
                  f"Seeds that succeeded · test {t.success.metric} (mean over seeds), each arm "
                  "at its validation-chosen learning rate:", "", *by_length(t.name, rows), "",
                  "| T | arm | parameters | success [95 % Wilson] | median steps to success | "
                  f"validation {t.success.metric} (final, mean ± sd) | "
                  f"test {t.success.metric} (mean ± sd) | lr | flags |", "|---" * 9 + "|"]
        for r in (r for r in rows if r["task"] == t.name):
            if r["status"] != "done":
                lines.append(f"| {r['T']} | {r['arm']} | | pending | | | | | |")
                continue
            flags = [f for f in ("past_budget", "diverged", "test_step_not_budget",
                                                "test_size_not_protocol") if r.get(f)]
            if (r.get("test_times_scored") or 1) > 1:
                flags.append(f"test scored {r['test_times_scored']}×")
            test = (f"{_fmt(r.get('test_mean'), '.4g')} ± {_fmt(r.get('test_sd'), '.2g')}"
                    if r.get("test_mean") is not None else "—")
            val = (f"{_fmt(r.get('val_final_mean'), '.4g')} ± {_fmt(r.get('val_final_sd'), '.2g')}"
                   if r.get("val_final_mean") is not None else "—")
            lines.append(
                f"| {r['T']} | {r['arm']} | {_fmt(r.get('parameters'), ',')} | "
                f"{r['successes']}/{r['seeds']} "
                f"[{r['wilson_low']:.2f}, {r['wilson_high']:.2f}] | "
                f"{_fmt(r['median_steps_to_success'], 'g')} | {val} | {test} | {r['lr']:g} | "
                f"{', '.join(flags)} |")
        lines.append("")
        for b in (b for b in results.get("best_on_validation", []) if b["task"] == t.name):
            test = ("not scored" if b["test_mean"] is None else
                    f"{b['test_mean']:.4g} ± {_fmt(b['test_sd'], '.2g')}")
            lines += [f"Best of the {b['arms_compared']} arms on validation at T={b['T']}: "
                      f"**{b['arm']}** (lr {b['lr']:g}, validation {_fmt(b['val_final_mean'], '.4g')}); "
                      f"its test {t.success.metric}, scored once: {test}.", ""]
    diffs = results["differences"]
    if diffs:
        lines += [("## Paired differences (arm a − arm b on the same seeds, or on the same test reviews "
                   "where the quantity says so; percentile bootstrap 95 % CI)"),
                  "", "| task | T | a − b | quantity | mean | 95 % CI |", "|---" * 6 + "|"]
        for d in diffs:
            ci = "—" if d["low"] is None else f"[{d['low']:.4g}, {d['high']:.4g}]"
            lines.append(f"| {d['task']} | {d['T']} | {d['arm_a']} − {d['arm_b']} | "
                         f"{d['quantity']} | {d['mean']:.4g} | {ci} |")
        lines.append("")
    return "\n".join(lines)


def plot_success(proto, results: dict, path: Path) -> Path:
    """Success rate against T per arm (one panel per task) with Wilson 95 % bars."""
    import numpy as np

    from lstm_jax.plots.common import plt, save
    from lstm_jax.plots.style import legend_outside

    tasks = proto.tasks
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), dpi=110,
                             layout="constrained", squeeze=False)
    for ax, t in zip(axes[0], tasks, strict=True):
        for j, arm in enumerate(proto.arms):
            rs = [r for r in results["rows"]
                  if r["task"] == t.name and r["arm"] == arm.name and r["status"] == "done"]
            if not rs:
                continue
            Ts = np.array([r["T"] for r in rs], float) * (1 + 0.015 * (j - len(proto.arms) / 2))
            p = np.array([r["success_rate"] for r in rs])
            err = np.array([[r["success_rate"] - r["wilson_low"] for r in rs],
                            [r["wilson_high"] - r["success_rate"] for r in rs]])
            ax.errorbar(Ts, p, yerr=err, marker="o", capsize=3, label=arm.name)
        ax.set_xscale("log")
        ax.set_xticks(t.lengths, [str(T) for T in t.lengths])  # the declared T, written plainly
        ax.set_xlim(min(t.lengths) / 1.3, max(t.lengths) * 1.3)  # the end points off the frame
        ax.minorticks_off()
        ax.set_ylim(-0.05, 1.05)
        ax.set_xlabel("T (lag)")
        ax.set_ylabel(f"success rate over {proto.seeds} seeds (Wilson 95 % bars)")
        ax.set_title(f"{t.name}: {t.success.metric} "
                     f"{'<' if t.success.op == 'below' else '≥'} {t.success.threshold:g}, "
                     f"{proto.steps} steps × {proto.batch}", fontsize=9)
        ax.grid(True, alpha=0.3)
        legend_outside(ax, fontsize=8)
    return save(fig, path)


def _panels(proto, results: dict) -> list[tuple[str, int]]:
    """The (task, T) panels of the per-length figures: those with a finished arm, in order (the
    protocol's first task and length while none has finished, so the figure exists)."""
    panels = sorted({(r["task"], r["T"]) for r in results["rows"] if r["status"] == "done"})
    return panels or [(t.name, t.lengths[0]) for t in proto.tasks[:1]]


def plot_final_by_arm(proto, results: dict, path: Path) -> Path:
    """Every seed's final validation metric (open circle) and test metric (filled dot) per arm,
    one panel per (task, T), with the success threshold: the spread a mean ± sd hides."""
    import numpy as np

    from lstm_jax.plots.common import save
    from lstm_jax.plots.style import legend_outside, new_figure, percent

    panels = _panels(proto, results)
    fig, axes = new_figure(max(4.5, 0.55 * len(proto.arms) + 1) * len(panels) + 2.5, 4.4,
                           ncols=len(panels))
    axes = np.atleast_1d(axes)
    for ax, (task, T) in zip(axes, panels, strict=True):
        crit = proto.task(task).success
        acc = crit.metric == "accuracy"
        scale = percent if acc else (lambda v: v)
        rows = [r for r in results["rows"] if (r["task"], r["T"]) == (task, T)]
        labelled = set()
        for i, r in enumerate(rows):
            for values, dx, kw, label in (
                    (r.get("val_final_per_seed"), -0.12, {"mfc": "none"}, "validation (final)"),
                    (r.get("test_per_seed"), 0.12, {}, "test (scored once)")):
                if values:
                    ax.plot(np.full(len(values), i + dx), [scale(v) for v in values], "o",
                            color="C0" if dx < 0 else "C1", ms=5, alpha=0.8,
                            label=None if label in labelled else label, **kw)
                    labelled.add(label)
        bound = f"{scale(crit.threshold):g} %" if acc else f"{crit.threshold:g}"
        ax.axhline(scale(crit.threshold), color="0.4", ls="--", lw=1,
                   label=f"success threshold ({'≥' if crit.op != 'below' else '<'} {bound}, "
                         "on validation)")
        ax.set_xticks(range(len(rows)), [r["arm"] for r in rows], rotation=30, ha="right")
        ax.set_xlabel("arm (each at its learning rate chosen on validation)")
        ax.set_ylabel(f"{'accuracy (%)' if acc else crit.metric} per seed")
        if not acc:
            ax.set_yscale("log")
        ax.set_title(f"{task}, T={T}: {proto.steps} steps × {proto.batch}, {proto.seeds} seeds",
                     fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
    legend_outside(axes[-1], fontsize=8)
    return save(fig, path)


def plot_curves(proto, results: dict, out: Path, path: Path) -> Path:
    """Validation metric against training step for every finished arm at its chosen learning
    rate, one panel per (task, T): each seed a thin line, the median over seeds bold, the
    success threshold dashed. Read from the points' ``metrics.jsonl`` (steps ≤ budget): where a
    final value sits on a plateau or on a slope that the budget cut off."""
    import numpy as np

    from lstm_jax.plots.common import save
    from lstm_jax.plots.runs import line_styles
    from lstm_jax.plots.style import legend_outside, new_figure, percent

    panels = _panels(proto, results)
    fig, axes = new_figure(4.6 * len(panels) + 2.5, 4.0, ncols=len(panels))
    axes = np.atleast_1d(axes)
    for ax, (task, T) in zip(axes, panels, strict=True):
        crit = proto.task(task).success
        acc = crit.metric == "accuracy"
        positive = True
        rows = [r for r in results["rows"] if (r["task"], r["T"]) == (task, T)
                and r["status"] == "done"]
        for r, (color, ls) in zip(rows, line_styles(rows), strict=True):
            where = run_dir(out, Point(task, T, r["arm"], r["lr"]))
            steps, values = validation_curve(read_jsonl(where / "metrics.jsonl"), crit.metric,
                                             proto.steps)
            if not len(steps):
                continue
            values = percent(values) if acc else values
            ax.plot(steps, values, ls, color=color, lw=0.7, alpha=0.35)
            ax.plot(steps, np.median(values, axis=1), ls, color=color, lw=2,
                    label=f"{r['arm']} (lr {r['lr']:g})")
            positive &= bool(np.all(values > 0))
        ax.axhline(percent(crit.threshold) if acc else crit.threshold, color="0.4", ls=(0, (4, 3)),
                   lw=1, label="success threshold")
        if not acc and positive:
            ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"validation {'accuracy (%)' if acc else crit.metric}")
        ax.set_title(f"{task}, T={T}: bold median of {proto.seeds} seeds, thin each seed",
                     fontsize=9)
        legend_outside(ax, fontsize=7)
    return save(fig, path)


def write_report(out: Path, proto, results: dict, plot: bool = True) -> None:
    write_json(out / "results.json", {**results, "protocol_fields": proto.to_dict()})
    atomic_write_text(out / "results.csv", _csv(results["rows"], ROW_FIELDS))
    atomic_write_text(out / "differences.csv", _csv(results["differences"], DIFF_FIELDS))
    atomic_write_text(out / "results.md", markdown(proto, results))
    if plot:
        plot_success(proto, results, out / "success_vs_T.png")
        plot_final_by_arm(proto, results, out / "final_by_arm.png")
        plot_curves(proto, results, out, out / "curves.png")
