"""Figures from probe results (``probe.json`` of ``lstm-jax probe``, ``probes.jsonl`` of training).

Every function reads records made by :func:`lstm_jax.probes.probe` (log10 values, batch mean and
standard deviation per lag) and draws on a log axis: the line is the batch mean of log10 ‖·‖ (a
geometric mean), the band ± one standard deviation of log10 ‖·‖ over rows. Values float64 cannot
show (below 1e-300, and log10 0) are left out, and the legend says where.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lstm_jax.io import read_json
from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS, save
from lstm_jax.plots.style import (
    BAND_SD,
    GEO_MEAN,
    QUANTITY_LINES,
    figure_init_label,
    legend_below,
    legend_outside,
    new_figure,
)
from lstm_jax.plots.style import (
    title as make_title,
)

PROBE_STYLE = QUANTITY_LINES  # quantity -> (line style, label): one mapping for every figure
NORM_LABEL = f"Frobenius norm\n({GEO_MEAN}; {BAND_SD})"
SPECTRAL_NORM_LABEL = f"Frobenius norm (lines), spectral norm σ_max (dots)\n({GEO_MEAN}; {BAND_SD})"
FLOOR = 1e-300  # float64 cannot show a smaller positive number: values below it are not drawn
LOG_FLOOR = float(np.log10(FLOOR))


def _arr(values) -> np.ndarray:
    """Floats; None and log10 0 = −inf (JSON ``-1e308``, an exactly zero Jacobian, e.g. a ReLU
    path that is switched off or an output that is not fed back) become NaN: not drawn."""
    a = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.where(a <= -1e307, np.nan, a)


def _records(results) -> dict:
    """``{arch: record}`` from a probe.json path, its dict, or a single record."""
    if isinstance(results, str | Path):
        results = read_json(results)
    if "archs" in results:
        return results["archs"]
    return {results["arch"]: results}


def _default_title(what: str, results, recs: dict) -> str:
    """``what`` with T, H and the initialisation of the probed networks."""
    rec = next(iter(recs.values()))
    cfg = results.get("config", {}) if isinstance(results, dict) else {}
    if isinstance(results, str | Path):
        cfg = read_json(results).get("config", {})
    return make_title(what, T=rec.get("seq_len"), H=rec.get("hidden_size"),
                      init=figure_init_label(cfg, recs), extra=rec.get("method"))


def _shown(log10v) -> np.ndarray:
    """``10 ** log10v``, NaN (not drawn) where it is below :data:`FLOOR` or unknown: a value
    under 1e-300 clipped to the floor would look like a plateau."""
    log10v = np.asarray(log10v, dtype=np.float64)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return np.where(log10v >= LOG_FLOOR, 10.0 ** log10v, np.nan)


def below_floor(x, log10v, xname: str = "k") -> str:
    """`` (below 1e-300 at k 40–99, not drawn)`` for a legend, or ``""`` when nothing is."""
    where = np.flatnonzero(np.asarray(log10v, dtype=np.float64) < LOG_FLOOR)
    if not where.size:
        return ""
    a, b = np.asarray(x)[where[[0, -1]]]
    span = f"{a:g}" if a == b else f"{a:g}–{b:g}"
    return f" (below {FLOOR:g} at {xname} {span}, not drawn)"


def _band(ax, x, mean, std, color, style, label, xname: str = "k"):
    mid = _shown(mean)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        lo = np.where(np.isnan(mid), np.nan, np.clip(10.0 ** (mean - std), FLOOR, None))
    hi = np.where(np.isnan(mid), np.nan, _shown(mean + std))
    ax.plot(x, mid, style, color=color, lw=1.8, label=label + below_floor(x, mean, xname))
    ax.fill_between(x, lo, hi, color=color, alpha=0.15, lw=0)


def plot_decay(results, path, *, probes: Sequence[str] = ("hidden", "cell", "cec"),
               title: str | None = None) -> Path:
    """Norms against lag k on a log axis: ``hidden`` for every architecture (left) and the LSTM's
    ``cell`` beside its ``cec`` curve (right, when an LSTM is present)."""
    recs = _records(results)
    has_lstm = any("log10_cell" in r or "log10_cec" in r for r in recs.values())
    fig, axes = new_figure(11.0 if has_lstm else 7.0, 4.8, ncols=2 if has_lstm else 1)
    axes = np.atleast_1d(axes)
    for arch, rec in recs.items():
        k = np.asarray(rec["k"])
        color = ARCH_COLORS.get(arch, "k")
        for name in probes:
            if f"log10_{name}" not in rec:
                continue
            style, label = PROBE_STYLE[name]
            targets = [axes[0]] if name == "hidden" else []
            if has_lstm and name != "hidden":
                targets.append(axes[1])
            if has_lstm and name == "hidden" and ("log10_cell" in rec or "log10_cec" in rec):
                targets.append(axes[1])
            for a in targets:
                _band(a, k, _arr(rec[f"log10_{name}"]), _arr(rec[f"log10_{name}_std"]), color,
                      style, f"{ARCH_LABELS.get(arch, arch)} {label}")
        if "log10_spectral" in rec:
            sig = _shown(_arr(rec["log10_spectral"]))
            axes[0].plot(rec["spectral_k"], sig, "o", ms=3.5, color=color,
                         label=f"{ARCH_LABELS.get(arch, arch)} " + r"$\sigma_{max}$")
    axes[0].set_title(title or _default_title("Gradient flow back in time", results, recs))
    if has_lstm:
        cells = [ARCH_LABELS.get(a, a) for a, r in recs.items()
                 if "log10_cell" in r or "log10_cec" in r]
        axes[1].set_title(f"{', '.join(cells)}: every path vs the forget-gate product")
    for a in axes:
        a.set_yscale("log")
        a.set_xlabel("lag k (steps back from T)")
        a.set_ylabel(NORM_LABEL)
        long = any("not drawn" in label for label in a.get_legend_handles_labels()[1])
        legend_below(a, ncol=1 if long else 2)
    if any("log10_spectral" in r for r in recs.values()):
        axes[0].set_ylabel(SPECTRAL_NORM_LABEL)
    return save(fig, path)


def plot_loss_grad(results, path, *, title: str | None = None) -> Path:
    """‖∂L/∂h_t‖ against step t on a log axis, one curve per architecture."""
    recs = _records(results)
    fig, ax = new_figure(7.5, 4.2)
    for arch, rec in recs.items():
        if "log10_loss_grad" not in rec:
            continue
        _band(ax, np.asarray(rec["t"]), _arr(rec["log10_loss_grad"]),
              _arr(rec["log10_loss_grad_std"]), ARCH_COLORS.get(arch, "k"), "-",
              ARCH_LABELS.get(arch, arch), xname="t")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel(PROBE_STYLE["loss_grad"][1] + f" ({GEO_MEAN}; {BAND_SD})")
    ax.set_title(title or _default_title("Loss gradient reaching each step", results, recs))
    legend_outside(ax)
    return save(fig, path)


def load_probe_records(path) -> list[dict]:
    """Records of a ``probes.jsonl`` file (one JSON object per line, each with ``step``)."""
    import json

    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_training_heatmap(records: Sequence[dict] | str | Path, path, *, probe: str = "hidden",
                          seed: int | None = None, title: str | None = None) -> Path:
    """Heatmap of ``log10 ‖·‖`` over lag k (x) and training step (y), plus the curves.

    ``records``: probe records each with a ``"step"`` (and optionally ``"seed"``: the first seed
    is used unless ``seed`` is given), or the path of a ``probes.jsonl`` file.
    """
    if isinstance(records, str | Path):
        records = load_probe_records(records)
    records = [r for r in records if f"log10_{probe}" in r]
    if seed is None and records and "seed" in records[0]:
        seed = records[0]["seed"]
    if seed is not None:
        records = [r for r in records if r.get("seed", seed) == seed]
    if not records:
        raise ValueError(f"no probe records with log10_{probe}")
    return save(training_heatmap_figure(records, probe, title), path)


def training_heatmap_figure(records: Sequence[dict], probe: str, title: str | None = None):
    """The Figure of :func:`plot_training_heatmap` for one seed's ``records`` (not saved): left
    the heatmap (log10 0 and unknown values blank), right the curve at each step (light = late,
    values below 1e-300 not drawn)."""
    records = sorted(records, key=lambda r: r["step"])
    steps = np.array([r["step"] for r in records])
    k = np.asarray(records[0]["k"])
    z = np.stack([_arr(r[f"log10_{probe}"]) for r in records])
    style, name = PROBE_STYLE.get(probe, ("-", probe))
    fig, (a0, a1) = new_figure(11.0, 4.4, ncols=2)
    a0.grid(False)
    y_edges = np.arange(len(steps) + 1) - 0.5
    mesh = a0.pcolormesh(np.arange(len(k) + 1) - 0.5, y_edges, z, shading="flat", cmap="viridis")
    ticks = np.linspace(0, len(steps) - 1, min(len(steps), 8)).round().astype(int)
    a0.set_yticks(ticks, [str(steps[i]) for i in ticks])
    a0.set_xlabel("lag k")
    a0.set_ylabel("training step")
    fig.colorbar(mesh, ax=a0, label=f"log10 {name} ({GEO_MEAN})")
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for i in range(len(records)):
        a1.plot(k, _shown(z[i]), style, color=cmap(i / max(len(records) - 1, 1)), lw=1.2,
                label=f"step {steps[i]}" + below_floor(k, z[i])
                if i in (0, len(records) - 1) else None)
    a1.set_yscale("log")
    a1.set_xlabel("lag k")
    a1.set_ylabel(f"{name} ({GEO_MEAN})")
    legend_outside(a1)
    arch = records[0].get("arch", "")
    a0.set_title(title or make_title(f"{ARCH_LABELS.get(arch, arch)}: {probe} over training",
                                     T=records[0].get("seq_len"),
                                     H=records[0].get("hidden_size")))
    a1.set_title("curves (light = late)")
    return fig
