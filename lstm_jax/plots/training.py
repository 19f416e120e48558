"""Training curves from a run directory's ``metrics.jsonl`` (mean ± sd over seeds, baseline)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lstm_jax.plots.common import new_figure, save


def plot_curves(records: list[dict], path: str | Path, *, title: str = "",
                metric: str = "eval/loss", log_y: bool = True) -> Path:
    """``metric`` against step: the mean over seeds, a ± sd band, each seed thin, the baseline."""
    fig, ax = new_figure()
    steps = np.array([r["step"] for r in records])
    values = np.array([r[metric] for r in records], dtype=float)  # (n, S)
    mean, sd = values.mean(1), values.std(1, ddof=1) if values.shape[1] > 1 else 0 * values[:, 0]
    for s in range(values.shape[1]):
        ax.plot(steps, values[:, s], lw=0.6, alpha=0.4, color="C0")
    ax.plot(steps, mean, color="C0", lw=2, label=f"{metric} (mean of {values.shape[1]} seeds)")
    ax.fill_between(steps, mean - sd, mean + sd, color="C0", alpha=0.2)
    if "train/loss" in records[0] and metric == "eval/loss":
        train = np.array([r["train/loss"] for r in records], dtype=float).mean(1)
        ax.plot(steps, train, color="C1", lw=1, label="train loss (mean)")
    if metric.endswith("loss") and records[0].get("baseline") is not None:
        ax.axhline(records[0]["baseline"], color="k", ls="--", lw=1,
                   label=f"memoryless baseline {records[0]['baseline']:.4g}")
    if log_y and metric.endswith("loss") and np.all(values > 0):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(fontsize=8)
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
    title = f"{cfg['arch']} on {cfg['task']}, T={cfg['seq_len']}, H={cfg['hidden']}"
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
    import matplotlib.pyplot as plt

    from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS

    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), dpi=110,
                             layout="constrained", squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
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
        ax.axhline(1.0, color="k", ls="--", lw=1, label="memoryless baseline")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T (lag)")
        ax.set_ylabel("final eval loss / baseline")
        ax.set_title(task)
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return save(fig, path)


def _ordered(archs) -> list[str]:
    """Registered cells in registry order, then any other names sorted."""
    from lstm_jax.cells import ARCHS

    return [a for a in ARCHS if a in archs] + sorted(set(archs) - set(ARCHS))
