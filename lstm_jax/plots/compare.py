"""Several training runs on one task, overlaid: held-out loss against step, beside the baseline."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS, new_figure, save
from lstm_jax.plots.style import ACCURACY_LABEL, BAND_SD, BASELINE, legend_outside, percent


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (:func:`lstm_jax.metrics.read_jsonl`: a torn
    last line from a crash is skipped, a damaged line elsewhere raises)."""
    from lstm_jax.metrics import read_jsonl

    return read_jsonl(Path(run_dir) / "metrics.jsonl")


def plot_runs(runs: dict[str, str | Path], path: str | Path, *, metric: str = "eval/loss",
              title: str = "") -> Path:
    """``runs`` maps a label (an architecture name for its colour) to a ``lstm-jax train`` run dir.

    Each line is the metric's mean over the run's seeds (a band for ± 1 sample sd when there are
    several; accuracy in %); the dashed line is the task's memoryless baseline. The y axis is
    logarithmic for a loss that stays positive.
    """
    fig, ax = new_figure(7.5, 4.2)
    baseline, several, positive = None, False, True
    for label, run_dir in runs.items():
        recs = [r for r in read_metrics(run_dir) if metric in r]
        if not recs:
            continue
        steps = np.array([r["step"] for r in recs])
        values = np.array([np.atleast_1d(r[metric]) for r in recs], dtype=float)
        if metric.endswith("accuracy"):
            values = percent(values)
        mean = values.mean(1)
        color = ARCH_COLORS.get(label)
        ax.plot(steps, mean, color=color, label=ARCH_LABELS.get(label, label))
        if values.shape[1] > 1:
            several = True
            sd = values.std(1, ddof=1)
            ax.fill_between(steps, mean - sd, mean + sd, color=color, alpha=0.2)
        positive &= bool(np.all(values > 0))
        baseline = recs[-1].get("baseline", baseline)
    if baseline is not None and metric.endswith("loss"):
        ax.axhline(baseline, color="gray", ls="--", label=f"{BASELINE} {baseline:.3g}")
    ax.set_xlabel("training step")
    name = {"eval/loss": "held-out loss", "eval/accuracy": ACCURACY_LABEL}.get(metric, metric)
    ax.set_ylabel(f"{name}, mean over seeds" + (f" ({BAND_SD})" if several else ""))
    if metric.endswith("loss") and positive:
        ax.set_yscale("log")
    ax.set_title(title)
    legend_outside(ax)
    return save(fig, path)
