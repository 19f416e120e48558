"""Figures of ``lstm-jax train`` run directories, read from their files only.

* :func:`plot_run_curves`: several runs' ``metrics.jsonl`` overlaid (one metric against step; the
  mean over each run's seeds with a ± 1 sd band; the task's baseline dashed).
* :func:`plot_probe_heatmap`: one run's ``probes.jsonl`` (written with ``--probe-every``) as a
  heatmap of log10 ‖∂h_T/∂h_{T−k}‖ over training step × lag k, beside the curves at each step.
  Each value is the probe's batch mean of log10 ‖·‖ (a geometric mean over the probe batch).

Both return the matplotlib Figure (already saved to ``path``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lstm_jax.errors import UserError
from lstm_jax.plots.common import ARCH_LABELS, new_figure, save

#: Config fields that tell runs apart in a legend, in the order they are named.
_LABEL_FIELDS = ("arch", "task", "seq_len", "hidden", "layers", "lr", "optimizer", "chrono",
                 "forget_bias", "recurrent_scale", "batch", "steps")
_PROBE_NAMES = {"hidden": r"$\|\partial h_T/\partial h_{T-k}\|_F$",
                "cell": r"$\|\partial C_T/\partial C_{T-k}\|_F$",
                "cec": r"$\|\Pi_j f_j\|$ (CEC path)"}


def _config(run_dir: Path) -> dict:
    from lstm_jax.io import read_json

    path = run_dir / "config.json"
    return read_json(path) if path.is_file() else {}


def _metrics(run_dir: Path) -> list[dict]:
    from lstm_jax.metrics import read_jsonl

    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        raise UserError(f"RUN_DIR={str(run_dir)!r} has no metrics.jsonl; pass directories "
                        "written by `lstm-jax train`")
    records = read_jsonl(path)
    if not records:
        raise UserError(f"RUN_DIR={str(run_dir)!r}: metrics.jsonl holds no complete record yet")
    return records


def run_labels(configs: Sequence[dict], names: Sequence[str]) -> list[str]:
    """A legend label per run: the config fields in which the runs differ (``arch=lstm,
    seq_len=50``), else the run directory's name."""
    differ = [f for f in _LABEL_FIELDS
              if len({repr(c.get(f)) for c in configs}) > 1 and all(f in c for c in configs)]
    labels = [", ".join(f"{f}={c[f]}" for f in differ) if differ else name
              for c, name in zip(configs, names, strict=True)]
    if len(set(labels)) < len(labels):  # still ambiguous: prefix the directory names
        labels = [f"{name}: {label}" if label != name else name
                  for name, label in zip(names, labels, strict=True)]
    return labels


def plot_run_curves(run_dirs: Sequence[str | Path], path: str | Path, *,
                    metric: str = "eval/loss", labels: Sequence[str] | None = None,
                    title: str | None = None):
    """Overlay ``metric`` against training step for several runs.

    Args:
      run_dirs: ``lstm-jax train`` output directories (each with ``metrics.jsonl``).
      path: the PNG (or SVG, PDF) to write.
      metric: a key of the metrics records, e.g. ``eval/loss``, ``eval/accuracy``, ``train/loss``.
      labels: legend labels (default: :func:`run_labels`).
      title: figure title (default: what the runs share, e.g. ``adding, T=50``).

    Returns:
      The Figure.
    """
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise UserError("RUN_DIR: give at least one run directory")
    runs = [(_config(d), _metrics(d)) for d in dirs]
    for d, (_, recs) in zip(dirs, runs, strict=True):
        if not any(metric in r for r in recs):
            have = sorted({k for r in recs for k in r if k.startswith(("eval/", "train/"))})
            raise UserError(f"--metric={metric!r} is not in {d / 'metrics.jsonl'}; it has "
                            f"{', '.join(have)}")
    configs = [c for c, _ in runs]
    if labels is None:
        labels = run_labels(configs, [d.name for d in dirs])
    elif len(labels) != len(dirs):
        raise UserError(f"--labels has {len(labels)} names for {len(dirs)} run directories")
    fig, ax = new_figure()
    positive = True
    for i, ((_, recs), label) in enumerate(zip(runs, labels, strict=True)):
        recs = [r for r in recs if metric in r]
        steps = np.array([r["step"] for r in recs])
        values = np.array([np.atleast_1d(r[metric]) for r in recs], dtype=float)  # (n, seeds)
        mean = values.mean(1)
        seeds = values.shape[1]
        ax.plot(steps, mean, color=f"C{i % 10}", lw=1.8,
                label=label + (f" (mean of {seeds} seeds ± 1 sd)" if seeds > 1 else ""))
        if seeds > 1:
            sd = values.std(1, ddof=1)
            ax.fill_between(steps, mean - sd, mean + sd, color=f"C{i % 10}", alpha=0.2, lw=0)
        positive &= bool(np.all(values > 0))
    baselines = {}
    for cfg, recs in runs:
        b = recs[-1].get("baseline")
        if b is not None and metric.endswith("loss"):
            baselines.setdefault(float(b), []).append(
                f"{cfg.get('task', '?')}, T={cfg.get('seq_len', '?')}")
    for j, (b, where) in enumerate(sorted(baselines.items())):
        what = "baseline" if len(baselines) == 1 else f"baseline ({'; '.join(sorted(set(where)))})"
        ax.axhline(b, color="k", ls=(0, (4, 2 + j)), lw=1, label=f"{what}: {b:.4g}")
    if metric.endswith("loss") and positive:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(metric)
    if title is None:
        shared = [f for f in ("task", "seq_len", "hidden") if configs[0].get(f) is not None
                  and len({repr(c.get(f)) for c in configs}) == 1]
        title = ", ".join(f"T={configs[0][f]}" if f == "seq_len" else f"H={configs[0][f]}"
                          if f == "hidden" else str(configs[0][f]) for f in shared)
        title = f"{metric} — {title}" if title else metric
    ax.set_title(title)
    ax.legend(fontsize=8, loc="best")
    save(fig, path)
    return fig


def _probe_records(run_dir: Path) -> list[dict]:
    from lstm_jax.metrics import read_jsonl

    path = run_dir / "probes.jsonl"
    if not path.is_file():
        raise UserError(f"--probes: {str(run_dir)!r} has no probes.jsonl; train with "
                        "--probe-every N to record probes during training")
    records = read_jsonl(path)
    if not records:
        raise UserError(f"--probes: {path} holds no complete record yet")
    return records


def plot_probe_heatmap(run_dir: str | Path, path: str | Path, *, probe: str = "hidden",
                       seed: int | None = None, title: str | None = None):
    """log10 of a probe's norm over (training step × lag k) from ``run_dir/probes.jsonl``.

    Args:
      run_dir: a run trained with ``--probe-every``.
      path: the figure to write.
      probe: ``hidden`` (‖∂h_T/∂h_{T−k}‖), ``cell`` (‖∂C_T/∂C_{T−k}‖, LSTM) or ``cec`` (∏f).
      seed: which of the run's seeds (default: its first).
      title: default: the run's architecture, task, T, H and seed.

    Returns:
      The Figure: left the heatmap (x lag k, y training step, colour log10 norm), right the
      curve at each recorded step on a log axis (light = late).
    """
    run_dir = Path(run_dir)
    records = _probe_records(run_dir)
    key = f"log10_{probe}"
    seeds = sorted({r.get("seed", 0) for r in records})
    if seed is None:
        seed = seeds[0]
    elif seed not in seeds:
        raise UserError(f"--seed={seed} has no probes in {run_dir / 'probes.jsonl'}; its seeds "
                        f"are {', '.join(map(str, seeds))}")
    records = sorted((r for r in records if r.get("seed", 0) == seed and key in r),
                     key=lambda r: r["step"])
    if not records:
        raise UserError(f"--probe={probe!r}: no record in {run_dir / 'probes.jsonl'} has {key} "
                        "(cell and cec exist for the LSTM only)")
    steps = np.array([r["step"] for r in records], dtype=float)
    k = np.asarray(records[0]["k"], dtype=float)
    z = np.array([[np.nan if v is None else v for v in r[key]] for r in records], dtype=float)
    fig, a0 = new_figure(11.0, 4.2)
    fig.clf()
    a0, a1 = fig.subplots(1, 2)

    def edges(x):
        if len(x) == 1:
            return np.array([x[0] - 0.5, x[0] + 0.5])
        mid = (x[1:] + x[:-1]) / 2
        return np.concatenate([[x[0] - (mid[0] - x[0])], mid, [x[-1] + (x[-1] - mid[-1])]])

    mesh = a0.pcolormesh(edges(k), edges(steps), z, shading="flat", cmap="viridis")
    name = _PROBE_NAMES.get(probe, probe)
    fig.colorbar(mesh, ax=a0, label=f"log10 {name}")
    a0.set_xlabel("lag k")
    a0.set_ylabel("training step")
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for i, s in enumerate(steps):
        with np.errstate(over="ignore", under="ignore"):
            a1.plot(k, np.clip(10.0 ** z[i], 1e-300, None), color=cmap(i / max(len(steps) - 1, 1)),
                    lw=1.2, label=f"step {int(s)}" if i in (0, len(steps) - 1) else None)
    a1.set_yscale("log")
    a1.set_xlabel("lag k")
    a1.set_ylabel(f"{name} (geometric mean over the batch)")
    a1.grid(True, alpha=0.3, which="both")
    a1.legend(fontsize=8)
    a1.set_title("each recorded step (light = late)")
    from matplotlib.ticker import MaxNLocator

    for a in (a0, a1):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    cfg = _config(run_dir)
    if title is None:
        arch = records[0].get("arch", cfg.get("arch", ""))
        parts = [ARCH_LABELS.get(arch, arch)]
        if cfg:
            parts.append(f"{cfg['task']}, T={cfg['seq_len']}, H={cfg['hidden']}")
        parts.append(f"seed {seed}")
        title = f"{probe} probe over training: " + ", ".join(p for p in parts if p)
    a0.set_title(title, fontsize=10)
    save(fig, path)
    return fig
