"""Hidden-state norms over time for each architecture (the demo's first figure)."""

from __future__ import annotations

from pathlib import Path

from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS, new_figure, save
from lstm_jax.plots.style import figure_init_label, legend_outside, title


def plot_state_norms(summary: dict, out: str | Path) -> Path:
    """``summary["state_norms"][arch]`` is a list of mean ‖h_t‖ over the batch, t = 1..T."""
    fig, ax = new_figure()
    for arch, norms in summary["state_norms"].items():
        ax.plot(range(1, len(norms) + 1), norms, color=ARCH_COLORS.get(arch),
                label=ARCH_LABELS.get(arch, arch))
    ax.set_xlabel("time step t")
    ax.set_ylabel("‖h_t‖₂ (arithmetic mean over the batch)")
    cfg = summary["config"]
    ax.set_title(title("Hidden-state norm at initialisation, random inputs",
                       T=len(next(iter(summary["state_norms"].values()))), H=cfg["hidden"],
                       init=figure_init_label(cfg, summary["state_norms"])))
    legend_outside(ax)
    return save(fig, out)
