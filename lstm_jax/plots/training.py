"""Training curves from a run directory's ``metrics.jsonl`` (mean ± sd over seeds, baseline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_jax.plots.common import new_figure, save
from lstm_jax.plots.style import ACCURACY_LABEL, BAND_SD, BASELINE, legend_outside, percent
from lstm_jax.plots.style import title as make_title

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
            label=f"{name}, mean of {seeds} seeds" + (f" ({BAND_SD})" if seeds > 1 else ""))
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
    """Final eval loss / baseline against T, one panel per task, one line per architecture
    (mean ± sd over seeds); rows as written by ``experiments/sweep_lag.py`` (results.json)."""
    from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS
    from lstm_jax.plots.style import legend_below
    from lstm_jax.plots.style import new_figure as styled_figure

    tasks = sorted({r["task"] for r in rows})
    fig, axes = styled_figure(5.5 * len(tasks), 4.6, ncols=len(tasks))
    for ax, task in zip(np.atleast_1d(axes), tasks, strict=True):
        for arch in _ordered({r["arch"] for r in rows}):
            sel = sorted((r for r in rows if r["task"] == task and r["arch"] == arch),
                         key=lambda r: r["seq_len"])
            if not sel:
                continue
            T = [r["seq_len"] for r in sel]
            ratio = np.array([r["loss_over_baseline_mean"] for r in sel])
            sd = np.array([r["loss_over_baseline_sd"] for r in sel])
            ax.errorbar(T, ratio, yerr=sd, marker="o", capsize=3, color=ARCH_COLORS.get(arch),
                        label=ARCH_LABELS.get(arch, arch))
        ax.axhline(1.0, color="k", ls="--", lw=1, label=BASELINE)
        ax.set_xscale("log")
        ax.set_yscale("log")
        lengths = sorted({r["seq_len"] for r in rows if r["task"] == task})
        ax.set_xticks(lengths, [str(t) for t in lengths])
        ax.minorticks_off()
        ax.set_xlabel("sequence length T (lag)")
        ax.set_ylabel(f"final held-out loss / {BASELINE}")
        sel = [r for r in rows if r["task"] == task]
        ax.set_title(make_title(f"{task}: mean ± 1 sd over seeds",
                                H=sel[0].get("hidden") if sel else None))
        legend_below(ax, ncol=4)
    return save(fig, path)


def _ordered(archs) -> list[str]:
    """Registered cells in registry order, then any other names sorted."""
    from lstm_jax.cells import ARCHS

    return [a for a in ARCHS if a in archs] + sorted(set(archs) - set(ARCHS))
