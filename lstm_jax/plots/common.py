"""Shared figure setup: the style of :mod:`lstm_jax.plots.style`, a new figure, saving."""

from __future__ import annotations

from pathlib import Path

from lstm_jax.plots.style import ARCH_COLORS, ARCH_LABELS, decade_ticks, plt
from lstm_jax.plots.style import new_figure as _new_figure

__all__ = ["ARCH_COLORS", "ARCH_LABELS", "new_figure", "plt", "save"]


def new_figure(width: float = 7.0, height: float = 4.2):
    """One axes in the shared style (see :mod:`lstm_jax.plots.style`)."""
    return _new_figure(width, height)


def save(fig, path: str | Path) -> Path:
    """Save ``fig`` as ``path`` (parents created) and close it. Every log-scaled y axis gets
    decade ticks (:func:`lstm_jax.plots.style.decade_ticks`) first, so no figure escapes them."""
    for ax in fig.axes:
        if ax.get_yscale() == "log":
            decade_ticks(ax, "y")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
