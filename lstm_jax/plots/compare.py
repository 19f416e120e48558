"""Several training runs on one task, overlaid: held-out loss against step, beside the baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS, new_figure, save
from lstm_jax.plots.style import BAND_SD, BASELINE, legend_outside


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl`` (a torn last line from a crash is skipped)."""
    records = []
    for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def plot_runs(runs: dict[str, str | Path], path: str | Path, *, metric: str = "eval/loss",
              title: str = "") -> Path:
    """``runs`` maps a label (an architecture name for its colour) to a ``lstm-jax train`` run dir.

    Each line is the metric's mean over the run's seeds (a band for ± 1 sd when there are
    several); the dashed line is the task's memoryless baseline.
    """
    fig, ax = new_figure(7.5, 4.2)
    baseline, several = None, False
    for label, run_dir in runs.items():
        recs = [r for r in read_metrics(run_dir) if metric in r]
        if not recs:
            continue
        steps = np.array([r["step"] for r in recs])
        values = np.array([np.atleast_1d(r[metric]) for r in recs], dtype=float)
        mean, sd = values.mean(1), values.std(1)
        color = ARCH_COLORS.get(label)
        ax.plot(steps, mean, color=color, label=ARCH_LABELS.get(label, label))
        if values.shape[1] > 1:
            several = True
            ax.fill_between(steps, mean - sd, mean + sd, color=color, alpha=0.2)
        baseline = recs[-1].get("baseline", baseline)
    if baseline is not None and metric.endswith("loss"):
        ax.axhline(baseline, color="gray", ls="--", label=f"{BASELINE} {baseline:.3g}")
    ax.set_xlabel("training step")
    name = {"eval/loss": "held-out loss"}.get(metric, metric)
    ax.set_ylabel(f"{name}, mean over seeds" + (f" ({BAND_SD})" if several else ""))
    ax.set_yscale("log")
    ax.set_title(title)
    legend_outside(ax)
    return save(fig, path)
