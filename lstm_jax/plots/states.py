"""Hidden-state norms over time for each architecture (the demo's first figure)."""

from __future__ import annotations

from pathlib import Path

from lstm_jax.plots.common import ARCH_COLORS, ARCH_LABELS, new_figure, save


def plot_state_norms(summary: dict, out: str | Path) -> Path:
    """``summary["state_norms"][arch]`` is a list of mean ‖h_t‖ over the batch, t = 1..T."""
    fig, ax = new_figure()
    for arch, norms in summary["state_norms"].items():
        ax.plot(range(1, len(norms) + 1), norms, color=ARCH_COLORS.get(arch),
                label=ARCH_LABELS.get(arch, arch))
    ax.set_xlabel("time step t")
    ax.set_ylabel("mean ‖h_t‖₂ over the batch")
    cfg = summary["config"]
    ax.set_title(f"Hidden-state norm at initialisation (H={cfg['hidden']}, random inputs)")
    ax.legend()
    return save(fig, out)
