"""Shared figure setup: a headless backend, one palette for the registered architectures, saving."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ARCH_COLORS = {"rnn": "#d62728", "lstm": "#1f77b4", "gru": "#2ca02c", "peephole": "#9467bd",
               "cifg": "#17becf", "janet": "#ff7f0e", "indrnn": "#8c564b", "exprnn": "#e377c2",
               "lru": "#bcbd22"}
ARCH_LABELS = {"rnn": "tanh RNN", "lstm": "LSTM", "gru": "GRU", "peephole": "peephole LSTM",
               "cifg": "CIFG", "janet": "JANET", "indrnn": "IndRNN", "exprnn": "expRNN",
               "lru": "LRU"}


def new_figure(width: float = 7.0, height: float = 4.2):
    fig, ax = plt.subplots(figsize=(width, height), dpi=110, layout="constrained")
    ax.grid(True, alpha=0.3, which="both")
    return fig, ax


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
