"""The one figure style every lstm_jax figure follows.

One place decides how a quantity looks, so a reader who has seen one figure can read the next:

* **colour = architecture** (:data:`ARCH_COLORS`), **line style = quantity**
  (:data:`QUANTITY_LINES`): the hidden Jacobian ‖∂h_T/∂h_{T−k}‖ solid, the LSTM's cell Jacobian
  ‖∂C_T/∂C_{T−k}‖ dashed, the forget-gate product ∏f dotted, the loss gradient ‖∂L/∂h_t‖ solid.
* log axes show whole decades, thinned to at most about seven ticks (10⁰, 10⁻¹⁰, 10⁻²⁰ …, never
  10⁻¹³, 10⁻²⁶), or at least two plain numbers (1, 2, 5 × 10ᵉ where they fit) when the axis spans
  under two decades: :func:`decade_ticks`.
* a band is ± 1 standard deviation and a probe line is the batch's geometric mean; the legend
  or the axis label says which (:data:`BAND_SD`, :data:`GEO_MEAN`).
* accuracy in per cent (:func:`percent`), one word for the reference loss (:data:`BASELINE`).
* titles carry T, H and the initialisation (:func:`title`); legends sit outside the axes
  (:func:`legend_outside`), so they never cover a line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import (  # noqa: E402
    FixedLocator,
    FuncFormatter,
    LogFormatterSciNotation,
    MaxNLocator,
    NullLocator,
)

ARCH_COLORS = {"rnn": "#d62728", "lstm": "#1f77b4", "gru": "#2ca02c", "peephole": "#9467bd",
               "cifg": "#17becf", "janet": "#ff7f0e", "indrnn": "#8c564b", "exprnn": "#e377c2",
               "lru": "#bcbd22"}
ARCH_LABELS = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU", "peephole": "peephole LSTM",
               "cifg": "CIFG", "janet": "JANET", "indrnn": "IndRNN", "exprnn": "expRNN",
               "lru": "LRU"}
#: extra colours for settings that are not an architecture (forget bias, recurrent scale, …)
SETTING_COLORS = ["#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#e377c2"]

#: quantity -> (line style, math label)
QUANTITY_LINES = {
    "hidden": ("-", r"$\|\partial h_T/\partial h_{T-k}\|_F$"),
    "cell": ("--", r"$\|\partial C_T/\partial C_{T-k}\|_F$"),
    "cec": (":", r"$\|\Pi_j f_j\|_F$ (forget-gate product)"),
    "loss_grad": ("-", r"$\|\partial L/\partial h_t\|$"),
    "spectral": ("o", r"$\sigma_{\max}(\partial h_T/\partial h_{T-k})$"),
}

BASELINE = "memoryless baseline"
BAND_SD = "band: ± 1 sd"
GEO_MEAN = "geometric mean over rows"
ACCURACY_LABEL = "accuracy (%)"

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "legend.frameon": False,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
plt.rcParams.update(RC)


def line_style(quantity: str) -> str:
    """The line style of a quantity (``hidden``, ``cell``, ``cec``, ``loss_grad``)."""
    return QUANTITY_LINES[quantity][0]


def quantity_label(quantity: str) -> str:
    return QUANTITY_LINES[quantity][1]


def arch_label(arch: str) -> str:
    return ARCH_LABELS.get(arch, arch)


def title(what: str, *, T: int | None = None, H: int | None = None, init: str | None = None,
          extra: str | None = None) -> str:
    """``what (T=…, H=…, init …)``: the sizes and initialisation a figure was made at; the
    parenthesis goes on a second line when the title would be too long for a panel."""
    parts = [f"T={T}" if T is not None else None, f"H={H}" if H is not None else None,
             init, extra]
    parts = [p for p in parts if p]
    if not parts:
        return what
    sep = "\n" if len(what) + sum(len(p) + 2 for p in parts) > 58 else " "
    return f"{what}{sep}({', '.join(parts)})"


def init_label(cfg: dict) -> str | None:
    """A short name for the initialisation in a config dict (forget bias, chrono, scale)."""
    bits = []
    if cfg.get("chrono"):
        bits.append(f"chrono T_max={cfg['chrono']}")
    elif cfg.get("forget_bias") is not None and cfg.get("arch") in (None, "lstm"):
        bits.append(("" if cfg.get("arch") else "LSTM ") + f"forget bias {cfg['forget_bias']:g}")
    if cfg.get("recurrent_init"):
        bits.append(f"{cfg['recurrent_init']} W_hh")
    if cfg.get("recurrent_scale") not in (None, 1, 1.0):
        bits.append(f"scale {cfg['recurrent_scale']:g}")
    return ", ".join(bits) or None


def figure_init_label(cfg: dict, archs) -> str:
    """The initialisation of a figure drawing ``archs`` made with ``cfg``: the forget bias only
    when an LSTM is among them, "default init" when nothing else is set."""
    archs = list(archs)
    if "lstm" not in archs:
        cfg = {**cfg, "forget_bias": None}
    return init_label({**cfg, "arch": archs[0] if len(archs) == 1 else None}) or "default init"


def decade_ticks(ax, axis: str = "y", max_ticks: int = 7) -> None:
    """Major ticks of a log axis at whole decades, every 1, 2, 5, 10, 20, 50 … decades, so at
    most about ``max_ticks`` labels show (10⁰, 10⁻¹⁰, 10⁻²⁰, …); under two decades, at least two
    plain numbers (:func:`_narrow_ticks`: 0.01, 0.02, 0.05, 0.1); no minor ticks."""
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    lo, hi = sorted((lo, hi))
    if not (lo > 0 and math.isfinite(lo) and math.isfinite(hi)):
        return
    a, b = math.floor(math.log10(lo) + 1e-9), math.ceil(math.log10(hi) - 1e-9)
    target = ax.yaxis if axis == "y" else ax.xaxis
    if math.log10(hi) - math.log10(lo) < 2:  # under two decades: plain numbers
        target.set_major_locator(FixedLocator(_narrow_ticks(lo, hi, a, b)))
        target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        step = next(s for s in _steps() if (b - a) / s <= max_ticks - 1)
        first = math.ceil(a / step) * step
        exps = range(first, b + 1, step)
        target.set_major_locator(FixedLocator([10.0 ** e for e in exps]))
        target.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    target.set_minor_locator(NullLocator())
    (ax.set_ylim if axis == "y" else ax.set_xlim)(lo, hi)


def _narrow_ticks(lo: float, hi: float, a: int, b: int) -> list[float]:
    """At least two ticks inside [lo, hi]: 1, 2, 5 × 10ᵉ, else 1 … 9 × 10ᵉ, else evenly spaced
    round numbers (an axis from 0.164 to 0.176 gets 0.165, 0.17, 0.175)."""
    for mantissas in ((1, 2, 5), range(1, 10)):
        ticks = [m * 10.0 ** e for e in range(a, b + 1) for m in mantissas
                 if lo <= m * 10.0 ** e <= hi]
        if len(ticks) >= 2:
            return ticks
    values = MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
    return [float(f"{v:.6g}") for v in values if lo <= v <= hi]


def _steps() -> Iterable[int]:
    m = 1
    while True:
        for s in (1, 2, 5):
            yield s * m
        m *= 10


def percent(fraction: float) -> float:
    """Accuracy as a percentage (every figure shows accuracy in %)."""
    return 100.0 * fraction


def legend_outside(ax, **kw) -> None:
    """The legend to the right of the axes (``constrained`` layout makes room), never over a
    line."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kw)


def legend_below(ax, ncol: int = 3, **kw) -> None:
    """The legend under the axes, in ``ncol`` columns (for wide panels side by side)."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
                  borderaxespad=0.0, **kw)


def new_figure(width: float = 7.0, height: float = 4.2, ncols: int = 1, nrows: int = 1):
    """A figure and its axes (one ``Axes``, or a flat array when ``ncols * nrows > 1``) with the
    shared style and ``constrained`` layout."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained",
                             squeeze=False)
    flat = axes.ravel()
    return fig, (flat[0] if flat.size == 1 else flat)
