"""Figures of ``lstm-jax train`` run directories, read from their files only.

* :func:`plot_run_curves`: several runs' ``metrics.jsonl`` overlaid (one metric against step; the
  mean over each run's seeds with a ± 1 sd band; the task's baseline dashed; accuracy in %).
* :func:`plot_probe_heatmap`: one run's ``probes.jsonl`` (written with ``--probe-every``) as a
  heatmap of log10 ‖∂h_T/∂h_{T−k}‖ over training step × lag k, beside the curves at each step.
  Each value is the probe's batch mean of log10 ‖·‖ (a geometric mean over the probe batch).

Both follow :mod:`lstm_jax.plots.style` (architecture colours, legend outside, the shared
labels and line styles) and return the matplotlib Figure (already saved to ``path``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lstm_jax.errors import UserError
from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS, new_figure, save
from lstm_jax.plots.style import BAND_SD, BASELINE, init_label, legend_outside, percent
from lstm_jax.plots.style import title as make_title
from lstm_jax.plots.training import METRIC_LABELS, axis_label

#: Config fields that tell runs apart in a legend, in the order they are named.
_LABEL_FIELDS = ("arch", "task", "seq_len", "hidden", "layers", "lr", "optimizer", "chrono",
                 "forget_bias", "recurrent_scale", "batch", "steps")
_DASHES = ("-", "--", "-.", ":")  # runs of one architecture, told apart when colour is the arch


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


def line_styles(configs: Sequence[dict]) -> list[tuple]:
    """(colour, line style) per run: the architecture's colour when the runs differ by
    architecture (then runs of one architecture get different dashes) or there is one run,
    else one colour each."""
    archs = [c.get("arch") for c in configs]
    if not all(a in ARCH_COLORS for a in archs) or len(set(archs)) == 1 < len(archs):
        return [(f"C{i % 10}", "-") for i in range(len(configs))]
    return [(ARCH_COLORS[a], _DASHES[archs[:i].count(a) % len(_DASHES)])
            for i, a in enumerate(archs)]


def _default_title(metric: str, configs: Sequence[dict]) -> str:
    """``held-out loss: adding (T=50, H=128, LSTM forget bias 1)``: what every run shares (the
    architecture too, ``held-out loss: LSTM on adding``, when it is one)."""
    def shared(field):
        values = {repr(c.get(field)) for c in configs}
        return configs[0].get(field) if len(values) == 1 else None

    arch, task = shared("arch"), shared("task")
    inits = {init_label({**c, "arch": arch}) for c in configs}
    init = (inits.pop() or "default init") if len(inits) == 1 and configs[0] else None
    on = " on ".join(x for x in (ARCH_LABELS.get(arch, arch), task) if x)
    what = METRIC_LABELS.get(metric, metric).replace(" (%)", "") + (f": {on}" if on else "")
    return make_title(what, T=shared("seq_len"), H=shared("hidden"), init=init)


def _draw_baselines(ax, runs, metric: str) -> None:
    """The task baseline of each run (one dashed line per distinct value), for loss metrics."""
    baselines = {}
    for cfg, recs in runs:
        b = recs[-1].get("baseline")
        if b is not None and metric.endswith("loss"):
            baselines.setdefault(float(b), []).append(
                f"{cfg.get('task', '?')}, T={cfg.get('seq_len', '?')}")
    for j, (b, where) in enumerate(sorted(baselines.items())):
        what = BASELINE if len(baselines) == 1 else f"{BASELINE} ({'; '.join(sorted(set(where)))})"
        ax.axhline(b, color="k", ls=(0, (4, 2 + j)), lw=1, label=f"{what} {b:.4g}")


def plot_run_curves(run_dirs: Sequence[str | Path], path: str | Path, *,
                    metric: str = "eval/loss", labels: Sequence[str] | None = None,
                    title: str | None = None):
    """Overlay ``metric`` against training step for several runs.

    Args:
      run_dirs: ``lstm-jax train`` output directories (each with ``metrics.jsonl``).
      path: the PNG (or SVG, PDF) to write.
      metric: a key of the metrics records, e.g. ``eval/loss``, ``eval/accuracy`` (drawn in %),
        ``train/loss``.
      labels: legend labels (default: :func:`run_labels`).
      title: figure title (default: the metric and what the runs share: task, T, H, init).

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
    for (_, recs), label, (color, ls) in zip(runs, labels, line_styles(configs), strict=True):
        recs = [r for r in recs if metric in r]
        steps = np.array([r["step"] for r in recs])
        values = np.array([np.atleast_1d(r[metric]) for r in recs], dtype=float)  # (n, seeds)
        if metric.endswith("accuracy"):
            values = percent(values)
        mean, seeds = values.mean(1), values.shape[1]
        ax.plot(steps, mean, ls, color=color, lw=1.8,
                label=label + (f" (mean of {seeds} seeds, {BAND_SD})" if seeds > 1 else ""))
        if seeds > 1:
            sd = values.std(1, ddof=1)
            ax.fill_between(steps, mean - sd, mean + sd, color=color, alpha=0.2, lw=0)
        positive &= bool(np.all(values > 0))
    _draw_baselines(ax, runs, metric)
    if metric.endswith("loss") and positive:
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel(axis_label(metric, runs[0][1][-1].get("eval_split")))
    ax.set_title(title if title is not None else _default_title(metric, configs))
    legend_outside(ax)
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
      title: default: the run's architecture, task, T, H, initialisation and seed.

    Returns:
      The Figure of :func:`lstm_jax.plots.probes.training_heatmap_figure`: left the heatmap
      (x lag k, y training step, colour log10 norm; log10 0 blank), right the curve at each
      recorded step on a log axis (light = late).
    """
    from lstm_jax.plots.probes import training_heatmap_figure

    run_dir = Path(run_dir)
    records = _probe_records(run_dir)
    key = f"log10_{probe}"
    seeds = sorted({r.get("seed", 0) for r in records})
    if seed is None:
        seed = seeds[0]
    elif seed not in seeds:
        raise UserError(f"--seed={seed} has no probes in {run_dir / 'probes.jsonl'}; its seeds "
                        f"are {', '.join(map(str, seeds))}")
    records = [r for r in records if r.get("seed", 0) == seed and key in r]
    if not records:
        raise UserError(f"--probe={probe!r}: no record in {run_dir / 'probes.jsonl'} has {key} "
                        "(cell and cec exist for the LSTM only)")
    if title is None:
        cfg = _config(run_dir)
        arch = records[0].get("arch", cfg.get("arch", ""))
        what = f"{ARCH_LABELS.get(arch, arch)}: {probe} probe over training"
        if cfg.get("task"):
            what += f" on {cfg['task']}"
        title = make_title(what, T=cfg.get("seq_len"), H=cfg.get("hidden"),
                           init=init_label({**cfg, "arch": arch}) or "default init",
                           extra=f"seed {seed}")
    fig = training_heatmap_figure(records, probe, title)
    save(fig, path)
    return fig
