"""Training curves from a run directory's ``metrics.jsonl`` (mean ± sd over seeds, baseline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_jax.plots.common import new_figure, save
from lstm_jax.plots.style import ACCURACY_LABEL, BAND_SD, BASELINE, legend_outside, percent
from lstm_jax.plots.style import title as make_title

#: legend entries of the lag sweep that explain the markers, listed after the architectures
NOTES = ("one seed", "arithmetic mean\n(per-seed values not found)", BASELINE)
METRIC_LABELS = {"eval/loss": "held-out loss", "train/loss": "training loss",
                 "eval/accuracy": ACCURACY_LABEL}


def _is_accuracy(metric: str) -> bool:
    return metric.endswith("accuracy")


def axis_label(metric: str, split: str | None = None) -> str:
    """The y label of ``metric`` measured on ``split`` (a record's ``eval_split``, "validation"
    since the three-split protocol): ``held-out loss (validation split)``,
    ``validation accuracy (%)``."""
    name = METRIC_LABELS.get(metric, metric)
    if split is None or not metric.startswith("eval/"):
        return name
    return f"{split} {name}" if _is_accuracy(metric) else f"{name} ({split} split)"


def plot_curves(records: list[dict], path: str | Path, *, title: str = "",
                metric: str = "eval/loss", log_y: bool = True) -> Path:
    """``metric`` against step: the mean over seeds, a ± sd band, each seed thin, the baseline."""
    fig, ax = new_figure()
    steps = np.array([r["step"] for r in records])
    values = np.array([np.atleast_1d(r[metric]) for r in records], dtype=float)  # (n, S)
    if _is_accuracy(metric):
        values = percent(values)
    mean, sd = values.mean(1), values.std(1, ddof=1) if values.shape[1] > 1 else 0 * values[:, 0]
    for s in range(values.shape[1]):
        ax.plot(steps, values[:, s], lw=0.6, alpha=0.4, color="C0")
    name = METRIC_LABELS.get(metric, metric)
    seeds = values.shape[1]
    ax.plot(steps, mean, color="C0", lw=2,
            label=f"{name}, mean of {seeds} seeds ({BAND_SD})" if seeds > 1 else f"{name} (1 seed)")
    if seeds > 1:
        ax.fill_between(steps, mean - sd, mean + sd, color="C0", alpha=0.2)
    if "train/loss" in records[0] and metric == "eval/loss":
        train = np.array([np.atleast_1d(r["train/loss"]) for r in records], dtype=float).mean(1)
        ax.plot(steps, train, color="C1", lw=1, label="training loss (mean)")
    if metric.endswith("loss") and records[0].get("baseline") is not None:
        ax.axhline(records[0]["baseline"], color="k", ls="--", lw=1,
                   label=f"{BASELINE} {records[0]['baseline']:.4g}")
    if log_y and metric.endswith("loss") and np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(axis_label(metric, records[0].get("eval_split")))
    ax.set_title(title)
    legend_outside(ax)
    return save(fig, path)


def plot_run(run_dir: str | Path) -> list[Path]:
    """``curves.png`` (eval loss) and one figure per other eval metric, into ``run_dir``."""
    from lstm_jax.io import read_json
    from lstm_jax.metrics import read_jsonl

    run_dir = Path(run_dir)
    records = read_jsonl(run_dir / "metrics.jsonl")
    if not records:
        return []
    cfg = read_json(run_dir / "config.json")
    from lstm_jax.plots.style import init_label

    title = make_title(f"{cfg['arch']} on {cfg['task']}", T=cfg["seq_len"], H=cfg["hidden"],
                       init=init_label(cfg) or "default init")
    paths = [plot_curves(records, run_dir / "curves.png", title=title)]
    for key in records[0]:
        if key.startswith("eval/") and key != "eval/loss":
            name = key.split("/", 1)[1]
            paths.append(plot_curves(records, run_dir / f"curves_{name}.png", title=title,
                                     metric=key, log_y=False))
    return paths


def plot_lag_sweep(rows: list[dict], path: str | Path) -> Path:
    """Final eval loss / baseline against T, one panel per task, one line per architecture; rows
    as written by ``experiments/sweep_lag.py`` (results.json). Each seed is a dot, the line the
    geometric mean over seeds with a bar of ± 1 sd of log10 (always above 0 on the log axis);
    a point whose per-seed values are not found (:func:`seed_ratios`) shows its arithmetic mean,
    hollow and without a bar."""
    from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS
    from lstm_jax.plots.style import legend_below
    from lstm_jax.plots.style import new_figure as styled_figure

    tasks = sorted({r["task"] for r in rows})
    fig, axes = styled_figure(5.5 * len(tasks), 4.8, ncols=len(tasks))
    for ax, task in zip(np.atleast_1d(axes), tasks, strict=True):
        sel = [r for r in rows if r["task"] == task]
        archs, drawn = _ordered({r["arch"] for r in sel}), set()
        names = [ARCH_LABELS.get(a, a) for a in archs]
        for arch, name in zip(archs, names, strict=True):
            points = sorted((r for r in sel if r["arch"] == arch), key=lambda r: r["seq_len"])
            drawn |= _lag_line(ax, points, ARCH_COLORS.get(arch), name)
        if "seeds" in drawn:
            ax.plot([], [], "o", color="0.4", ms=3, alpha=0.5, label=NOTES[0])
        if "means" in drawn:
            ax.plot([], [], "o", mfc="none", color="0.4", label=NOTES[1])
        ax.axhline(1.0, color="k", ls="--", lw=1, label=NOTES[2])
        ax.set_xscale("log")
        ax.set_yscale("log")
        lengths = sorted({r["seq_len"] for r in sel})
        ax.set_xticks(lengths, [str(t) for t in lengths])
        ax.minorticks_off()
        ax.set_xlabel("sequence length T (lag)")
        ax.set_ylabel(f"final held-out loss / {BASELINE}")
        ax.set_title(make_title(f"{task}: geometric mean over seeds, bar ± 1 sd of log10",
                                H=sel[0].get("hidden") if sel else None, init=_sweep_init(sel)))
        handles, labels = ax.get_legend_handles_labels()
        first = sorted(range(len(labels)), key=lambda i: (names + list(NOTES)).index(labels[i]))
        legend_below(ax, ncol=4, handles=[handles[i] for i in first],
                     labels=[labels[i] for i in first])
    return save(fig, path)


def seed_ratios(row: dict) -> np.ndarray | None:
    """A sweep point's final loss / baseline per seed: ``row["loss_over_baseline_per_seed"]``,
    else from the ``summary.json`` in ``row["run_dir"]``; None when neither is there."""
    from lstm_jax.io import read_json

    if row.get("loss_over_baseline_per_seed") is not None:
        return np.array(row["loss_over_baseline_per_seed"], dtype=float)
    if not row.get("run_dir") or not (Path(row["run_dir"]) / "summary.json").is_file():
        return None
    s = read_json(Path(row["run_dir"]) / "summary.json")
    per_seed = s.get("final", {}).get("eval/loss", {}).get("per_seed")
    base = s.get("task", {}).get("baseline")
    if not per_seed or not base:
        return None
    return np.array([np.nan if v is None else v for v in per_seed], dtype=float) / base


def _lag_line(ax, points: list[dict], color, label: str) -> set[str]:
    """One architecture: per-seed dots and the geometric mean ± 1 sd of log10, or a hollow
    arithmetic mean where per-seed values are not found; returns which of {"seeds", "means"}
    it drew."""
    T, centre, lo, hi, means = [], [], [], [], []
    for r in points:
        v = seed_ratios(r)
        v = None if v is None else v[np.isfinite(v) & (v > 0)]
        if v is None or not v.size:
            means.append((r["seq_len"], r["loss_over_baseline_mean"]))
            continue
        logs = np.log10(v)
        m, sd = logs.mean(), logs.std(ddof=1) if v.size > 1 else 0.0
        T.append(r["seq_len"])
        centre.append(10 ** m)
        lo.append(10 ** m - 10 ** (m - sd))
        hi.append(10 ** (m + sd) - 10 ** m)
        ax.plot([r["seq_len"]] * v.size, v, "o", ms=3, alpha=0.5, color=color)
    if T:
        ax.errorbar(T, centre, yerr=[lo, hi], marker="o", ms=4.5, capsize=3, color=color,
                    label=label)
    if means:
        x, y = zip(*means, strict=True)
        ax.plot(x, y, "o--", mfc="none", color=color, label=None if T else label)
    return ({"seeds"} if T else set()) | ({"means"} if means else set())


def _sweep_init(rows: list[dict]) -> str:
    """The initialisation the sweep rows name: chrono (T_max = T) for the cells given it."""
    from lstm_jax.plots.style import arch_label

    chrono = _ordered({r["arch"] for r in rows if r.get("chrono")})
    if not chrono:
        return "default init"
    return f"chrono T_max=T for {', '.join(arch_label(a) for a in chrono)}"


def _ordered(archs) -> list[str]:
    """Registered cells in registry order, then any other names sorted."""
    from lstm_jax.cells import ARCHS

    return [a for a in ARCHS if a in archs] + sorted(set(archs) - set(ARCHS))
