"""What :mod:`imdb_retention` writes and prints: retention.csv, occlusion.csv, retention.png
(from retention.json, so ``--plot-only`` redraws it) and one console line per arm."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
from retention_measure import QUANTITIES

# -- outputs -----------------------------------------------------------------------------------


def _cell(v) -> str:
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.6g}"


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    from lstm_jax.io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def _values(v) -> np.ndarray:
    """A JSON list (None for NaN) as a float array."""
    return np.array([np.nan if x is None else x for x in v], np.float64)


def retention_rows(result: dict) -> list[list]:
    rows = []
    for arm, rec in result["arms"].items():
        s = rec["summary"]
        for d in result["distance"]:
            row = [arm, rec["arch"], rec["readout"], d]
            for q in QUANTITIES:
                if q in s:
                    row += [_cell(float(_values(s[q]["log10_mean"])[d])),
                            _cell(float(_values(s[q]["log10_sd"])[d])), int(s[q]["zeros"][d])]
                else:
                    row += ["", "", ""]
            rows.append(row)
    return rows


def occlusion_rows(result: dict) -> list[list]:
    keys = ("accuracy", "accuracy_occluded", "delta_accuracy", "loss", "loss_occluded",
            "delta_loss")
    return [[arm, rec["arch"], rec["readout"], s["seed"], len(result["reviews"]["rows"]),
             result["args"]["occlude"], *(_cell(s["occlusion"][k]) for k in keys)]
            for arm, rec in result["arms"].items() for s in rec["per_seed"]]


def write_tables(out: Path, result: dict) -> None:
    write_csv(out / "retention.csv",
              ["arm", "arch", "readout", "distance", "embedding_log10_mean",
               "embedding_log10_sd", "embedding_zeros", "cell_log10_mean", "cell_log10_sd",
               "cell_zeros"], retention_rows(result))
    write_csv(out / "occlusion.csv",
              ["arm", "arch", "readout", "seed", "reviews", "occluded_tokens", "accuracy",
               "accuracy_occluded", "delta_accuracy", "loss", "loss_occluded", "delta_loss"],
              occlusion_rows(result))


def _arm_colors(arms: dict) -> dict[str, str]:
    """Colour = architecture; a second arm of one architecture and readout gets a setting colour."""
    from lstm_jax.plots.style import ARCH_COLORS, SETTING_COLORS

    colors, seen, extra = {}, set(), iter(SETTING_COLORS * 4)
    for arm, rec in arms.items():
        key = (rec["arch"], rec["readout"])
        colors[arm] = ARCH_COLORS.get(rec["arch"], "#7f7f7f") if key not in seen else next(extra)
        seen.add(key)
    return colors


def plot(path: Path, result: dict) -> Path:
    """R(d) of every arm, one panel per readout: solid ‖∂L/∂e_t‖, dashed ‖∂L/∂C_t‖, ± 1 sd over
    seeds as a band; colour = architecture (:mod:`lstm_jax.plots.style`)."""
    from matplotlib.lines import Line2D

    from lstm_jax.plots.common import save
    from lstm_jax.plots.style import legend_below, line_style, new_figure, title

    arms = result["arms"]
    readouts = list(dict.fromkeys(rec["readout"] for rec in arms.values()))
    fig, axes = new_figure(4.6 * len(readouts), 5.2, ncols=len(readouts))
    axes = np.atleast_1d(axes)
    colors = _arm_colors(arms)
    d = np.asarray(result["distance"])
    lo, hi = result["args"]["norm_range"]
    seeds = sorted({rec["seeds"] for rec in arms.values()})
    n_seeds = str(seeds[0]) if len(seeds) == 1 else f"{seeds[0]}–{seeds[-1]}"
    for ax, readout in zip(axes, readouts, strict=True):
        for arm, rec in arms.items():
            if rec["readout"] != readout:
                continue
            for q, style in (("embedding", line_style("loss_grad")), ("cell", line_style("cell"))):
                if q not in rec["summary"]:
                    continue
                mean = _values(rec["summary"][q]["log10_mean"])
                sd = np.nan_to_num(_values(rec["summary"][q]["log10_sd"]))
                ax.semilogy(d, 10.0 ** mean, style, color=colors[arm],
                            label=arm if q == "embedding" else None)
                ax.fill_between(d, 10.0 ** (mean - sd), 10.0 ** (mean + sd), color=colors[arm],
                                alpha=0.15, lw=0)
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], color="k", ls=line_style("loss_grad")))
        labels.append("‖∂L/∂e(T−d)‖ (input embedding)")
        if any(rec["readout"] == readout and "cell" in rec["summary"] for rec in arms.values()):
            handles.append(Line2D([], [], color="k", ls=line_style("cell")))
            labels.append("‖∂L/∂C(T−d)‖ (cell state, layer 1)")
        legend_below(ax, ncol=2, handles=handles, labels=labels)
        ax.set_title(f"readout {readout}")
        ax.set_xlabel(f"distance d from the review's end (tokens; last {result['window']} kept)")
    axes[0].set_ylabel(f"gradient norm / its median over d ∈ [{lo}, {hi}]\n(geometric mean over "
                       f"{len(result['reviews']['rows'])} reviews; band ±1 sd over {n_seeds} "
                       "seeds)")
    H = sorted({rec["hidden"] for rec in arms.values()})
    fig.suptitle(title("Gradient retention on trained IMDB models",
                       H=H[0] if len(H) == 1 else None,
                       extra=f"window of the last {result['window']} tokens, "
                             f"{len(result['reviews']['rows'])} validation reviews"))
    return save(fig, path)


def report(result: dict, log=print) -> None:
    """One line per arm: R(d) at the summary distances and Δaccuracy (mean ± sd over seeds)."""
    for arm, rec in result["arms"].items():
        s = rec["summary"]
        parts = []
        for q in QUANTITIES:
            if q in s:
                at = ", ".join(f"d={d}: {_cell(v['mean'])}±{_cell(v['sd'])}"
                               for d, v in s[q]["at"].items())
                parts.append(f"{q} log10 R {at}")
        occ = s["occlusion"]["delta_accuracy"]
        parts.append(f"Δaccuracy {occ['mean']:+.4f}±{_cell(occ['sd'])}")
        log(f"  {arm} (lr {rec['lr']:g}, step {rec['step']}): " + "; ".join(parts))


